"""Encrypted model fields, blind indexes, and the promise that a raw dump leaks nothing."""

import hashlib

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.test import override_settings
from django.test.utils import isolate_apps

from accounts.models import User
from accounts.selectors import user_by_recovery_email
from audit.events import Action
from audit.services import record_event
from supportgroups.crypto import (
    DecryptionError,
    EncryptedJSONField,
    EncryptedTextField,
    blind_index,
    email_blind_index,
)
from tests.database import dump_every_table, public_tables
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def vault():
    """A throwaway model with one field of each kind, in its own table.

    It lives in an isolated app registry, so key rotation never sees it, and its table is
    created inside the test's transaction, so it disappears with the rollback.
    """
    with isolate_apps("supportgroups"):

        class Vault(models.Model):
            text = EncryptedTextField(null=True, blank=True)
            data = EncryptedJSONField(null=True, blank=True)

            class Meta:
                app_label = "supportgroups"

            def __str__(self):
                return f"vault {self.pk}"

        with connection.schema_editor() as editor:
            editor.create_model(Vault)
        yield Vault


def raw_row(model, pk):
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT text, data FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()


def other_key():
    return Fernet.generate_key().decode()


# -- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["hello", "", "Zoë 🌧️ línea\nzwei\ttabs", "x" * 10_000, "gAAAAA-looks-like-a-token"],
)
def test_it_round_trips_text(vault, text):
    row = vault.objects.create(text=text)
    assert vault.objects.get(pk=row.pk).text == text
    stored, _ = raw_row(vault, row.pk)
    assert stored != text
    assert Fernet(settings.FIELD_ENCRYPTION_KEYS[0].encode()).decrypt(stored.encode()) == (
        text.encode()
    )


@pytest.mark.parametrize(
    "data",
    [
        {"answers": [1, 2.5, "drei"], "nested": {"ok": True, "none": None}, "ü": "ß"},
        ["a", {"b": 1}],
        "just a string",
        0,
        False,
        [],
        {},
    ],
)
def test_it_round_trips_json(vault, data):
    row = vault.objects.create(data=data)
    fresh = vault.objects.get(pk=row.pk)
    assert fresh.data == data
    assert type(fresh.data) is type(data)
    _, stored = raw_row(vault, row.pk)
    assert stored is not None
    assert stored.startswith("gAAAAA")  # a Fernet token, not JSON


def test_it_keeps_none_as_null(vault):
    row = vault.objects.create(text=None, data=None)
    assert raw_row(vault, row.pk) == (None, None)
    fresh = vault.objects.get(pk=row.pk)
    assert fresh.text is None
    assert fresh.data is None


def test_it_encrypts_the_same_value_differently_each_time(vault):
    first = vault.objects.create(text="same")
    second = vault.objects.create(text="same")
    assert raw_row(vault, first.pk)[0] != raw_row(vault, second.pk)[0]


def test_it_encrypts_values_written_by_update_and_values_list_decrypts(vault):
    row = vault.objects.create(text="before")
    vault.objects.filter(pk=row.pk).update(text="after", data={"k": "v"})
    stored_text, stored_data = raw_row(vault, row.pk)
    assert "after" not in stored_text
    assert '"k"' not in stored_data
    assert list(vault.objects.values_list("text", "data")) == [("after", {"k": "v"})]


# -- filtering --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lookup",
    ["text", "text__exact", "text__iexact", "text__icontains", "text__in", "data", "data__k"],
)
def test_it_refuses_to_filter_on_encrypted_values(vault, lookup):
    value = ["a"] if lookup.endswith("__in") else "a"
    with pytest.raises(TypeError, match="encrypted"):
        vault.objects.filter(**{lookup: value})
    with pytest.raises(TypeError, match="blind index"):
        vault.objects.exclude(**{lookup: value})


def test_it_refuses_to_filter_users_by_contact_details():
    with pytest.raises(TypeError, match="accounts.User.phone"):
        User.objects.filter(phone="+44 7700 900123")
    with pytest.raises(TypeError, match="accounts.User.recovery_email"):
        User.objects.filter(recovery_email__iexact="someone@example.test")


def test_it_allows_isnull(vault):
    vault.objects.create(text="set")
    vault.objects.create(text=None)
    assert vault.objects.filter(text__isnull=True).count() == 1
    assert vault.objects.filter(text__isnull=False).count() == 1
    assert vault.objects.filter(data__isnull=True).count() == 2


# -- decryption failures ----------------------------------------------------------------


def test_it_raises_instead_of_returning_ciphertext_with_a_wrong_key(vault):
    row = vault.objects.create(text="secret text", data={"secret": 1})
    stored_text, _ = raw_row(vault, row.pk)
    with override_settings(FIELD_ENCRYPTION_KEYS=[other_key()]):
        with pytest.raises(DecryptionError, match=r"supportgroups\.Vault\.") as caught:
            vault.objects.get(pk=row.pk)
        assert stored_text not in str(caught.value)
        with pytest.raises(DecryptionError):
            list(vault.objects.values_list("data", flat=True))
        # NULLs still read: nothing to decrypt.
        empty = vault.objects.create(text=None)
        assert vault.objects.get(pk=empty.pk).text is None


def test_it_reads_with_any_configured_key_and_writes_with_the_first(vault):
    old = settings.FIELD_ENCRYPTION_KEYS[0]
    new = other_key()
    row = vault.objects.create(text="kept")
    with override_settings(FIELD_ENCRYPTION_KEYS=[new, old]):
        fresh = vault.objects.get(pk=row.pk)
        assert fresh.text == "kept"
        fresh.save()
    stored, _ = raw_row(vault, row.pk)
    assert Fernet(new.encode()).decrypt(stored.encode()) == b"kept"


def test_it_raises_on_a_damaged_value(vault):
    row = vault.objects.create(text="fine")
    table = connection.ops.quote_name(vault._meta.db_table)
    for damaged in ["plain text, not a token", "gAAAAAbroken", "ünïcode"]:
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET text = %s WHERE id = %s", [damaged, row.pk])
        with pytest.raises(DecryptionError):
            vault.objects.get(pk=row.pk)


def test_it_refuses_a_malformed_key_naming_the_setting(vault):
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=["not-a-fernet-key"]),
        pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"),
    ):
        vault.objects.create(text="x")


# -- blind index and lookup -------------------------------------------------------------


def test_it_computes_a_deterministic_keyed_blind_index():
    first = email_blind_index("Someone@Example.test")
    assert first == email_blind_index("  someone@example.TEST ")
    assert len(first) == 64
    assert first != email_blind_index("someone.else@example.test")
    assert blind_index("someone@example.test", purpose="email") == first
    assert blind_index("someone@example.test", purpose="other") != first
    with override_settings(BLIND_INDEX_KEY="another key entirely"):
        assert email_blind_index("someone@example.test") != first


def test_it_finds_a_user_by_recovery_email_in_any_case_or_spacing():
    user = make_user("lookup-user", email="Robin.Example@Mail.test")
    make_user("someone-else", email="other@mail.test")
    assert user_by_recovery_email("Robin.Example@Mail.test") == user
    assert user_by_recovery_email("  robin.example@MAIL.TEST\n") == user
    assert user_by_recovery_email("robin.example@mail.tes") is None
    assert user_by_recovery_email("nobody@mail.test") is None
    assert user_by_recovery_email("") is None


def test_it_clears_the_email_and_its_index_together():
    user = make_user("clearing", email="clear.me@mail.test")
    user.set_recovery_email("  ")
    user.save()
    user.refresh_from_db()
    assert user.recovery_email is None
    assert user.recovery_email_index is None
    assert user_by_recovery_email("clear.me@mail.test") is None


# -- the raw dump -----------------------------------------------------------------------


def test_it_keeps_contact_details_out_of_a_raw_dump_of_every_table():
    email = "Robin.Example@Mail.test"
    phone = "+44 7700 900123"
    emergency = "Alex Doe, sister, +44 20 7946 0958"
    ip = "203.0.113.77"
    user = User.objects.create_user(
        username="quiet-heron", email=email, password="a long passphrase for argon2"
    )
    user.phone = phone
    user.emergency_contact = emergency
    user.save()
    record_event(action=Action.CONTACT_DETAILS_CHANGED, actor=user, subject=user, ip=ip)

    tables, dump = public_tables(), dump_every_table()

    # The dump really covers the user's row and the audit log.
    assert {"accounts_user", "audit_event", "django_session"} <= set(tables)
    assert "quiet-heron" in dump
    assert f"accounts_user: {user.pk} |" in dump
    folded = dump.casefold()
    secrets = [
        email,
        email.split("@")[0],  # not even the local part
        phone,
        phone.replace(" ", ""),
        "7700 900123",
        "7700900123",
        emergency,
        "Alex Doe",
        "7946 0958",
        ip,
        # The blind index must be keyed, not a plain hash anyone could recompute.
        hashlib.sha256(email.strip().casefold().encode()).hexdigest(),
        hashlib.sha256(email.encode()).hexdigest(),
        hashlib.md5(email.strip().casefold().encode()).hexdigest(),  # noqa: S324
    ]
    for secret in secrets:
        assert secret not in dump, secret
        assert secret.casefold() not in folded, secret

    # ...and yet the application reads everything back, and finds the user by email.
    fresh = User.objects.get(pk=user.pk)
    assert (fresh.recovery_email, fresh.phone, fresh.emergency_contact) == (
        email,
        phone,
        emergency,
    )
    assert user_by_recovery_email("robin.example@mail.test ") == user
    assert user_by_recovery_email("robin@mail.test") is None
