"""A long audit history, fast: valid chain rows written with COPY.

Each synthetic row is a copy of a real event that the app's services wrote during set-up
(same action, target type, ``extra`` shape, group and IP habits), given another actor,
subject, target id, group and time, then chained exactly as ``audit.services.record_event``
chains: ``prev_hash`` is the previous row's hash and ``hash`` comes from
``audit.chain.compute_hash``. The rows therefore verify with ``verify_audit_log``; a
sample is re-checked from the database after every insert. Times rise with ``seq`` over
the last two years, as in a deployment that has been running that long.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction

from audit.chain import canonical_content, compute_hash
from audit.events import Action
from audit.models import Event
from audit.services import _CHAIN_LOCK_ID, ip_blind_index
from supportgroups.crypto import encrypt_str

# How often each kind of event happens in a live deployment (relative): sign-ins and
# sign-outs dominate, looks at sensitive data are rare. Actions not listed weigh 1.
WEIGHTS = {
    Action.LOGIN_SUCCEEDED: 30,
    Action.LOGGED_OUT: 15,
    Action.LOGIN_FAILED: 3,
    Action.AGREEMENT_SIGNED: 4,
    Action.MEMBERSHIP_CREATED: 4,
    Action.MEETING_SCHEDULED: 2,
    Action.REPORT_FILED: 1,
    Action.MODERATION_ACTION_TAKEN: 1,
}
COLUMNS = (
    "seq",
    "created_at",
    "actor_id",
    "subject_id",
    "action",
    "target_type",
    "target_id",
    "group_id",
    "ip",
    "ip_index",
    "extra",
    "prev_hash",
    "hash",
)


@dataclass
class Template:
    action: int
    target_type: str
    extra: dict
    has_actor: bool
    has_subject: bool
    has_group: bool
    has_ip: bool
    actor_is_subject: bool


class _Row:
    """What compute_hash reads from an Event, without a model instance per row."""

    __slots__ = (
        "seq",
        "created_at",
        "actor_id",
        "subject_id",
        "action",
        "target_type",
        "target_id",
        "group_id",
        "ip",
        "extra",
    )


def templates_from_log() -> list[Template]:
    """One template per (action, target type) the services have written so far."""
    seen: dict[tuple, Template] = {}
    for event in Event.objects.order_by("seq"):
        if event.action in (Action.AUDIT_LOG_VIEWED, Action.AUDIT_LOG_EXPORTED):
            continue  # the benchmark's own looks at the log are not history
        key = (event.action, event.target_type)
        seen.setdefault(
            key,
            Template(
                action=event.action,
                target_type=event.target_type,
                extra=event.extra,
                has_actor=event.actor_id is not None,
                has_subject=event.subject_id is not None,
                has_group=event.group_id is not None,
                has_ip=bool(event.ip),
                actor_is_subject=event.actor_id is not None and event.actor_id == event.subject_id,
            ),
        )
    return list(seen.values())


@dataclass
class Population:
    user_ids: list[int]
    facilitator_ids: list[int]
    group_ids: list[int]


def append_history(
    count: int,
    *,
    templates: list[Template],
    population: Population,
    start: datetime,
    end: datetime,
    seed: int = 1,
    rebuild_indexes: bool = False,
) -> float:
    """Append ``count`` chained rows dated evenly from ``start`` to ``end``; returns seconds.

    With ``rebuild_indexes`` the table's secondary indexes and unique constraints are
    dropped for the COPY and rebuilt afterwards (in the same transaction, identical
    definitions, checked), which is several times faster than updating 15 indexes row by
    row; the table ends up exactly as if the rows had been inserted one by one.
    """
    if count <= 0:
        return 0.0
    started = time.perf_counter()
    rng = random.Random(seed)
    weights = [WEIGHTS.get(Action(t.action), 1) for t in templates]
    picks = rng.choices(range(len(templates)), weights=weights, k=count)
    # A pool of client addresses, each encrypted once (Fernet tokens decrypt the same
    # whichever row holds them).
    addresses = [f"10.{n // 65536}.{n // 256 % 256}.{n % 256}" for n in range(1, 401)]
    ip_pool = [(ip, encrypt_str(ip), ip_blind_index(ip)) for ip in addresses]
    extras = [_json(t.extra) for t in templates]
    for text in extras:
        if "\\" in text or "\t" in text or "\n" in text:
            raise ValueError(f"extra needs COPY escaping: {text}")
    step = (end - start) / count
    users, facilitators, groups = (
        population.user_ids,
        population.facilitator_ids,
        population.group_ids,
    )
    table = Event._meta.db_table
    mac = hmac.new(settings.AUDIT_KEY.encode("utf-8"), digestmod=hashlib.sha256)
    with transaction.atomic(), connection.cursor() as cursor:
        # The writers' lock of record_event: nobody else may claim the next seq meanwhile.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])
        seq, prev_hash = Event.objects.order_by("-seq").values_list("seq", "hash").first()
        if rebuild_indexes:
            indexes_before = _index_definitions(cursor, table)
            restore = _drop_secondary_indexes(cursor, table)
        with cursor.cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            lines = []
            for n, t in enumerate(picks):
                template = templates[t]
                seq += 1
                created = (start + step * n).isoformat()
                actor = (
                    rng.choice(facilitators if template.action in _BY_FACILITATORS else users)
                    if template.has_actor
                    else None
                )
                if template.actor_is_subject:
                    subject = actor
                else:
                    subject = rng.choice(users) if template.has_subject else None
                target_id = str(rng.randrange(1, 200_000)) if template.target_type else ""
                group = rng.choice(groups) if template.has_group else None
                if template.has_ip:
                    ip, ip_token, ip_index = rng.choice(ip_pool)
                else:
                    ip, ip_token, ip_index = None, None, ""
                # audit.chain.canonical_content, spelled out: json.dumps(sort_keys=True,
                # separators=(",", ":")) of the same fields (checked against it below).
                content = (
                    f'{{"action":{template.action},"actor":{_num(actor)},'
                    f'"created_at":"{created}","extra":{extras[t]},"group":{_num(group)},'
                    f'"ip":{_str(ip)},"seq":{seq},"subject":{_num(subject)},'
                    f'"target_id":"{target_id}","target_type":"{template.target_type}"}}'
                )
                digest_mac = mac.copy()
                digest_mac.update(prev_hash.encode("ascii") + b"\n" + content.encode("utf-8"))
                digest = digest_mac.hexdigest()
                if n < 50:
                    _check_against_app(prev_hash, digest, content)
                lines.append(
                    f"{seq}\t{created}\t{_copy(actor)}\t{_copy(subject)}\t{template.action}\t"
                    f"{template.target_type}\t{target_id}\t{_copy(group)}\t{_copy(ip_token)}\t"
                    f"{ip_index}\t{extras[t]}\t{prev_hash}\t{digest}\n"
                )
                prev_hash = digest
                if len(lines) >= 5000:
                    copy.write("".join(lines))
                    lines = []
            if lines:
                copy.write("".join(lines))
        if rebuild_indexes:
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for statement in restore:
                cursor.execute(statement)
            if _index_definitions(cursor, table) != indexes_before:
                raise AssertionError("audit_event indexes differ after the rebuild")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
    return time.perf_counter() - started


def _json(value) -> str:  # noqa: ANN001
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _num(value: int | None) -> str:
    return "null" if value is None else str(value)


def _str(value: str | None) -> str:
    return "null" if value is None else json.dumps(value)


def _copy(value) -> str:  # noqa: ANN001
    return "\\N" if value is None else str(value)


def _check_against_app(prev_hash: str, digest: str, content: str) -> None:
    """The spelled-out serialisation must be the app's own, byte for byte."""
    data = json.loads(content)
    row = _Row()
    row.seq = data["seq"]
    row.created_at = datetime.fromisoformat(data["created_at"])
    row.actor_id, row.subject_id = data["actor"], data["subject"]
    row.action, row.target_type, row.target_id = (
        data["action"],
        data["target_type"],
        data["target_id"],
    )
    row.group_id, row.ip, row.extra = data["group"], data["ip"], data["extra"]
    if canonical_content(row).decode() != content or compute_hash(prev_hash, row) != digest:
        raise AssertionError("bench/auditlog.py no longer hashes rows as audit/chain.py does")


def _index_definitions(cursor, table: str) -> list[tuple[str, str]]:  # noqa: ANN001
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
        [table],
    )
    return cursor.fetchall()


def _drop_secondary_indexes(cursor, table: str) -> list[str]:  # noqa: ANN001
    """Drop every index but the primary key; return the statements that restore them."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'u'",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = %s::regclass "
        "AND c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))"
        "::regclass)",
        [table, table],
    )
    indexes = cursor.fetchall()
    restore = []
    for name, definition in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for name, definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
        restore.append(definition)
    return restore


_BY_FACILITATORS = {
    Action.MEMBERSHIP_CREATED,
    Action.MEETING_SCHEDULED,
    Action.MEETING_OPENED,
    Action.MEETING_CLOSED,
    Action.MODERATION_ACTION_TAKEN,
    Action.APPLICATION_ANSWERS_VIEWED,
    Action.APPLICATION_DECIDED,
    Action.ANNOUNCEMENT_PINNED,
}


def vacuum() -> float:
    """VACUUM ANALYZE the log after the bulk insert, as autovacuum eventually would, so it
    does not start in the middle of the chat measurements; returns seconds."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {Event._meta.db_table}")
    return time.perf_counter() - started


def spot_check(sample: int = 500, seed: int = 2) -> int:
    """Re-hash a sample of rows read back through the ORM, each against its predecessor;
    raises if one does not chain. Returns the number checked."""
    last_seq = Event.objects.order_by("-seq").values_list("seq", flat=True).first()
    rng = random.Random(seed)
    seqs = sorted({rng.randrange(2, last_seq + 1) for _ in range(sample)})
    rows = {e.seq: e for e in Event.objects.filter(seq__in=seqs)}
    previous = dict(Event.objects.filter(seq__in=[s - 1 for s in seqs]).values_list("seq", "hash"))
    for seq in seqs:
        event = rows[seq]
        if (
            event.prev_hash != previous[seq - 1]
            or compute_hash(event.prev_hash, event) != event.hash
        ):
            raise AssertionError(f"synthetic audit row {seq} does not chain")
    return len(seqs)
