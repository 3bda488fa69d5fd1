"""Field-level encryption at rest, blind indexes and key rotation.

Encrypted columns hold Fernet tokens made with the first key of
``FIELD_ENCRYPTION_KEYS``; every key in the list can decrypt, so keys can be rotated
(add a new key in front, run ``manage.py rotate_encryption_keys``, drop the old key).
A value that no key can decrypt raises ``DecryptionError``: we never hand ciphertext
to code that expects plaintext.

Fernet tokens are randomised, so encrypted columns cannot be searched. Where a lookup
is needed (email), a separate blind-index column stores an HMAC-SHA256 of the
normalised value under ``BLIND_INDEX_KEY``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction


class DecryptionError(Exception):
    """An encrypted value could not be decrypted with any configured key."""


@functools.cache
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is not set.")
    try:
        fernets = [Fernet(key.encode()) for key in keys]
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be comma-separated Fernet keys "
            "(32 url-safe base64-encoded bytes each)."
        ) from error
    return MultiFernet(fernets), fernets[0]


def multi_fernet() -> MultiFernet:
    return _fernets(tuple(settings.FIELD_ENCRYPTION_KEYS))[0]


def primary_fernet() -> Fernet:
    return _fernets(tuple(settings.FIELD_ENCRYPTION_KEYS))[1]


def encrypt_str(value: str) -> str:
    return multi_fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt_str(token: str, *, where: str = "value", ttl: int | None = None) -> str:
    """``ttl`` (seconds) also refuses tokens older than that (for links in emails)."""
    try:
        return multi_fernet().decrypt(token.encode("ascii"), ttl=ttl).decode("utf-8")
    except (InvalidToken, UnicodeError) as error:
        raise DecryptionError(
            f"Cannot decrypt {where}: no key in FIELD_ENCRYPTION_KEYS matches it, "
            "or the stored value is damaged."
        ) from error


def is_current_token(token: str) -> bool:
    """True when ``token`` is already encrypted with the first (current) key."""
    try:
        primary_fernet().decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


def rotate_token(token: str, *, where: str = "value") -> str:
    try:
        return multi_fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as error:
        raise DecryptionError(f"Cannot rotate {where}: no configured key decrypts it.") from error


def normalise_email(value: str) -> str:
    return value.strip().casefold()


def blind_index(value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of a normalised value; ``purpose`` keeps indexes of different kinds apart."""
    key = settings.BLIND_INDEX_KEY
    if not key:
        raise ImproperlyConfigured("BLIND_INDEX_KEY is not set.")
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def email_blind_index(email: str) -> str:
    return blind_index(normalise_email(email), purpose="email")


class _EncryptedMixin:
    """Stores Fernet tokens in a text column; Python sees the decrypted value."""

    encrypted = True

    def _where(self) -> str:
        model = getattr(self, "model", None)
        label = model._meta.label if model else "?"
        return f"{label}.{self.name}"

    def get_internal_type(self) -> str:
        return "TextField"

    def db_type(self, connection):  # noqa: ANN001 - Django signature
        return models.TextField().db_type(connection)

    def get_lookup(self, lookup_name: str):
        # Tokens are randomised: equality on them is meaningless and would silently
        # match nothing. Only NULL checks make sense.
        if lookup_name != "isnull":
            raise TypeError(
                f"{self._where()} is encrypted and cannot be filtered with "
                f"'{lookup_name}'; use a blind index."
            )
        return super().get_lookup(lookup_name)


class EncryptedTextField(_EncryptedMixin, models.TextField):
    def from_db_value(self, value, expression, connection):  # noqa: ANN001
        if value is None:
            return None
        return decrypt_str(value, where=self._where())

    def get_prep_value(self, value: Any):
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt_str(str(value))


class EncryptedJSONField(_EncryptedMixin, models.TextField):
    """Any JSON-serialisable value, encrypted as a whole."""

    def from_db_value(self, value, expression, connection):  # noqa: ANN001
        if value is None:
            return None
        return json.loads(decrypt_str(value, where=self._where()))

    def to_python(self, value: Any):
        return value

    def get_prep_value(self, value: Any):
        if value is None:
            return None
        return encrypt_str(json.dumps(value, separators=(",", ":"), sort_keys=True))

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj))


def encrypted_fields() -> Iterator[tuple[type[models.Model], list[models.Field]]]:
    """Every concrete model with encrypted columns, and those columns."""
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = [
            field for field in model._meta.concrete_fields if getattr(field, "encrypted", False)
        ]
        if fields:
            yield model, fields


def rotate_all_encrypted_columns(
    *, batch_size: int = 500, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Re-encrypt every encrypted value of every model with the first key.

    Works through each table in primary-key order, one transaction per batch. Values
    already under the first key are skipped, so an interrupted run can simply be run
    again and continues where it stopped. Returns rows changed per model label.
    """
    touched: dict[str, int] = {}
    seen = 0
    for model, fields in encrypted_fields():
        last_pk = None
        changed = 0
        while True:
            batch = rotate_batch(model, fields, after_pk=last_pk, batch_size=batch_size)
            changed += batch.changed
            seen += batch.seen
            if progress:
                progress(seen)
            if batch.seen < batch_size:
                break
            last_pk = batch.last_pk
        touched[model._meta.label] = changed
    return touched


@dataclass(frozen=True)
class RotationStep:
    """Where a rotation run one batch at a time stands after a batch."""

    model_label: str  # the table the batch was in ("" once everything is done)
    last_pk: Any  # the last primary key done there (None: start at its beginning)
    seen: int
    changed: int
    done: bool


def rotate_next_batch(*, model_label: str, after_pk: Any, batch_size: int) -> RotationStep:
    """One batch of a rotation that is driven from outside (an admin's page): the batch
    after ``after_pk`` in ``model_label``'s table ("" and None: the very beginning),
    going on to the next tables while they have no rows left. The answer says where the
    next batch starts; ``done`` once every table is through."""
    tables = list(encrypted_fields())
    labels = [model._meta.label for model, _ in tables]
    index = labels.index(model_label) if model_label in labels else 0
    if model_label not in labels:
        after_pk = None
    while True:
        model, fields = tables[index]
        batch = rotate_batch(model, fields, after_pk=after_pk, batch_size=batch_size)
        if batch.seen == batch_size:
            return RotationStep(labels[index], batch.last_pk, batch.seen, batch.changed, False)
        if index + 1 == len(tables):
            return RotationStep("", None, batch.seen, batch.changed, True)
        index, after_pk = index + 1, None
        if batch.seen:
            return RotationStep(labels[index], None, batch.seen, batch.changed, False)


@dataclass(frozen=True)
class _Batch:
    seen: int
    changed: int
    last_pk: Any


def rotate_batch(
    model: type[models.Model], fields: list[models.Field], *, after_pk: Any, batch_size: int
) -> _Batch:
    """Re-encrypt up to ``batch_size`` rows of one table after ``after_pk``, in one
    transaction; values already under the first key are left alone."""
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    columns = [connection.ops.quote_name(field.column) for field in fields]
    where = f"{model._meta.label}"
    select = f"SELECT {pk}, {', '.join(columns)} FROM {table}"  # noqa: S608 - quoted identifiers
    params: list[Any] = []
    if after_pk is not None:
        select += f" WHERE {pk} > %s"
        params.append(after_pk)
    select += f" ORDER BY {pk} LIMIT %s"
    params.append(batch_size)
    changed = 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Lets the audit table's append-only trigger accept re-encryption.
                cursor.execute("SET LOCAL supportgroups.rotating_keys = 'on'")
        with connection.cursor() as cursor:
            cursor.execute(select, params)
            rows = cursor.fetchall()
        for row in rows:
            updates = {
                column: rotate_token(token, where=f"{where} (id {row[0]}, {column})")
                for column, token in zip(columns, row[1:], strict=True)
                if token and not is_current_token(token)
            }
            if updates:
                assignments = ", ".join(f"{column} = %s" for column in updates)
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {table} SET {assignments} WHERE {pk} = %s",  # noqa: S608
                        [*updates.values(), row[0]],
                    )
                changed += 1
    return _Batch(seen=len(rows), changed=changed, last_pk=rows[-1][0] if rows else after_pk)


def count_encrypted_rows() -> int:
    return sum(model._default_manager.count() for model, _ in encrypted_fields())
