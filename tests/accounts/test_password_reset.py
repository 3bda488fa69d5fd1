"""Forgotten passwords: a link to a confirmed recovery email, or a backup code. Neither
tells a stranger whether an account or an address exists."""

import re

import pytest
from django.conf import settings
from django.test import TestCase

from accounts.models import BackupCodeDevice, Session, User
from audit.events import Action
from tests.accounts.conftest import (
    PASSWORD,
    events,
    log_in,
    new_client,
    normalise,
    signed_in,
)

pytestmark = pytest.mark.django_db

EMAIL = "Robin.Example@Mail.test"
NEW_PASSWORD = "a brand new long passphrase"


@pytest.fixture
def owner_with_email(owner, django_capture_on_commit_callbacks, mailoutbox):
    """The owner with a recovery email confirmed through the privacy centre's pages."""
    client = new_client()
    log_in(client, owner.username)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/email/", {"email": EMAIL})
    link = re.search(re.escape(settings.SITE_URL) + r"(/\S+)", mailoutbox[-1].body).group(1)
    client.post(link)
    client.post("/accounts/logout/")
    owner.refresh_from_db()
    assert owner.recovery_email_verified
    mailoutbox.clear()
    return owner


def ask_for_link(client, email):
    # Emails leave once the request's transaction commits; the test's never does.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/accounts/password/reset/", {"email": email})


def reset_with_backup_code(client, handle, code, password=NEW_PASSWORD):
    return client.post(
        "/accounts/password/reset/backup-code/",
        {"handle": handle, "code": code, "password1": password, "password2": password},
    )


# --- by email ---------------------------------------------------------------------------------


def test_it_resets_the_password_through_a_link_to_the_confirmed_email(owner_with_email, mailoutbox):
    owner = owner_with_email
    signed_in_elsewhere = new_client()
    log_in(signed_in_elsewhere, owner.username)
    client = new_client()

    response = ask_for_link(client, EMAIL.upper())  # any case finds the address

    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/done/"
    (mail,) = mailoutbox
    assert mail.to == [EMAIL]
    link = re.search(re.escape(settings.SITE_URL) + r"(/\S+)", mail.body).group(1)
    # The form is at the link's own address (the token is never kept in the session).
    form_page = client.get(link)
    assert form_page.status_code == 200
    assert 'name="new_password1"' in form_page.content.decode()
    done = client.post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert done.status_code == 302
    assert done["Location"] == "/accounts/login/"
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    assert not signed_in(client)  # resetting does not sign in...
    assert not signed_in(signed_in_elsewhere)  # ...and signs out everywhere
    assert not Session.objects.filter(user=owner).exists()
    reset = events(Action.PASSWORD_RESET)
    assert [(e.actor_id, e.subject_id, e.extra) for e in reset] == [
        (owner.pk, owner.pk, {"method": "email"})
    ]
    # The link works once.
    again = new_client().get(link, follow=True)
    assert "This reset link is not valid any more" in again.content.decode()


def test_it_refuses_a_weak_password_from_the_email_link(owner_with_email, mailoutbox):
    client = new_client()
    ask_for_link(client, EMAIL)
    link = re.search(re.escape(settings.SITE_URL) + r"(/\S+)", mailoutbox[0].body).group(1)
    client.get(link)

    response = client.post(link, {"new_password1": "short", "new_password2": "short"})

    assert response.status_code == 200
    owner_with_email.refresh_from_db()
    assert owner_with_email.check_password(PASSWORD)
    assert not events(Action.PASSWORD_RESET)


def test_it_refuses_a_forged_link(owner_with_email):
    response = new_client().get(
        f"/accounts/password/reset/key/{owner_with_email.pk}-c2b9qn-0123456789abcdef/",
        follow=True,
    )

    assert "This reset link is not valid any more" in response.content.decode()


def test_it_answers_the_same_for_a_known_an_unconfirmed_and_an_unknown_email(
    owner_with_email, mailoutbox
):
    User.objects.create_user(username="bold-otter", email="unconfirmed@mail.test")

    answers = [
        ask_for_link(new_client(), email)
        for email in [EMAIL, "unconfirmed@mail.test", "nobody@mail.test"]
    ]

    assert {(r.status_code, r["Location"]) for r in answers} == {
        (302, "/accounts/password/reset/done/")
    }
    pages = [new_client().get(r["Location"]).content.decode() for r in answers]
    assert len({normalise(page) for page in pages}) == 1
    # Only the confirmed address gets a link; the others are told (and so every answer
    # takes as long: an email is sent either way).
    assert [mail.to for mail in mailoutbox] == [
        [EMAIL],
        ["unconfirmed@mail.test"],
        ["nobody@mail.test"],
    ]
    assert f"{settings.SITE_URL}/" in mailoutbox[0].body
    for unknown in mailoutbox[1:]:
        assert "http" not in unknown.body
        assert "No account there has this address" in unknown.body
        assert "bold-otter" not in unknown.body and owner_with_email.username not in unknown.body


def test_it_refuses_a_malformed_email_without_saying_more(db):
    response = ask_for_link(new_client(), "not an email")

    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()


def test_it_answers_429_after_too_many_reset_requests(owner_with_email, mailoutbox):
    # "reset_password": 5 a minute for one address (and 20 from one IP).
    statuses = [ask_for_link(new_client(), EMAIL).status_code for _ in range(6)]

    assert statuses == [302] * 5 + [429]
    assert len(mailoutbox) == 5
    limited = ask_for_link(new_client(), EMAIL)
    assert limited.status_code == 429
    assert "429.html" in [t.name for t in limited.templates]
    assert "Please wait a moment" in limited.content.decode()
    # An unknown address is limited just the same.
    unknown = [ask_for_link(new_client(), "nobody@mail.test").status_code for _ in range(6)]
    assert unknown == [302] * 5 + [429]


def test_it_answers_429_after_too_many_requests_from_one_address(db):
    statuses = [ask_for_link(new_client(), f"person{n}@mail.test").status_code for n in range(21)]

    assert statuses == [302] * 20 + [429]


# --- by backup code ------------------------------------------------------------------------


def test_it_resets_the_password_with_a_backup_code_once(owner_with_2fa):
    user, code = owner_with_2fa.user, owner_with_2fa.backup_codes[0]

    response = reset_with_backup_code(new_client(), user.username.upper(), code)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert not signed_in(owner_with_2fa.client)  # every session ended
    assert BackupCodeDevice.objects.get(user=user).remaining == 9
    used = events(Action.BACKUP_CODE_USED)
    assert [(e.subject_id, e.extra) for e in used] == [(user.pk, {"during": "password_reset"})]
    reset = events(Action.PASSWORD_RESET)
    assert [(e.subject_id, e.extra) for e in reset] == [(user.pk, {"method": "backup_code"})]

    again = reset_with_backup_code(new_client(), user.username, code, "yet another passphrase")
    assert again.status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_it_still_asks_for_the_second_factor_after_a_backup_code_reset(owner_with_2fa):
    user = owner_with_2fa.user
    reset_with_backup_code(new_client(), user.username, owner_with_2fa.backup_codes[0])

    response = log_in(new_client(), user.username, NEW_PASSWORD)

    assert response["Location"] == "/accounts/login/two-factor/"


def test_it_gives_the_same_error_for_an_unknown_handle_and_a_wrong_code(owner_with_2fa, outsider):
    user = owner_with_2fa.user
    unknown = reset_with_backup_code(new_client(), "nobody-by-this-name", "abcde-fghjk")
    wrong_code = reset_with_backup_code(new_client(), user.username, "abcde-fghjk")
    no_codes = reset_with_backup_code(new_client(), outsider.username, "abcde-fghjk")

    assert unknown.status_code == wrong_code.status_code == no_codes.status_code == 200
    assert "That login handle and backup code don" in unknown.content.decode()
    typed = ["nobody-by-this-name", user.username, outsider.username, "abcde-fghjk"]
    assert (
        normalise(unknown.content.decode(), *typed)
        == normalise(wrong_code.content.decode(), *typed)
        == normalise(no_codes.content.decode(), *typed)
    )
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not events(Action.PASSWORD_RESET)
    # The owner can see that someone tried (and every try was recorded alike).
    failed = events(Action.TWO_FACTOR_FAILED, extra__during="password_reset")
    assert [e.subject_id for e in failed] == [None, user.pk, outsider.pk]


def test_it_checks_the_new_password_before_spending_the_code(owner_with_2fa):
    user, code = owner_with_2fa.user, owner_with_2fa.backup_codes[0]

    response = reset_with_backup_code(new_client(), user.username, code, "short")

    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
    assert BackupCodeDevice.objects.get(user=user).remaining == 10


def test_it_answers_429_after_too_many_backup_code_attempts_from_one_client(owner_with_2fa):
    user = owner_with_2fa.user

    statuses = [
        reset_with_backup_code(new_client(), user.username, "abcde-fghjk").status_code
        for _ in range(11)
    ]

    assert statuses == [200] * 10 + [429]
    # Not even the right code gets through from that client for now (the owner, from
    # elsewhere, still can: tests/security/test_backup_code_reset.py).
    limited = reset_with_backup_code(new_client(), user.username, owner_with_2fa.backup_codes[0])
    assert limited.status_code == 429
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
