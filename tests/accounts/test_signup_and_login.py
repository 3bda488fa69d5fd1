"""Sign-up with a private handle and a password; login that never says whether a handle
exists; rate limits; sessions rotated at login; every step audited."""

import pytest
from allauth.account.models import EmailAddress

import supportgroups.settings as project_settings
from accounts.adapter import RESERVED_HANDLES
from accounts.models import Session, User
from audit.events import Action
from tests.accounts.conftest import (
    PASSWORD,
    events,
    log_in,
    new_client,
    normalise,
    session_cookie,
    signed_in,
)

pytestmark = pytest.mark.django_db

SAME_ANSWER = "This login handle can&#x27;t be used. Please choose another."


def sign_up(client, handle, password=PASSWORD, password2=None):
    return client.post(
        "/accounts/signup/",
        {"username": handle, "password1": password, "password2": password2 or password},
    )


# --- sign-up -------------------------------------------------------------------------------


def test_it_signs_up_with_only_a_handle_and_a_password():
    client = new_client()
    page = client.get("/accounts/signup/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="username"' in html
    assert 'name="email"' not in html  # nothing more is asked for

    response = sign_up(client, "Quiet-Heron")

    assert response.status_code == 302
    assert response["Location"] == "/groups/mine/"
    user = User.objects.get()
    assert user.username == "quiet-heron"  # handles are compared and stored in lower case
    assert user.check_password(PASSWORD)
    assert user.recovery_email is None and user.recovery_email_index is None
    assert not EmailAddress.objects.exists()  # allauth's own email table stays empty
    assert signed_in(client)
    created = events(Action.ACCOUNT_CREATED)
    assert [(e.actor_id, e.subject_id) for e in created] == [(user.pk, user.pk)]
    assert events(Action.LOGIN_SUCCEEDED, subject_id=user.pk)


def test_someone_sent_to_sign_in_who_creates_an_account_instead_lands_where_they_were_going():
    """A visitor who pressed "Apply to join" is sent to sign in; following "Create an
    account" from there must not lose the application they set out for."""
    client = new_client()
    wanted = "/screening/apply/carers-circle/"
    login_page = client.get(f"/accounts/login/?next={wanted}").content.decode()
    assert 'href="/accounts/signup/?next=%2Fscreening%2Fapply%2Fcarers-circle%2F"' in login_page

    signup_page = client.get(f"/accounts/signup/?next={wanted}").content.decode()
    assert f'name="next" value="{wanted}"' in signup_page
    assert 'href="/accounts/login/?next=%2Fscreening%2Fapply%2Fcarers-circle%2F"' in signup_page

    response = client.post(
        "/accounts/signup/",
        {"username": "quiet-heron", "password1": PASSWORD, "password2": PASSWORD, "next": wanted},
    )
    assert response.status_code == 302
    assert response["Location"] == wanted


def test_it_hashes_passwords_with_argon2id_at_full_cost(settings):
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS

    assert sign_up(new_client(), "quiet-heron").status_code == 302

    # Django's defaults for Argon2: 100 MiB, two passes, eight lanes.
    assert User.objects.get().password.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")


@pytest.mark.parametrize(
    ("password", "error"),
    [
        ("short pass", "This password is too short. It must contain at least 12 characters."),
        ("q1w2e3r4t5y6", "This password is too common."),
        ("834029184756", "This password is entirely numeric."),
        ("quiet-heron-1", "The password is too similar to the login handle."),
    ],
)
def test_it_refuses_weak_passwords_and_saves_nothing(password, error):
    response = sign_up(new_client(), "quiet-heron", password)

    assert response.status_code == 200
    assert error.replace("'", "&#x27;") in response.content.decode()
    assert not User.objects.exists()
    assert not events(Action.ACCOUNT_CREATED)


def test_it_refuses_passwords_that_do_not_match():
    response = sign_up(new_client(), "quiet-heron", PASSWORD, PASSWORD + "!")

    assert response.status_code == 200
    assert not User.objects.exists()


@pytest.mark.parametrize("handle", ["admin", "Moderator", "SUPPORT", "deleted"])
def test_it_refuses_a_reserved_handle_with_the_same_answer_as_a_taken_one(owner, handle):
    assert handle.lower() in RESERVED_HANDLES
    reserved = sign_up(new_client(), handle)
    taken = sign_up(new_client(), owner.username.upper())

    assert reserved.status_code == taken.status_code == 200
    assert SAME_ANSWER in reserved.content.decode()
    assert normalise(reserved.content.decode(), handle) == normalise(
        taken.content.decode(), owner.username.upper()
    )
    assert list(User.objects.values_list("username", flat=True)) == [owner.username]
    assert not events(Action.ACCOUNT_CREATED)


def test_it_refuses_a_handle_with_spaces_or_symbols():
    response = sign_up(new_client(), "quiet heron <b>")

    assert response.status_code == 200
    assert not User.objects.exists()


# --- login ---------------------------------------------------------------------------------


def test_it_logs_in_with_the_handle_in_any_case_and_records_it(owner):
    client = new_client()

    response = log_in(client, "QUIET-HERON")

    assert response.status_code == 302
    assert response["Location"] == "/groups/mine/"
    assert signed_in(client)
    success = events(Action.LOGIN_SUCCEEDED)
    assert [(e.actor_id, e.subject_id) for e in success] == [(owner.pk, owner.pk)]
    assert success[0].ip == "127.0.0.1"  # kept encrypted, for admins only


def test_it_gives_the_same_answer_for_a_wrong_password_and_a_missing_handle(owner):
    wrong_password = log_in(new_client(), owner.username, "not the password at all")
    missing_handle = log_in(new_client(), "nobody-by-this-name", "not the password at all")

    assert wrong_password.status_code == missing_handle.status_code == 200
    assert "not correct" in wrong_password.content.decode()
    assert normalise(wrong_password.content.decode(), owner.username) == normalise(
        missing_handle.content.decode(), "nobody-by-this-name"
    )


def test_it_records_failed_logins_without_the_typed_handle(owner):
    log_in(new_client(), owner.username, "not the password at all")
    log_in(new_client(), "nobody-by-this-name", "not the password at all")

    known, unknown = events(Action.LOGIN_FAILED)
    assert (known.actor_id, known.subject_id, known.extra) == (
        None,
        owner.pk,
        {"known_account": True},
    )
    assert (unknown.actor_id, unknown.subject_id, unknown.extra) == (
        None,
        None,
        {"known_account": False},
    )
    assert not events(Action.LOGIN_SUCCEEDED)


def test_it_does_not_log_in_a_deactivated_account(owner):
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    client = new_client()

    log_in(client, owner.username)

    assert not signed_in(client)
    assert not events(Action.LOGIN_SUCCEEDED)


def test_it_gives_a_new_session_id_at_login(owner):
    client = new_client()
    anonymous = client.session  # an anonymous session, as a visitor would already have
    anonymous["seen_home"] = True
    anonymous.save()
    before = session_cookie(client)
    assert before

    log_in(client, owner.username)

    after = session_cookie(client)
    assert after and after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert Session.objects.get(session_key=after).user_id == owner.pk


def test_it_logs_out_with_post_and_records_it(owner):
    client = new_client()
    log_in(client, owner.username)

    assert client.get("/accounts/logout/").status_code == 200  # a GET only asks
    assert signed_in(client)
    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert not signed_in(client)
    assert not Session.objects.filter(user=owner).exists()
    logged_out = events(Action.LOGGED_OUT)
    assert [(e.actor_id, e.subject_id) for e in logged_out] == [(owner.pk, owner.pk)]


# --- rate limits ---------------------------------------------------------------------------


def test_it_stops_guessing_one_handle_after_five_failures_whatever_the_answer(owner):
    for _ in range(5):
        log_in(new_client(), owner.username, "not the password at all")

    # The sixth attempt is refused even with the right password, and says so politely;
    # a missing handle gets the very same treatment.
    right = log_in(new_client(), owner.username)
    for _ in range(5):
        log_in(new_client(), "nobody-by-this-name", "not the password at all")
    missing = log_in(new_client(), "nobody-by-this-name", "not the password at all")

    assert right.status_code == missing.status_code == 200
    assert "Too many attempts to sign in" in right.content.decode()
    assert normalise(right.content.decode(), owner.username) == normalise(
        missing.content.decode(), "nobody-by-this-name"
    )
    assert not events(Action.LOGIN_SUCCEEDED)
    # Each refused try is recorded for the security signals, naming the account if any.
    # (The missing handle also meets the per-address limit: ten failures a minute.)
    throttled = [(e.subject_id, e.extra) for e in events(Action.LOGIN_THROTTLED)]
    assert throttled[0] == (owner.pk, {"known_account": True})
    assert throttled[1:] == [(None, {"known_account": False})] * len(throttled[1:])
    assert len(throttled) >= 2


def test_it_answers_429_with_a_friendly_page_after_too_many_logins(owner):
    # "login": 30 attempts a minute from one address, right or wrong.
    responses = [log_in(new_client(), f"guess-{n}", "not the password at all") for n in range(31)]

    assert [r.status_code for r in responses[:30]] == [200] * 30
    limited = responses[30]
    assert limited.status_code == 429
    assert "429.html" in [t.name for t in limited.templates]
    assert "Please wait a moment" in limited.content.decode()
    # Even the right password is turned away until the minute is over.
    assert log_in(new_client(), owner.username).status_code == 429
