#!/usr/bin/env python3
"""Verify an exported audit log offline, with nothing but Python and the AUDIT_KEY.

    AUDIT_KEY=... python3 verify_export.py export.jsonl   (or export.csv)

Each row's hash is HMAC-SHA256(AUDIT_KEY, prev_hash + "\\n" + canonical JSON of the row's
fields: seq, created_at, actor, subject, action, target_type, target_id, group, ip,
extra — keys sorted, no spaces). Consecutive rows must also chain: a row's prev_hash is
the previous row's hash. Exits 0 when every row verifies, 1 naming the first that doesn't.
"""

import csv
import hashlib
import hmac
import json
import os
import sys

CONTENT = [
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
]


def rows(path: str):
    with open(path, newline="", encoding="utf-8") as handle:
        if path.endswith(".csv"):
            for row in csv.DictReader(handle):
                for key in ("seq", "action", "actor", "subject", "group"):
                    row[key] = int(row[key]) if row[key] not in ("", None) else None
                row["ip"] = row["ip"] or None
                row["extra"] = json.loads(row["extra"])
                yield row
        else:
            for line in handle:
                if line.strip():
                    yield json.loads(line)


def row_hash(key: bytes, row: dict) -> str:
    content = {name: row[name] for name in CONTENT}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(
        key, row["prev_hash"].encode("ascii") + b"\n" + canonical, hashlib.sha256
    ).hexdigest()


def main(path: str) -> int:
    key = os.environ.get("AUDIT_KEY", "").encode("utf-8")
    if not key:
        print("Set AUDIT_KEY in the environment.", file=sys.stderr)
        return 2
    previous = None
    count = 0
    for row in rows(path):
        if not hmac.compare_digest(row_hash(key, row), row["hash"]):
            print(f"Row {row['seq']} does not match its hash (altered).", file=sys.stderr)
            return 1
        if (
            previous is not None
            and row["seq"] == previous["seq"] + 1
            and row["prev_hash"] != previous["hash"]
        ):
            print(f"Row {row['seq']} does not follow row {previous['seq']}.", file=sys.stderr)
            return 1
        previous = row
        count += 1
    print(f"{count} rows verified.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
