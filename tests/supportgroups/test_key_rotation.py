"""`manage.py rotate_encryption_keys`: re-encrypt everything with the first key.

These tests commit for real (transaction=True): the command commits batch by batch, and
its resumability is only meaningful if earlier batches really stay committed.
"""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from accounts.models import User
from audit.events import Action
from audit.models import Event
from supportgroups.crypto import DecryptionError, is_current_token
from tests.factories import make_events, make_user

pytestmark = pytest.mark.django_db(transaction=True)

CONTACT_COLUMNS = ("recovery_email", "phone", "emergency_contact")


def new_key():
    return Fernet.generate_key().decode()


def make_people(count, *, prefix="person"):
    """Users with every contact field set; returns {pk: (email, phone, emergency)}."""
    people = {}
    for i in range(count):
        details = (f"{prefix}{i}@mail.test", f"+1 555 010{i:02d}", f"Kin {prefix} {i}")
        user = make_user(
            f"{prefix}-{i}", email=details[0], phone=details[1], emergency_contact=details[2]
        )
        people[user.pk] = details
    return people


def rotate(**options):
    out, err = StringIO(), StringIO()
    call_command("rotate_encryption_keys", stdout=out, stderr=err, **options)
    return out.getvalue()


def verify_audit_log():
    out = StringIO()
    call_command("verify_audit_log", stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()[0]  # the summary; the head follows it


def raw_tokens(table, columns):
    """{pk: (token, ...)} straight from the database."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {', '.join(quote(c) for c in columns)} FROM {quote(table)} ORDER BY id"
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def assert_all_under(key, table, columns):
    with override_settings(FIELD_ENCRYPTION_KEYS=[key]):
        for pk, tokens in raw_tokens(table, columns).items():
            for token in tokens:
                assert token is None or is_current_token(token), (table, pk)


def assert_people_read(people):
    for pk, details in people.items():
        user = User.objects.get(pk=pk)
        assert (user.recovery_email, user.phone, user.emergency_contact) == details


def test_it_rotates_every_row_and_then_reads_with_only_the_new_key():
    old, new = settings.FIELD_ENCRYPTION_KEYS[0], new_key()
    people = make_people(5)
    make_user("no-contact-details")  # nothing to re-encrypt: not counted
    ips = {e.pk: e.ip for e in make_events(4, ip=lambda i: f"198.51.100.{i + 1}")}
    make_events(1)  # no IP: not counted
    assert verify_audit_log().strip() == "Audit log intact: 5 rows verified."

    with override_settings(FIELD_ENCRYPTION_KEYS=[new, old]):
        output = rotate(batch_size=2, verbosity=2)
    assert "accounts.User: 5" in output
    assert "audit.Event: 4" in output
    assert output.splitlines()[-1] == "Re-encrypted 9 rows with the first key."

    with override_settings(FIELD_ENCRYPTION_KEYS=[new]):
        assert_people_read(people)
        for pk, ip in ips.items():
            assert Event.objects.get(pk=pk).ip == ip
        # The rotation is itself audited, and the chain (which covers the decrypted IP)
        # still holds.
        rotated = Event.objects.get(action=Action.ENCRYPTION_KEYS_ROTATED)
        assert rotated.extra == {"rows_reencrypted": 9, "batch_size": 2}
        assert verify_audit_log().strip() == "Audit log intact: 6 rows verified."
        # Idempotent: nothing left to do.
        assert rotate(batch_size=2).strip() == "Re-encrypted 0 rows with the first key."

    assert_all_under(new, "accounts_user", CONTACT_COLUMNS)
    assert_all_under(new, "audit_event", ["ip"])
    # The old key alone can no longer read anything: the data really was re-encrypted.
    with override_settings(FIELD_ENCRYPTION_KEYS=[old]), pytest.raises(DecryptionError):
        User.objects.get(pk=next(iter(people)))


def test_it_only_touches_rows_that_are_not_yet_under_the_new_key():
    old, new = settings.FIELD_ENCRYPTION_KEYS[0], new_key()
    people = make_people(5)
    make_events(3, ip="192.0.2.1")
    already = list(people)[:2]
    with override_settings(FIELD_ENCRYPTION_KEYS=[new, old]):
        # Saving re-encrypts with the first key: these two are done before the command.
        for pk in already:
            User.objects.get(pk=pk).save()
        before = raw_tokens("accounts_user", CONTACT_COLUMNS)
        output = rotate(batch_size=2, verbosity=2)
    assert "accounts.User: 3" in output
    assert "audit.Event: 3" in output
    assert output.splitlines()[-1] == "Re-encrypted 6 rows with the first key."
    after = raw_tokens("accounts_user", CONTACT_COLUMNS)
    for pk in already:
        assert after[pk] == before[pk]  # byte for byte untouched
    for pk in list(people)[2:]:
        assert all(a != b for a, b in zip(after[pk], before[pk], strict=True))

    with override_settings(FIELD_ENCRYPTION_KEYS=[new]):
        assert_people_read(people)
        assert rotate(batch_size=2).strip() == "Re-encrypted 0 rows with the first key."


def test_it_resumes_where_an_interrupted_rotation_stopped():
    old, new, stranger = settings.FIELD_ENCRYPTION_KEYS[0], new_key(), new_key()
    people = make_people(4)  # under the old key
    make_events(3, ip="192.0.2.1")
    with override_settings(FIELD_ENCRYPTION_KEYS=[stranger]):
        # A row written with a key this deployment does not have.
        lost = make_user("stranger", phone="+1 555 0199", emergency_contact="Kin X")
        make_user("stranger-2", phone="+1 555 0198")

    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[new, old]),
        pytest.raises(CommandError) as caught,
    ):
        rotate(batch_size=2)
    message = str(caught.value)
    assert "Cannot rotate accounts.User" in message
    assert "Keep the old key in FIELD_ENCRYPTION_KEYS and retry" in message
    assert "gAAAAA" not in message
    # The failed run is not recorded as a rotation.
    assert not Event.objects.filter(action=Action.ENCRYPTION_KEYS_ROTATED).exists()

    # Batches before the bad row were committed: the log and the four users are done.
    assert_all_under(new, "audit_event", ["ip"])
    users_before = raw_tokens("accounts_user", CONTACT_COLUMNS)
    with override_settings(FIELD_ENCRYPTION_KEYS=[new]):
        assert_people_read(people)

    # With the missing key supplied, the next run touches only the two rows left.
    with override_settings(FIELD_ENCRYPTION_KEYS=[new, old, stranger]):
        output = rotate(batch_size=2, verbosity=2)
    assert "accounts.User: 2" in output
    assert "audit.Event: 0" in output
    assert output.splitlines()[-1] == "Re-encrypted 2 rows with the first key."
    users_after = raw_tokens("accounts_user", CONTACT_COLUMNS)
    for pk in people:
        assert users_after[pk] == users_before[pk]  # byte for byte untouched

    with override_settings(FIELD_ENCRYPTION_KEYS=[new]):
        assert_people_read(people)
        lost.refresh_from_db()
        assert (lost.phone, lost.emergency_contact) == ("+1 555 0199", "Kin X")
        assert verify_audit_log().strip() == "Audit log intact: 4 rows verified."


def test_it_rejects_a_batch_size_below_one():
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        rotate(batch_size=0)
