"""The one way rows enter the audit log."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from audit.chain import compute_hash
from audit.events import Action
from audit.models import GENESIS_HASH, Event
from supportgroups.crypto import blind_index

# Keys that must never appear in ``extra``: the log names ids and actions, never content.
FORBIDDEN_EXTRA_KEYS = frozenset(
    {
        "body",
        "text",
        "message",
        "answer",
        "answers",
        "note",
        "notes",
        "password",
        "secret",
        "token",
        "code",
        "email",
        "phone",
        "emergency_contact",
        "ip",
    }
)

# Any constant works; it only has to be the same for every writer.
_CHAIN_LOCK_ID = 0x5347_4155  # "SGAU"


def ip_blind_index(ip: str) -> str:
    try:
        canonical = ipaddress.ip_address(ip.strip()).compressed
    except ValueError:
        canonical = ip.strip().lower()
    return blind_index(canonical, purpose="ip")


@transaction.atomic
def record_event(
    *,
    action: Action,
    actor: models.Model | None = None,
    subject: models.Model | None = None,
    target: models.Model | None = None,
    group_id: int | None = None,
    ip: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Event:
    """Append one event, chained to the previous row.

    Runs inside the caller's transaction, so the event exists exactly when the change it
    describes does. Writers are serialised (a PostgreSQL advisory lock held until commit;
    SQLite runs IMMEDIATE transactions) so two events never claim the same place.
    """
    extra = dict(extra or {})
    _check_extra(extra)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])
    last = Event.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    event = Event(
        seq=seq,
        created_at=timezone.now(),
        actor_id=getattr(actor, "pk", None),
        subject_id=getattr(subject, "pk", None),
        action=int(action),
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        group_id=group_id,
        ip=ip or None,
        ip_index=ip_blind_index(ip) if ip else "",
        extra=extra,
        prev_hash=prev_hash,
    )
    event.hash = compute_hash(prev_hash, event)
    event.save(force_insert=True)
    return event


def _check_extra(value: Any, path: str = "extra") -> None:
    """Only ids, counts, flags and short labels: no content, no secrets, no floats.

    Floats are refused because JSON storage may hand them back in another form (1e16 as
    an integer), which would make an honest row look altered.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: keys must be strings")
            if key.casefold() in FORBIDDEN_EXTRA_KEYS:
                raise ValueError(f"Audit {path} must not carry content or secrets: {key!r}")
            _check_extra(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_extra(item, f"{path}[{index}]")
    elif not (value is None or isinstance(value, str | int | bool)):
        raise ValueError(f"{path}: only strings, whole numbers, booleans and null are allowed")


def request_ip(request) -> str | None:  # noqa: ANN001
    """The client address as the ASGI server saw it (Daphne applies --proxy-headers)."""
    return request.META.get("REMOTE_ADDR") or None
