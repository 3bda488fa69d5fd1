"""The one way rows enter the audit log."""

from __future__ import annotations

import ipaddress
from datetime import UTC
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.utils import timezone

from audit.chain import HeadAnchor, compute_hash, verify_chain
from audit.events import Action
from audit.models import GENESIS_HASH, ChainCheckpoint, Event
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


class SecurityAlerts(Protocol):
    def consider(self, event: Event) -> None: ...

    def alert_admins(self, subject: str, body: str) -> bool: ...


# The emails to admins about what the log sees (``accounts.alerts``, handed over by
# accounts at start-up): the log sits below the accounts whose admins it emails, so it is
# given the sender rather than importing it.
_security_alerts: SecurityAlerts | None = None


def security_alerts_use(alerts: SecurityAlerts) -> None:
    global _security_alerts
    _security_alerts = alerts


def _alerts() -> SecurityAlerts:
    if _security_alerts is None:
        raise ImproperlyConfigured("No security alerts: is the accounts app installed?")
    return _security_alerts


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
    if event.action_enum in _ALERTING_ACTIONS:
        transaction.on_commit(lambda: _consider_alert(event))
    return event


_ALERTING_ACTIONS = frozenset(
    {
        Action.LOGIN_FAILED,
        Action.CONTACT_DETAILS_REVEALED,
        Action.TWO_FACTOR_DISABLED,
        Action.ADMIN_APPOINTED,
        # Not AUDIT_CHAIN_BROKEN: chain_verify_and_record emails about it itself, with the
        # row and the problem, so alerting on the event too would send every admin two.
    }
)


def _consider_alert(event: Event) -> None:
    _alerts().consider(event)


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


@transaction.atomic
def rate_limit_hit_record(*, path: str, ip: str | None) -> None:
    """A request turned away with 429 (allauth's rate limits or ours), for the security
    signals. The path is cut short: it is a hint, and query strings stay out of the log."""
    record_event(action=Action.RATE_LIMIT_HIT, ip=ip, extra={"path": path[:100]})


def request_ip(request) -> str | None:  # noqa: ANN001
    """The client address as the ASGI server saw it (Daphne applies --proxy-headers)."""
    return request.META.get("REMOTE_ADDR") or None


# --- the console, verification and pruning ---------------------------------------------------


def audit_log_viewed(*, actor, filters: list[str], ip: str | None, page: str = "events") -> None:  # noqa: ANN001
    """Looking at the log is itself logged (which filters, never their values)."""
    with transaction.atomic():
        record_event(
            action=Action.AUDIT_LOG_VIEWED,
            actor=actor,
            ip=ip,
            extra={"page": page, "filters": sorted(filters)},
        )


def audit_log_exported(*, actor, filters: list[str], rows: int, fmt: str, ip: str | None) -> None:  # noqa: ANN001
    with transaction.atomic():
        record_event(
            action=Action.AUDIT_LOG_EXPORTED,
            actor=actor,
            ip=ip,
            extra={"filters": sorted(filters), "rows": rows, "format": fmt},
        )


def chain_verify_and_record(*, expected_head=None, progress=None):  # noqa: ANN001, ANN201
    """Verify the whole chain, keep the result for the console, alert admins if broken.

    Besides walking the chain, the head is compared with the furthest row an earlier
    verification saw (the stored checkpoint) and with ``expected_head``, a
    :class:`~audit.chain.HeadAnchor` an operator kept outside the database: rows cut off
    the end leave a chain that still links up, and only an anchor shows they are gone.
    """
    anchors = [anchor for anchor in (_checkpoint_anchor(), expected_head) if anchor]
    result = verify_chain(anchors=anchors, progress=progress)
    checkpoint = ChainCheckpoint.objects.create(
        checked_at=timezone.now(),
        verified_rows=result.verified,
        last_seq=result.head_seq if result.ok else result.broken_seq,
        last_hash=result.head_hash if result.ok else "",
        ok=result.ok,
        broken_seq=result.broken_seq,
        problem=result.problem[:300],
    )
    if not result.ok:
        with transaction.atomic():
            record_event(
                action=Action.AUDIT_CHAIN_BROKEN,
                extra={"broken_seq": result.broken_seq, "verified": result.verified},
            )
        _alerts().alert_admins(
            "The audit log failed verification",
            f"verify_audit_log found a problem at row {result.broken_seq}: {result.problem}. "
            "Investigate before trusting the log after that row.",
        )
    return result, checkpoint


def _checkpoint_anchor():  # noqa: ANN202
    """The furthest head a successful verification recorded (the furthest, not the
    latest, so that deleting the newest checkpoint does not move the anchor back)."""
    checkpoint = (
        ChainCheckpoint.objects.filter(ok=True, last_seq__isnull=False)
        .exclude(last_hash="")
        .order_by("-last_seq", "-checked_at")
        .first()
    )
    if checkpoint is None:
        return None
    when = checkpoint.checked_at.astimezone(UTC)
    return HeadAnchor(
        seq=checkpoint.last_seq,
        hash=checkpoint.last_hash,
        source=f"the verification of {when:%Y-%m-%d %H:%M} UTC",
    )


@transaction.atomic
def audit_log_prune(*, before, actor=None) -> int:  # noqa: ANN001
    """Delete events older than ``before`` from the head of the chain, and record it.

    The pruning event names the first remaining row and the hash it chains from, so the
    chain still verifies from its new start. Archive first (see README). In PostgreSQL
    the database itself refuses to remove rows younger than its retention
    (``audit_retention()``, set by ``migrate``), rows that are not the oldest, or rows
    without this pruning event.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])
            cursor.execute("SET LOCAL supportgroups.pruning = 'on'")
    # Only the run of old rows at the head: a row younger than ``before`` ends it, even
    # when older rows follow it (written under a clock that was behind).
    first_kept = Event.objects.filter(created_at__gte=before).order_by("seq").first()
    if first_kept is None:
        return 0  # never prune the whole log: the newest row anchors everything after it
    count = Event.objects.filter(seq__lt=first_kept.seq).count()
    if count == 0:
        return 0
    # Record first (it chains onto the current end), then delete the head.
    record_event(
        action=Action.AUDIT_LOG_PRUNED,
        actor=actor,
        extra={
            "rows": count,
            "first_seq": first_kept.seq,
            "anchor_hash": first_kept.prev_hash,
            "before": before.isoformat(),
        },
    )
    # One statement: the database checks after each DELETE statement that only the oldest
    # rows went (migration 0007); a per-batch delete by the ORM could go out of order.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_event WHERE seq < %s", [first_kept.seq])
    return count
