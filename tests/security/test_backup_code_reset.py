"""Issue 18, point 8: resetting a password with a backup code costs the same whoever the
handle is, and a stranger's wrong guesses cannot lock the owner out of their own codes.

Measured by the work done (the SQL each attempt runs, the audit rows it writes), not by
the clock."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import BackupCodeDevice
from audit.events import Action
from tests.accounts.conftest import new_client
from tests.database import events

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new long passphrase"
STRANGER_IP = "203.0.113.66"
OWNER_IP = "198.51.100.10"


def reset(handle, code, *, ip, password=NEW_PASSWORD):
    return new_client().post(
        "/accounts/password/reset/backup-code/",
        {"handle": handle, "code": code, "password1": password, "password2": password},
        REMOTE_ADDR=ip,
    )


def shape(sql: str) -> str:
    """A statement without its values (NULL is a value too): what kind of work it is."""
    return re.sub(r"'[^']*'|\"s\d+_x\d+\"|\b\d+\b|\bNULL\b", "?", sql)


def work_of(handle, code, *, ip):
    with CaptureQueriesContext(connection) as queries:
        response = reset(handle, code, ip=ip)
    assert response.status_code == 200
    return [shape(q["sql"]) for q in queries.captured_queries]


def test_an_unknown_handle_costs_the_same_work_as_a_known_one(owner_with_2fa, outsider):
    known = work_of(owner_with_2fa.user.username, "abcde-fghjk", ip="192.0.2.1")
    no_codes = work_of(outsider.username, "abcde-fghjk", ip="192.0.2.2")
    unknown = work_of("nobody-by-this-name", "abcde-fghjk", ip="192.0.2.3")

    # The same statements, in the same order: one lookup, one keyed hash checked by one
    # UPDATE, one audit row (with its chain's lock).
    assert known == no_codes == unknown
    failed = events(Action.TWO_FACTOR_FAILED, extra__during="password_reset")
    assert [e.subject_id for e in failed] == [owner_with_2fa.user.pk, outsider.pk, None]


def test_a_strangers_wrong_guesses_do_not_lock_the_owner_out(owner_with_2fa):
    user, codes = owner_with_2fa.user, owner_with_2fa.backup_codes

    stranger = [reset(user.username, "abcde-fghjk", ip=STRANGER_IP).status_code for _ in range(12)]

    assert stranger[-1] == 429  # the stranger is slowed down...
    device = BackupCodeDevice.objects.get(user=user)
    assert device.throttling_failure_count == 0  # ...without touching the owner's codes
    owner = reset(user.username, codes[0], ip=OWNER_IP)
    assert owner.status_code == 302
    assert owner["Location"] == "/accounts/login/"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_the_owners_codes_still_work_at_sign_in_after_a_strangers_guesses(owner_with_2fa):
    from tests.accounts.conftest import log_in

    user, codes = owner_with_2fa.user, owner_with_2fa.backup_codes
    for _ in range(7):
        reset(user.username, "abcde-fghjk", ip=STRANGER_IP)

    client = new_client()
    assert log_in(client, user.username)["Location"] == "/accounts/login/two-factor/"
    response = client.post("/accounts/login/two-factor/", {"code": codes[1]})

    assert response.status_code == 302
    assert response["Location"] != "/accounts/login/two-factor/"


def test_a_used_code_does_not_work_twice(owner_with_2fa):
    user, code = owner_with_2fa.user, owner_with_2fa.backup_codes[0]
    assert reset(user.username, code, ip=OWNER_IP).status_code == 302

    again = reset(user.username, code, ip=OWNER_IP, password="yet another long passphrase")

    assert again.status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
