"""Two-factor authentication: enrolment, the login step, one-time codes, throttling,
secrets unreadable in the database, turning it off, and the audit trail."""

import base64
import re
import time

import pytest
from django.core.cache import cache
from django.db import connection
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.models import BackupCode, BackupCodeDevice, Session, TOTPDevice
from audit.events import Action
from tests.accounts.conftest import (
    PASSWORD,
    allow_next_totp_login,
    dump_every_table,
    enrol_two_factor,
    events,
    log_in,
    new_client,
    reauthenticate,
    session_cookie,
    signed_in,
    totp_code,
    unused_totp_code,
)

pytestmark = pytest.mark.django_db

WRONG_CODE_MESSAGE = "That code didn&#x27;t work."
THROTTLED_MESSAGE = "Too many wrong codes."


def password_step(client, user):
    response = log_in(client, user.username)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/two-factor/"
    return response


def code_step(client, code):
    return client.post("/accounts/login/two-factor/", {"code": code})


def unthrottle(device):
    """Failures lock the device for 1, 2, 4... seconds; let that time pass."""
    type(device).objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)


# --- enrolment --------------------------------------------------------------------------------


def test_it_shows_a_server_rendered_qr_code_and_the_secret_for_manual_entry(owner):
    client = new_client()
    client.force_login(owner)

    page = client.get("/account/two-factor/set-up/")

    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r"<svg[^>]*>.*</svg>", html, re.S)
    assert "QR code for your authenticator app" in html
    assert "<img" not in html and "<script>" not in html  # drawn here, not fetched
    shown = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html).group(1)
    device = TOTPDevice.objects.get(user=owner)
    assert not device.confirmed
    assert base64.b32decode(shown.replace(" ", "")) == bytes.fromhex(device.key)
    # The same device (and secret) until it is confirmed: reloading does not change it.
    client.get("/account/two-factor/set-up/")
    assert TOTPDevice.objects.get(user=owner).pk == device.pk


def test_it_turns_on_with_a_code_read_from_the_shown_secret_and_shows_ten_backup_codes(owner):
    from django_otp.oath import TOTP

    client = new_client()
    log_in(client, owner.username)
    html = client.get("/account/two-factor/set-up/").content.decode()
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html).group(1)
    code = f"{TOTP(base64.b32decode(secret.replace(' ', ''))).token():06d}"

    response = client.post("/account/two-factor/set-up/", {"code": code})

    assert response.status_code == 200
    html = response.content.decode()
    assert "They are shown only now." in html
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", html)
    assert len(set(codes)) == 10
    assert TOTPDevice.objects.get(user=owner).confirmed
    assert BackupCodeDevice.objects.get(user=owner).remaining == 10
    # This session is now verified, so the person keeps going without signing in again.
    assert client.session[DEVICE_ID_SESSION_KEY]
    assert signed_in(client)
    enabled = events(Action.TWO_FACTOR_ENABLED)
    assert [(e.actor_id, e.subject_id) for e in enabled] == [(owner.pk, owner.pk)]


def test_it_never_shows_the_backup_codes_again(owner_with_2fa):
    client = owner_with_2fa.client

    for path in ["/account/", "/account/two-factor/", "/account/two-factor/set-up/"]:
        html = client.get(path, follow=True).content.decode()
        for code in owner_with_2fa.backup_codes:
            assert code not in html, path
    assert "10 unused backup codes" in client.get("/account/two-factor/").content.decode()


def test_it_refuses_to_turn_on_with_a_wrong_code_and_records_the_failure(owner):
    client = new_client()
    client.force_login(owner)
    client.get("/account/two-factor/set-up/")

    response = client.post("/account/two-factor/set-up/", {"code": "000000"})

    assert response.status_code == 200
    assert WRONG_CODE_MESSAGE in response.content.decode()
    assert not TOTPDevice.objects.filter(user=owner, confirmed=True).exists()
    assert not BackupCodeDevice.objects.filter(user=owner).exists()
    failed = events(Action.TWO_FACTOR_FAILED)
    assert [(e.subject_id, e.extra) for e in failed] == [(owner.pk, {"during": "enrolment"})]


def test_pages_open_to_a_session_before_its_second_factor_leave_out_the_refused_socket(
    admin_user, owner
):
    # An admin's first sign-in reaches the home and set-up pages before their second factor
    # is on; the account socket refuses such a session, and its script would keep retrying
    # behind the page.
    client = new_client()
    assert log_in(client, admin_user.username).status_code == 302
    page = client.get("/groups/mine/", follow=True)
    assert page.redirect_chain[-1][0] == "/account/two-factor/set-up/"
    assert "js/account-socket." not in page.content.decode()
    assert "js/account-socket." not in client.get("/").content.decode()

    # A member without 2FA may use sockets: the same pages, and every other, keep it (it
    # closes the tab when signed out elsewhere).
    member = new_client()
    member.force_login(owner)
    for path in ("/", "/account/two-factor/set-up/", "/account/"):
        assert "js/account-socket." in member.get(path).content.decode(), path


def test_it_ends_the_persons_other_sessions_when_2fa_is_turned_on(owner):
    elsewhere = new_client()
    log_in(elsewhere, owner.username)
    here = new_client()
    log_in(here, owner.username)

    enrol_two_factor(here, owner)

    assert signed_in(here)
    assert not signed_in(elsewhere)


# --- secrets at rest --------------------------------------------------------------------------


def test_it_keeps_the_totp_secret_unreadable_in_the_database(owner_with_2fa):
    device = owner_with_2fa.device
    hex_key = device.key
    base32_key = base64.b32encode(bytes.fromhex(hex_key)).decode()

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_totpdevice")
        raw = " ".join(str(value) for row in cursor.fetchall() for value in row)
    dump = dump_every_table()

    assert raw  # the row is there...
    for text in (raw, dump):  # ...but not the secret, in any spelling
        assert hex_key not in text.lower()
        assert base32_key not in text.upper().replace(" ", "")
    assert TOTPDevice.objects.get(pk=device.pk).key == hex_key  # the app still reads it


def test_it_keeps_backup_codes_unreadable_anywhere_in_the_database(owner_with_2fa):
    dump = dump_every_table()

    assert BackupCode.objects.filter(device__user=owner_with_2fa.user).count() == 10
    folded = dump.lower()
    for code in owner_with_2fa.backup_codes:
        assert code not in folded
        assert code.replace("-", "") not in folded


# --- the login step ---------------------------------------------------------------------------


def test_it_asks_for_the_code_after_the_password_and_signs_in_only_then(owner_with_2fa):
    client = new_client()

    password_step(client, owner_with_2fa.user)

    # Nobody is signed in between the two steps.
    assert client.get("/account/").status_code == 302
    signed_in_before = len(events(Action.LOGIN_SUCCEEDED))  # the fixture's own sign-in
    assert signed_in_before == 1
    response = code_step(client, unused_totp_code(owner_with_2fa.device))

    assert response.status_code == 302
    assert response["Location"] == "/groups/mine/"
    assert signed_in(client)
    assert client.session[DEVICE_ID_SESSION_KEY] == owner_with_2fa.device.persistent_id
    assert len(events(Action.LOGIN_SUCCEEDED)) == signed_in_before + 1


def test_it_rotates_the_session_id_at_the_password_and_at_the_code_step(owner_with_2fa):
    client = new_client()
    visitor = client.session
    visitor["seen_home"] = True
    visitor.save()
    before = session_cookie(client)

    password_step(client, owner_with_2fa.user)
    between = session_cookie(client)
    code_step(client, unused_totp_code(owner_with_2fa.device))
    after = session_cookie(client)

    assert len({before, between, after}) == 3
    assert not Session.objects.filter(session_key__in=[before, between]).exists()
    assert Session.objects.get(session_key=after).user_id == owner_with_2fa.user.pk


def test_it_refuses_a_wrong_code_and_records_the_failure(owner_with_2fa):
    client = new_client()
    password_step(client, owner_with_2fa.user)

    response = code_step(client, "123456")

    assert response.status_code == 200
    assert WRONG_CODE_MESSAGE in response.content.decode()
    assert client.get("/account/").status_code == 302
    failed = events(Action.TWO_FACTOR_FAILED, extra__during="login")
    assert [(e.actor_id, e.subject_id) for e in failed] == [(None, owner_with_2fa.user.pk)]


def test_it_accepts_a_totp_code_only_once(owner_with_2fa):
    device = owner_with_2fa.device
    code = unused_totp_code(device)
    first = new_client()
    password_step(first, owner_with_2fa.user)
    assert code_step(first, code).status_code == 302

    second = new_client()
    password_step(second, owner_with_2fa.user)
    replay = code_step(second, code)

    assert replay.status_code == 200
    assert WRONG_CODE_MESSAGE in replay.content.decode()
    assert not signed_in(second)
    assert signed_in(first)


def test_it_accepts_the_neighbouring_step_but_not_codes_further_away(owner_with_2fa):
    device = owner_with_2fa.device
    allow_next_totp_login(device)
    # "Now" must not move to the next 30 s step while this test runs, or the codes two
    # steps away would become one step away.
    if time.time() % TOTPDevice.STEP > TOTPDevice.STEP - 5:
        time.sleep(TOTPDevice.STEP - time.time() % TOTPDevice.STEP)
    now = int(time.time()) // TOTPDevice.STEP
    client = new_client()
    password_step(client, owner_with_2fa.user)

    too_old = code_step(client, totp_code(device, step=now - 2))
    unthrottle(device)
    too_new = code_step(client, totp_code(device, step=now + 2))
    unthrottle(device)
    previous = code_step(client, totp_code(device, step=now - 1))

    assert too_old.status_code == too_new.status_code == 200
    assert previous.status_code == 302
    assert signed_in(client)


def test_it_accepts_each_backup_code_once(owner_with_2fa):
    user, code = owner_with_2fa.user, owner_with_2fa.backup_codes[3]
    first = new_client()
    password_step(first, user)

    assert code_step(first, code.upper()).status_code == 302  # typed in any case
    assert signed_in(first)
    assert BackupCodeDevice.objects.get(user=user).remaining == 9
    used = events(Action.BACKUP_CODE_USED)
    assert [(e.actor_id, e.subject_id, e.extra) for e in used] == [
        (user.pk, user.pk, {"remaining": 9})
    ]

    second = new_client()
    password_step(second, user)
    again = code_step(second, code)

    assert again.status_code == 200
    assert WRONG_CODE_MESSAGE in again.content.decode()
    assert not signed_in(second)
    assert BackupCodeDevice.objects.get(user=user).remaining == 9


def test_it_throttles_after_failures_with_doubling_delays(owner_with_2fa, settings):
    assert settings.OTP_THROTTLE_FACTOR == 1
    device = owner_with_2fa.device
    client = new_client()
    password_step(client, owner_with_2fa.user)

    delays = []
    for _ in range(3):
        unthrottle(device)  # let the previous lock pass, so this failure counts
        code_step(client, "000000")
        device.refresh_from_db()
        allowed, details = device.verify_is_allowed()
        assert not allowed
        delays.append(
            round(
                details["locked_until"].timestamp()
                - device.throttling_failure_timestamp.timestamp()
            )
        )
    assert delays == [1, 2, 4]

    # While locked, even the right code is refused, with a message that says why.
    locked = code_step(client, unused_totp_code(device))
    assert locked.status_code == 200
    assert THROTTLED_MESSAGE in locked.content.decode()
    assert not signed_in(client)
    # When the lock has passed, the right code works and the count starts again.
    unthrottle(device)
    assert code_step(client, unused_totp_code(device)).status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


def test_it_throttles_backup_codes_too(owner_with_2fa):
    user = owner_with_2fa.user
    client = new_client()
    password_step(client, user)

    code_step(client, "aaaaa-aaaaa")
    locked = code_step(client, owner_with_2fa.backup_codes[0])

    assert locked.status_code == 200
    assert not signed_in(client)
    assert BackupCodeDevice.objects.get(user=user).remaining == 10


def test_it_answers_429_after_too_many_codes(owner_with_2fa):
    # "verify_two_factor": 10 codes per person in 5 minutes. Enrolment spent one; start
    # from a clean count, as five minutes later.
    cache.clear()
    client = new_client()
    password_step(client, owner_with_2fa.user)

    statuses = []
    for _ in range(11):
        unthrottle(owner_with_2fa.device)
        statuses.append(code_step(client, "000000").status_code)

    assert statuses == [200] * 10 + [429]
    # Even the right code is turned away now.
    assert code_step(client, owner_with_2fa.backup_codes[0]).status_code == 429
    assert not signed_in(client)


def test_it_lets_the_person_cancel_the_code_step(owner_with_2fa):
    client = new_client()
    password_step(client, owner_with_2fa.user)

    response = client.post("/accounts/login/two-factor/", {"cancel": "1"})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    # The half-done login is forgotten: the code page can't be reached any more.
    assert client.get("/accounts/login/two-factor/").status_code == 302
    assert code_step(client, unused_totp_code(owner_with_2fa.device)).status_code == 302
    assert not signed_in(client)


def test_it_refuses_the_code_step_without_the_password_step(owner_with_2fa):
    client = new_client()

    response = code_step(client, unused_totp_code(owner_with_2fa.device))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert not signed_in(client)
    assert TOTPDevice.objects.get(pk=owner_with_2fa.device.pk).last_t == (
        owner_with_2fa.device.last_t
    )


# --- backup codes and turning it off --------------------------------------------------------


def test_it_makes_new_backup_codes_after_reauthentication_and_the_old_ones_stop(owner_with_2fa):
    client = owner_with_2fa.client
    old = owner_with_2fa.backup_codes

    first = client.post("/account/two-factor/backup-codes/")
    assert first.status_code == 302
    assert first["Location"].startswith("/accounts/reauthenticate/")
    reauthenticate(client)
    response = client.post("/account/two-factor/backup-codes/")

    assert response.status_code == 200
    new = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    login = new_client()
    password_step(login, owner_with_2fa.user)
    assert code_step(login, old[0]).status_code == 200
    unthrottle(BackupCodeDevice.objects.get(user=owner_with_2fa.user))
    assert code_step(login, new[0]).status_code == 302


def test_it_turns_off_only_after_reauthentication(owner_with_2fa):
    user, client = owner_with_2fa.user, owner_with_2fa.client

    response = client.post("/account/two-factor/turn-off/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/reauthenticate/?next=%2Faccount%2Ftwo-factor%2F"
    assert TOTPDevice.objects.filter(user=user).exists()
    assert not events(Action.TWO_FACTOR_DISABLED)

    # Confirming the password leads back to the page of the button (the POST itself is
    # never kept); pressing it again turns it off.
    client.get(response["Location"])
    confirmed = client.post(response["Location"], {"password": PASSWORD})
    assert confirmed["Location"] == "/account/two-factor/"
    resumed = client.post("/account/two-factor/turn-off/")

    assert resumed.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not BackupCodeDevice.objects.filter(user=user).exists()
    disabled = events(Action.TWO_FACTOR_DISABLED)
    assert [(e.actor_id, e.subject_id) for e in disabled] == [(user.pk, user.pk)]
    # The next login needs only the password.
    other = new_client()
    assert log_in(other, user.username)["Location"] == "/groups/mine/"


def test_it_refuses_a_wrong_password_at_reauthentication(owner_with_2fa):
    client = owner_with_2fa.client

    response = client.post("/accounts/reauthenticate/", {"password": "not my password"})

    assert response.status_code == 200
    assert client.post("/account/two-factor/turn-off/").status_code == 302
    assert TOTPDevice.objects.filter(user=owner_with_2fa.user).exists()


def test_it_does_not_let_an_admin_turn_it_off(admin_user):
    client = new_client()
    log_in(client, admin_user.username)
    enrol_two_factor(client, admin_user)
    page = client.get("/account/two-factor/").content.decode()
    assert "so it can't be turned off" in page
    assert "/account/two-factor/turn-off/" not in page

    reauthenticate(client)
    response = client.post("/account/two-factor/turn-off/", follow=True)

    assert "must keep two-factor authentication on" in response.content.decode()
    assert TOTPDevice.objects.filter(user=admin_user, confirmed=True).exists()
    assert BackupCodeDevice.objects.filter(user=admin_user).exists()
    assert not events(Action.TWO_FACTOR_DISABLED)


def test_it_needs_the_code_again_at_the_next_login_after_enrolment(owner_with_2fa):
    client = owner_with_2fa.client
    client.post("/accounts/logout/")

    response = log_in(client, owner_with_2fa.user.username)

    assert response["Location"] == "/accounts/login/two-factor/"
    assert not signed_in(client)
    assert code_step(client, owner_with_2fa.backup_codes[0]).status_code == 302
    assert signed_in(client)
