"""Security signals (console.selectors.security_signals) and the emails admins get about them
(accounts.alerts), computed from events that real actions produce: wrong passwords and
rate limits on the real login page, wrong codes on the real 2FA page, 2FA turned off on
the real account page, appointments through the Django admin and the groups service,
and break-glass reveals through the moderation service.

Time: signals cover the last 24 hours and failed-login alerts one hour. Older events are
made with ``clock_shifted`` (see conftest): the real services run with Django's clock set
back, so the rows carry old timestamps honestly hashed into the chain.

Alerts are sent after the event's transaction commits. These tests run inside one
test transaction, so each request runs under ``django_capture_on_commit_callbacks(
execute=True)``: its callbacks run when the request is done, as a commit would.

allauth's own login limits (5 wrong passwords per handle per 5 minutes, 10 per address
per minute) would spread 25 failures over 25 minutes; the threshold tests lift them to
make the failures in a row, since the thresholds count the last hour either way.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from accounts.models import TOTPDevice, User
from audit.events import Action
from audit.selectors import ip_for_index
from audit.services import ip_blind_index, record_event
from console.selectors import security_signals
from groups import services as group_services
from tests.audit.conftest import (
    PASSWORD,
    REVEAL_REASON,
    RIVER_EMERGENCY,
    RIVER_PHONE,
    clock_shifted,
    events,
    last_event,
    make_person,
    reveal,
    text_of,
    totp_device,
    verified_client,
)
from tests.audit.test_audit_log import as_superuser
from tests.factories import make_events

pytestmark = pytest.mark.django_db

ATTACKER_IP = "203.0.113.66"
OTHER_IP = "198.51.100.9"
ADMIN_EMAIL = "keeper@example.org"
NIGHT_EMAIL = "night@example.org"


@pytest.fixture
def lifted_login_limits(settings):
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "login": "1000/m/ip",
        "login_failed": "1000/m/ip,1000/5m/key",
    }


@pytest.fixture
def commit_each(django_capture_on_commit_callbacks):
    """Run a callable as its own committed unit of work: on-commit callbacks run after it."""

    def run(work, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return work(*args, **kwargs)

    return run


def wrong_password(client: Client, handle: str, ip: str):
    return client.post(
        "/accounts/login/", {"login": handle, "password": "not the password"}, REMOTE_ADDR=ip
    )


def by_ip(pairs):
    """{address: count} from the signals' (blind index, count) pairs."""
    return {ip_for_index(index): count for index, count in pairs}


def subjects(messages):
    return [message.subject for message in messages]


# --- failed logins and rate limits ------------------------------------------------------------


def test_it_counts_failed_logins_by_address_and_by_account(world, client):
    river = world.river.user
    for _ in range(3):
        response = wrong_password(client, "river-handle", ATTACKER_IP)
        assert response.status_code == 200
    wrong_password(client, "river-handle", OTHER_IP)
    wrong_password(client, "no-such-person", OTHER_IP)
    wrong_password(client, "no-such-person", OTHER_IP)
    # A right password is no failure.
    assert (
        client.post(
            "/accounts/login/", {"login": "heron-applicant", "password": PASSWORD}
        ).status_code
        == 302
    )

    signals = security_signals()

    assert signals.failed_logins == 6
    assert by_ip(signals.failed_by_ip) == {ATTACKER_IP: 3, OTHER_IP: 3}
    assert signals.failed_by_account == [(river.pk, 4)]  # unknown handles name no account
    assert signals.rate_limit_hits == 0


def test_it_counts_rate_limit_hits_by_address(world, client, settings):
    # The limits of supportgroups/settings.py, pinned here because the counts depend on
    # them: 30 sign-in attempts a minute from one address (then 429), and passwords
    # checked for at most 10 failures a minute from one address.
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "login": "30/m/ip",
        "login_failed": "10/m/ip,5/5m/key",
    }
    statuses = [wrong_password(client, f"guess-{i}", ATTACKER_IP).status_code for i in range(33)]
    assert statuses[:30] == [200] * 30
    assert statuses[30:] == [429] * 3
    wrong_password(client, "river-handle", OTHER_IP)

    signals = security_signals()

    assert signals.rate_limit_hits == 3
    assert by_ip(signals.rate_limits_by_ip) == {ATTACKER_IP: 3}
    assert [e.extra for e in events(Action.RATE_LIMIT_HIT)] == [{"path": "/accounts/login/"}] * 3
    # allauth stops checking passwords from that address after 10 failures a minute.
    assert by_ip(signals.failed_by_ip) == {ATTACKER_IP: 10, OTHER_IP: 1}


def test_it_lists_accounts_paused_by_throttling(world, client, settings):
    # Five wrong passwords for one handle in five minutes pause it; further tries are
    # refused without checking the password (a form error from allauth, not a 429).
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "login": "30/m/ip",
        "login_failed": "10/m/ip,5/5m/key",
    }
    river = world.river.user
    for _ in range(5):
        wrong_password(client, "river-handle", ATTACKER_IP)
    refused = [wrong_password(client, "river-handle", ATTACKER_IP) for _ in range(2)]
    refused.append(
        client.post(
            "/accounts/login/",
            {"login": "river-handle", "password": PASSWORD},
            REMOTE_ADDR=OTHER_IP,
        )
    )

    signals = security_signals()

    assert all("Too many attempts to sign in" in r.content.decode() for r in refused)
    assert signals.failed_logins == 5  # refused tries were never checked
    assert signals.throttled_accounts == [(river.pk, 3)]
    assert by_ip(signals.throttled_by_ip) == {ATTACKER_IP: 2, OTHER_IP: 1}
    assert signals.rate_limit_hits == 0


def test_it_counts_second_factors_locked_by_wrong_codes(world):
    def wrong_codes(user, count):
        totp_device(user)
        client = Client()
        response = client.post("/accounts/login/", {"login": user.username, "password": PASSWORD})
        assert response["Location"] == "/accounts/login/two-factor/"
        elapsed = 0
        for attempt in range(count):
            # Each wrong code makes the next wait 1 s, 2 s, 4 s...: let that time pass.
            elapsed += 2**attempt
            with clock_shifted(timedelta(seconds=elapsed)):
                page = client.post("/accounts/login/two-factor/", {"code": "000000"})
            assert "That code didn't work" in text_of(page)

    assert security_signals().locked_devices == 0
    wrong_codes(world.lantern.user, 3)
    wrong_codes(world.beacon.user, 2)

    assert TOTPDevice.objects.get(user=world.lantern.user).throttling_failure_count == 3
    assert security_signals().locked_devices == 1
    assert len(events(Action.TWO_FACTOR_FAILED)) == 5


# --- 2FA off, appointments, reveals -----------------------------------------------------------


def turn_off_two_factor(client: Client):
    response = client.post("/account/two-factor/turn-off/")
    if response.status_code == 302 and response["Location"].startswith("/accounts/reauthenticate/"):
        # The password leads back to the page; the button is then pressed again.
        client.get(response["Location"])
        client.post(response["Location"], {"password": PASSWORD})
        response = client.post("/account/two-factor/turn-off/")
    return response


def test_it_lists_two_factor_turned_off(world, commit_each):
    member = make_person("moth-member", email="moth@example.org")
    client = verified_client(member, REMOTE_ADDR=OTHER_IP)

    commit_each(turn_off_two_factor, client)

    assert not TOTPDevice.objects.filter(user=member).exists()
    (disabled,) = events(Action.TWO_FACTOR_DISABLED)
    assert (disabled.actor_id, disabled.subject_id, disabled.ip) == (member.pk, member.pk, OTHER_IP)
    assert security_signals().two_factor_disabled == [disabled]
    # A member may turn it off: admins are not emailed about that.
    assert mail.outbox == []


def test_a_facilitator_cannot_turn_two_factor_off(world, commit_each):
    client = verified_client(world.lantern.user)
    response = commit_each(turn_off_two_factor, client)
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=world.lantern.user, confirmed=True).exists()
    assert events(Action.TWO_FACTOR_DISABLED) == []
    assert security_signals().two_factor_disabled == []
    assert mail.outbox == []


def test_it_emails_admins_when_two_factor_goes_off_for_a_facilitator(world, commit_each):
    # No page lets a facilitator do this today (see the test above); should any path
    # ever record it, every admin hears. Recorded the one way any path would.
    commit_each(
        record_event,
        action=Action.TWO_FACTOR_DISABLED,
        actor=world.lantern.user,
        subject=world.lantern.user,
        ip=OTHER_IP,
    )
    disabled = last_event()
    assert security_signals().two_factor_disabled == [disabled]
    (message,) = mail.outbox
    assert message.to == [ADMIN_EMAIL]
    assert message.subject == (
        "[Support groups] Two-factor authentication was turned off for a facilitator or admin"
    )
    assert f"audit row {disabled.seq}" in message.body
    assert "fac-lantern" not in message.body
    assert OTHER_IP not in message.body


def test_it_lists_new_admins_and_facilitators_and_emails_about_new_admins(world, commit_each):
    # Making an admin takes a superuser, in the Django admin.
    root = User.objects.create_user(
        username="root-keeper", password=PASSWORD, is_staff=True, is_superuser=True
    )
    root_client = verified_client(root)
    appointed = make_person("new-keeper")
    helper = make_person("fac-willow")
    mail.outbox.clear()

    response = commit_each(
        root_client.post,
        f"/admin/accounts/user/{appointed.pk}/change/",
        {"username": "new-keeper", "is_active": "on", "is_staff": "on"},
    )
    assert response.status_code == 302, text_of(response)[:2000]
    commit_each(
        group_services.facilitator_appoint, group=world.group, actor=world.admin, user=helper
    )

    signals = security_signals()
    assert [(e.action_enum, e.actor_id, e.subject_id) for e in signals.appointments] == [
        (Action.FACILITATOR_APPOINTED, world.admin.pk, helper.pk),
        (Action.ADMIN_APPOINTED, root.pk, appointed.pk),
        # The world's own appointments, made moments ago, are in the last 24 hours too.
        (Action.FACILITATOR_APPOINTED, world.admin.pk, world.beacon.user_id),
        (Action.FACILITATOR_APPOINTED, world.admin.pk, world.lantern.user_id),
    ]
    (message,) = mail.outbox  # a new admin is news; a new facilitator is routine
    assert message.subject == "[Support groups] Admin appointed"
    assert message.to == [ADMIN_EMAIL]


def test_it_lists_reveals_and_emails_admins_about_each_one(world, commit_each):
    commit_each(reveal, world.river, world.lantern, ip=OTHER_IP)
    first = last_event()
    commit_each(reveal, world.river, world.lantern, ip=OTHER_IP)
    second = last_event()

    assert security_signals().reveals == [second, first]
    # Every reveal, not once per window.
    assert len(mail.outbox) == 2
    for message, event in zip(mail.outbox, (first, second), strict=True):
        assert message.to == [ADMIN_EMAIL]
        assert message.subject == "[Support groups] Emergency contact details were revealed"
        assert f"audit row {event.seq}" in message.body
        # Where to look, not what was seen.
        for secret in (RIVER_PHONE, RIVER_EMERGENCY, REVEAL_REASON, "river-handle", "River"):
            assert secret not in message.body
        assert "fac-lantern" not in message.body


# --- the 24-hour window -----------------------------------------------------------------------


def test_signals_count_only_the_last_24_hours(world, client, lifted_login_limits):
    river = world.river.user
    with clock_shifted(timedelta(hours=-25)):
        for _ in range(4):
            wrong_password(client, "river-handle", ATTACKER_IP)
        record_event(action=Action.RATE_LIMIT_HIT, ip=ATTACKER_IP, extra={"path": "/x/"})
        reveal(world.river, world.lantern)
        old_reveal = last_event()
        group_services.facilitator_appoint(
            group=world.group, actor=world.admin, user=make_person("fac-old")
        )
        old_appointment = last_event()
    with clock_shifted(timedelta(hours=-23)):
        wrong_password(client, "river-handle", OTHER_IP)
    wrong_password(client, "river-handle", OTHER_IP)
    reveal(world.river, world.lantern)
    new_reveal = last_event()

    signals = security_signals()
    assert signals.failed_logins == 2
    assert by_ip(signals.failed_by_ip) == {OTHER_IP: 2}
    assert signals.failed_by_account == [(river.pk, 2)]
    assert signals.rate_limit_hits == 0
    assert signals.reveals == [new_reveal]
    assert old_appointment not in signals.appointments

    # The same question asked a day ago sees only what had happened by then.
    day_ago = security_signals(now=timezone.now() - timedelta(hours=24))
    assert day_ago.failed_logins == 4
    assert by_ip(day_ago.failed_by_ip) == {ATTACKER_IP: 4}
    assert day_ago.rate_limit_hits == 1
    assert day_ago.reveals == [old_reveal]
    assert day_ago.appointments == [old_appointment]


# --- threshold emails: once per window, not per event -----------------------------------------


def test_25_failed_logins_for_one_account_send_one_email(
    world, client, commit_each, lifted_login_limits, settings
):
    assert settings.ALERT_FAILED_LOGINS_PER_ACCOUNT == 20  # the default: "more than 20"
    # Other people with a recovery email who must not get it.
    make_person(
        "unconfirmed-keeper", staff=True, email="unconfirmed@example.org", email_verified=False
    )
    former = make_person("former-keeper", staff=True, email="former@example.org")
    former.is_active = False
    former.save(update_fields=["is_active"])
    second_admin = make_person("night-keeper", staff=True, email=NIGHT_EMAIL)

    sent_after = []
    for i in range(25):
        # Spread over addresses, so only the per-account threshold can fire.
        commit_each(wrong_password, client, "river-handle", f"192.0.2.{i + 1}")
        sent_after.append(len(mail.outbox))

    assert len(events(Action.LOGIN_FAILED, subject_id=world.river.user_id)) == 25
    # One email to each active admin with a confirmed address, on the 21st failure only.
    assert sent_after == [0] * 20 + [2] * 5
    assert sorted(message.to for message in mail.outbox) == [[ADMIN_EMAIL], [NIGHT_EMAIL]]
    assert second_admin.recovery_email_verified
    for message in mail.outbox:
        assert message.subject == "[Support groups] Many failed sign-ins for one account"
        assert message.body == (
            f"21 failed sign-ins for account {world.river.user_id} in the last hour.\n"
        )
        assert "river-handle" not in message.body


def test_a_new_window_sends_a_new_email(world, client, commit_each, lifted_login_limits, settings):
    settings.ALERT_FAILED_LOGINS_PER_ACCOUNT = 3
    for _ in range(6):
        commit_each(wrong_password, client, "river-handle", ATTACKER_IP)
    assert len(mail.outbox) == 1

    # Two hours later the same account is attacked again: a new window, a new email.
    with clock_shifted(timedelta(hours=2)):
        for i in range(6):
            commit_each(wrong_password, client, "river-handle", ATTACKER_IP)
            if i < 3:
                assert len(mail.outbox) == 1  # the old burst is over an hour old now
    assert len(mail.outbox) == 2
    assert subjects(mail.outbox) == ["[Support groups] Many failed sign-ins for one account"] * 2
    assert mail.outbox[1].body == (
        f"4 failed sign-ins for account {world.river.user_id} in the last hour.\n"
    )


def test_many_failed_logins_from_one_address_send_one_email(
    world, client, commit_each, lifted_login_limits, settings
):
    settings.ALERT_FAILED_LOGINS_PER_IP = 5
    for i in range(9):
        # Different handles, some of no account at all: only the address links them.
        commit_each(wrong_password, client, f"guess-{i}", ATTACKER_IP)
    commit_each(wrong_password, client, "guess-x", OTHER_IP)

    (message,) = mail.outbox
    assert message.subject == "[Support groups] Many failed sign-ins from one address"
    assert message.to == [ADMIN_EMAIL]
    assert message.body.startswith("6 failed sign-ins from one address in the last hour")
    assert ATTACKER_IP not in message.body
    assert ip_blind_index(ATTACKER_IP) not in message.body


def test_failed_logins_below_the_thresholds_send_nothing(world, client, commit_each):
    for _ in range(5):
        commit_each(wrong_password, client, "river-handle", ATTACKER_IP)
    assert len(events(Action.LOGIN_FAILED)) == 5
    assert mail.outbox == []


# --- a broken chain ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_broken_chain_is_one_email_per_check_and_shows_in_the_console(world):
    admin_client = verified_client(world.admin)
    make_events(3)
    tampered = last_event().seq - 1
    as_superuser(f"UPDATE audit_event SET extra = '{{\"n\": 99}}' WHERE seq = {tampered}")
    mail.outbox.clear()

    with pytest.raises(CommandError, match=rf"broken at row {tampered} .*altered"):
        call_command("verify_audit_log", stdout=StringIO(), stderr=StringIO())

    (message,) = mail.outbox
    assert message.to == [ADMIN_EMAIL]
    assert message.subject == "[Support groups] The audit log failed verification"
    assert f"problem at row {tampered}: its content does not match its hash" in message.body
    (broken,) = events(Action.AUDIT_CHAIN_BROKEN)
    assert broken.extra == {"broken_seq": tampered, "verified": tampered - 1}

    for url in ("/audit/", "/audit/signals/"):
        page = text_of(admin_client.get(url))
        assert f"Chain broken at row {tampered} (its content does not match its hash" in page
