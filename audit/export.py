"""Exports of the audit log that an auditor can verify offline (see README, "Audit").

Each row carries exactly the fields the HMAC covers plus ``prev_hash`` and ``hash``, so
``python audit/verify_export.py export.jsonl`` (standard library only, with AUDIT_KEY in
its environment) recomputes every hash.
"""

import csv
import io
import json
from collections.abc import Iterator

from django.db.models import QuerySet

from audit.models import Event

FIELDS = [
    "seq",
    "created_at",
    "actor",
    "subject",
    "action",
    "target_type",
    "target_id",
    "group",
    "ip",
    "extra",
    "prev_hash",
    "hash",
]


def event_row(event: Event) -> dict:
    return {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor_id,
        "subject": event.subject_id,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "group": event.group_id,
        "ip": event.ip,
        "extra": event.extra,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def jsonl_lines(events: QuerySet[Event]) -> Iterator[str]:
    for event in events.order_by("seq").iterator(chunk_size=2000):
        yield json.dumps(event_row(event), sort_keys=True, separators=(",", ":")) + "\n"


def csv_lines(events: QuerySet[Event]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    yield buffer.getvalue()
    for event in events.order_by("seq").iterator(chunk_size=2000):
        buffer.seek(0)
        buffer.truncate()
        row = event_row(event)
        row["extra"] = json.dumps(row["extra"], sort_keys=True, separators=(",", ":"))
        writer.writerow(row)
        yield buffer.getvalue()
