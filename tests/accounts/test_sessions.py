"""Sessions: idle and absolute timeouts, "your sessions", signing out elsewhere, and the
sessions that logout and a password change end."""

import time

import pytest
from django.db import connection, transaction
from django.test import override_settings

from accounts.models import Session
from accounts.services import session_touch
from accounts.sessions import LAST_SEEN_KEY, STARTED_KEY, SessionStore
from audit.events import Action
from audit.models import Event
from tests.accounts.conftest import (
    IPHONE,
    PASSWORD,
    events,
    log_in,
    new_client,
    signed_in,
    signed_in_client,
)

pytestmark = pytest.mark.django_db

MINUTE = 60
HOUR = 60 * MINUTE


def age_session(client, *, started_ago=None, last_seen_ago=None):
    """What time passing does to a session, without touching the clock."""
    session = client.session
    now = time.time()
    if started_ago is not None:
        session[STARTED_KEY] = now - started_ago
    if last_seen_ago is not None:
        session[LAST_SEEN_KEY] = now - last_seen_ago
    session.save()


# --- timeouts ------------------------------------------------------------------------------


def test_it_signs_out_after_thirty_idle_minutes(owner):
    client = signed_in_client(owner)
    age_session(client, last_seen_ago=31 * MINUTE)

    response = client.get("/account/sessions/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/account/sessions/"
    assert not Session.objects.filter(user=owner).exists()
    page = client.get(response["Location"]).content.decode()
    assert "You were signed out after a while without activity" in page
    assert not signed_in(client)


def test_it_keeps_a_session_that_was_active_recently_and_notes_when(owner):
    client = signed_in_client(owner)
    age_session(client, last_seen_ago=29 * MINUTE)

    assert signed_in(client)

    # "Last seen" moved to now, so the idle clock starts again.
    assert time.time() - client.session[LAST_SEEN_KEY] < MINUTE
    assert time.time() - Session.objects.get(user=owner).last_seen.timestamp() < MINUTE


@override_settings(SESSION_IDLE_TIMEOUT=5 * MINUTE)
def test_it_takes_the_idle_timeout_from_settings(owner):
    client = signed_in_client(owner)
    age_session(client, last_seen_ago=4 * MINUTE)
    assert signed_in(client)

    age_session(client, last_seen_ago=6 * MINUTE)
    assert not signed_in(client)


@override_settings(SESSION_IDLE_TIMEOUT=60)
def test_with_the_shortest_idle_timeout_someone_active_every_50_seconds_stays_signed_in(owner):
    """Issue 18, finding 14: "last seen" was written at most once a minute, so with a
    60 s idle timeout an active person's last seen could be a minute old: signed out."""
    client = signed_in_client(owner)
    for _ in range(3):
        session = client.session
        session[LAST_SEEN_KEY] -= 50  # fifty seconds pass without a request
        session.save()
        assert signed_in(client)
    assert time.time() - client.session[LAST_SEEN_KEY] < 10


def test_the_idle_timeout_signs_out_through_the_session_service(owner):
    """Issue 18, finding 5: audited like every sign-out (by the clock, so no actor), and
    the session's sockets are told (tests/meetings/test_room_lasting.py)."""
    client = signed_in_client(owner)
    age_session(client, last_seen_ago=31 * MINUTE)

    client.get("/account/sessions/")

    [timed_out] = [e for e in events(Action.LOGGED_OUT) if e.extra.get("timeout")]
    assert (timed_out.actor_id, timed_out.subject_id) == (None, owner.pk)
    assert timed_out.extra == {"timeout": "idle"}
    assert not Session.objects.filter(user=owner).exists()


def test_it_signs_out_after_twelve_hours_however_active(owner):
    client = signed_in_client(owner)
    age_session(client, started_ago=12 * HOUR + MINUTE, last_seen_ago=0)

    response = client.get("/account/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert (
        "this session had lasted a long time" in client.get(response["Location"]).content.decode()
    )
    assert not signed_in(client)


def test_it_keeps_an_active_session_younger_than_twelve_hours(owner):
    client = signed_in_client(owner)
    age_session(client, started_ago=11 * HOUR, last_seen_ago=MINUTE)

    assert signed_in(client)


def test_it_expires_the_cookie_with_the_browser_and_the_session_by_the_absolute_limit(
    owner, settings
):
    client = signed_in_client(owner)

    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert not cookie["max-age"] and not cookie["expires"]  # gone when the browser closes
    assert cookie["httponly"]
    row = Session.objects.get(user=owner)
    assert abs((row.expire_date - row.created_at).total_seconds() - 12 * HOUR) < MINUTE


# --- your sessions -------------------------------------------------------------------------


def test_it_lists_the_persons_sessions_with_a_device_summary(owner, outsider):
    laptop = signed_in_client(owner)
    signed_in_client(owner, IPHONE)
    signed_in_client(outsider, IPHONE)

    page = laptop.get("/account/sessions/").content.decode()

    assert "Firefox on Linux <strong>(this browser)</strong>" in page
    assert "Safari on iPhone" in page
    assert page.count('name="end" value="') == 1 + 2  # one other session, plus the two buttons
    mine = Session.objects.filter(user=owner)
    assert mine.count() == 2
    theirs = Session.objects.get(user=outsider)
    assert theirs.public_id not in page
    for session in mine:
        assert session.session_key not in page  # named by a hash, never by the secret key


def test_it_ends_one_chosen_session(owner):
    laptop = signed_in_client(owner)
    phone = signed_in_client(owner, IPHONE)
    tablet = signed_in_client(owner, IPHONE)
    phone_session = Session.objects.get(session_key=phone.session.session_key)

    response = laptop.post("/account/sessions/", {"end": phone_session.public_id})

    assert response.status_code == 302
    assert signed_in(laptop) and signed_in(tablet)
    assert not signed_in(phone)
    revoked = events(Action.SESSION_REVOKED)
    assert [(e.actor_id, e.subject_id, e.extra["sessions_ended"]) for e in revoked] == [
        (owner.pk, owner.pk, 1)
    ]


def test_it_signs_out_everywhere_else_but_here(owner):
    here = signed_in_client(owner)
    elsewhere = [signed_in_client(owner, IPHONE) for _ in range(2)]

    response = here.post("/account/sessions/", {"end": "others"}, follow=True)

    assert "You are signed out everywhere else." in response.content.decode()
    assert signed_in(here)
    assert not any(signed_in(client) for client in elsewhere)
    assert Session.objects.filter(user=owner).count() == 1
    (revoked,) = events(Action.SESSION_REVOKED)
    assert revoked.extra == {"sessions_ended": 2, "kept_current": True}


def test_it_signs_out_everywhere_including_here(owner):
    here = signed_in_client(owner)
    elsewhere = signed_in_client(owner, IPHONE)

    response = here.post("/account/sessions/", {"end": "all"})

    assert response["Location"] == "/accounts/login/"
    assert not signed_in(here) and not signed_in(elsewhere)
    assert not Session.objects.filter(user=owner).exists()


def test_it_does_not_let_a_member_end_someone_elses_session(owner, outsider):
    attacker = signed_in_client(owner)
    victim = signed_in_client(outsider)
    victim_session = Session.objects.get(user=outsider)

    response = attacker.post("/account/sessions/", {"end": victim_session.public_id})

    assert response.status_code == 302
    assert signed_in(victim)
    assert Session.objects.filter(pk=victim_session.pk).exists()
    # Not even the victim's secret session key works in place of the public id.
    attacker.post("/account/sessions/", {"end": victim_session.session_key})
    assert signed_in(victim)
    assert not events(Action.SESSION_REVOKED, subject_id=outsider.pk)


# --- logout and password change ------------------------------------------------------------


def test_signing_out_ends_this_session_only(owner, outsider):
    """The menu's "Sign out" is for this browser (issue 21); signing out everywhere is the
    sessions page's own choice (below)."""
    here = signed_in_client(owner)
    elsewhere = signed_in_client(owner, IPHONE)
    someone_else = signed_in_client(outsider)

    here.post("/accounts/logout/")

    assert not signed_in(here)
    assert signed_in(elsewhere) and signed_in(someone_else)
    assert Session.objects.filter(user=owner).count() == 1
    event = Event.objects.filter(action=Action.LOGGED_OUT, subject_id=owner.pk).get()
    assert event.actor_id == owner.pk and event.extra == {"only_this_session": True}


def test_the_password_change_page_speaks_like_the_sign_up_page(owner):
    page = signed_in_client(owner).get("/accounts/password/change/").content.decode()
    for label in ("Current password", "New password", "New password again"):
        assert f">{label} <" in page or f">{label}<" in page, label
    assert "At least 12 characters. A few unrelated words work well." in page


def test_it_ends_the_other_sessions_when_the_password_changes_and_keeps_this_one(owner):
    here = signed_in_client(owner)
    elsewhere = signed_in_client(owner, IPHONE)
    new_password = "a different long passphrase"

    response = here.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": new_password, "password2": new_password},
    )

    assert response.status_code == 302
    assert signed_in(here)
    assert not signed_in(elsewhere)
    assert Session.objects.filter(user=owner).count() == 1
    owner.refresh_from_db()
    assert owner.check_password(new_password)
    changed = events(Action.PASSWORD_CHANGED)
    assert [(e.actor_id, e.subject_id) for e in changed] == [(owner.pk, owner.pk)]
    # The new password signs in; the old one no longer does.
    assert log_in(new_client(), owner.username, PASSWORD).status_code == 200
    assert log_in(new_client(), owner.username, new_password).status_code == 302


def test_it_refuses_a_password_change_without_the_current_password(owner):
    client = signed_in_client(owner)
    new_password = "a different long passphrase"

    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": "not my password", "password1": new_password, "password2": new_password},
    )

    assert response.status_code == 200
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    assert not events(Action.PASSWORD_CHANGED)


def test_it_refuses_a_weak_new_password(owner):
    client = signed_in_client(owner)

    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "too short", "password2": "too short"},
    )

    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


# --- the sockets' checks (accounts.services.session_touch) ---------------------------------


def transaction_id_taken() -> bool:
    """Whether the transaction in progress became a writing one (a row written or locked):
    only such a transaction's commit waits for the disk."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid_current_if_assigned() IS NOT NULL")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)  # (the transaction looked at must be a real one)
def test_a_sockets_check_of_a_session_with_nothing_to_write_neither_writes_nor_locks(owner):
    client = signed_in_client(owner)
    age_session(client, last_seen_ago=10)
    key = client.session.session_key

    for active in (True, False):
        with transaction.atomic():
            assert session_touch(session_key=key, active=active) is None
            assert not transaction_id_taken()


def test_a_sockets_check_writes_last_seen_once_it_is_due_and_ends_a_timed_out_session(owner):
    client = signed_in_client(owner)
    age_session(client, last_seen_ago=5 * MINUTE)
    key = client.session.session_key

    assert session_touch(session_key=key, active=False) is None  # a hidden page: a check only
    assert time.time() - new_client_session(key)[LAST_SEEN_KEY] > 4 * MINUTE
    assert session_touch(session_key=key, active=True) is None
    assert time.time() - new_client_session(key)[LAST_SEEN_KEY] < MINUTE

    age_session(client, last_seen_ago=31 * MINUTE)
    assert session_touch(session_key=key, active=False) == "idle"
    assert not Session.objects.filter(session_key=key).exists()
    assert session_touch(session_key=key) == "signed_out"


def new_client_session(session_key: str) -> dict:
    return SessionStore(session_key=session_key).load()


# --- the user read with the session (accounts.middleware.AuthenticationMiddleware) ----------


def page_statements(client) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get("/groups/mine/").status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def test_a_page_reads_the_session_and_its_user_in_one_statement(owner):
    client = signed_in_client(owner)
    client.get("/groups/mine/")  # "last seen" written

    statements = page_statements(client)

    session_reads = [q for q in statements if 'FROM "accounts_session"' in q]
    assert len(session_reads) == 1 and '"accounts_user"' in session_reads[0]
    assert not [q for q in statements if q.startswith('SELECT "accounts_user"."id"')]


def test_a_password_changed_behind_the_sessions_back_signs_it_out(owner):
    """Not through the service (which ends the other sessions itself): the session's hash
    of the password no longer matches the user read with it, so the session ends, as
    Django's own get_user would end it."""
    client = signed_in_client(owner)
    assert signed_in(client)
    owner.set_password("another long passphrase")
    owner.save(update_fields=["password"])

    assert not signed_in(client)
    assert not Session.objects.filter(user=owner).exists()  # flushed, not only refused


def test_a_deactivated_account_is_signed_out_on_its_next_page(owner):
    client = signed_in_client(owner)
    assert signed_in(client)
    type(owner).objects.filter(pk=owner.pk).update(is_active=False)

    assert not signed_in(client)


def test_a_session_holds_the_user_it_names_not_another(owner, outsider):
    """The joined row is the session's owner column; the user it signs in is the one its
    data names. Should they ever differ, the session's data wins (Django's way)."""
    client = signed_in_client(owner)
    Session.objects.filter(user=owner).update(user=outsider)

    response = client.get("/account/")

    assert response.status_code == 200
    assert response.wsgi_request.user.pk == owner.pk
