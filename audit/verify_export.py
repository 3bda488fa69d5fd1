#!/usr/bin/env python3
"""Verify an exported audit log offline, with nothing but Python and the AUDIT_KEY.

    AUDIT_KEY=... python3 verify_export.py export.jsonl   (or export.csv)

Each row's hash is HMAC-SHA256(AUDIT_KEY, prev_hash + "\\n" + canonical JSON of the row's
fields: seq, created_at, actor, subject, action, target_type, target_id, group, ip,
extra — keys sorted, no spaces). Consecutive rows must also chain: a row's prev_hash is
the previous row's hash, and rows must come in increasing ``seq`` order (as exported).
Exits 0 when every row verifies, 1 naming the first that doesn't (or the first line that
cannot be read), 2 when the key or the file is missing.
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


class Unreadable(Exception):
    """A line of the file that is not a row of an export."""


def rows(path: str):
    """(line number, row) for each row of the file."""
    with open(path, newline="", encoding="utf-8") as handle:
        if path.endswith(".csv"):
            reader = csv.DictReader(handle)
            for row in reader:
                try:
                    for key in ("seq", "action", "actor", "subject", "group"):
                        row[key] = int(row[key]) if row[key] not in ("", None) else None
                    row["ip"] = row["ip"] or None
                    row["extra"] = json.loads(row["extra"])
                except (KeyError, TypeError, ValueError) as error:
                    raise Unreadable(f"Line {reader.line_num} cannot be read ({error}).") from None
                yield reader.line_num, row
        else:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except ValueError as error:
                        raise Unreadable(f"Line {number} cannot be read ({error}).") from None
                    yield number, row


def row_hash(key: bytes, row: dict) -> str:
    content = {name: row[name] for name in CONTENT}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(
        key, row["prev_hash"].encode("ascii") + b"\n" + canonical, hashlib.sha256
    ).hexdigest()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(
            "Usage: AUDIT_KEY=... python3 verify_export.py EXPORT.jsonl|EXPORT.csv", file=sys.stderr
        )
        return 2
    path = argv[0]
    key = os.environ.get("AUDIT_KEY", "").encode("utf-8")
    if not key:
        print("Set AUDIT_KEY in the environment.", file=sys.stderr)
        return 2
    previous = None
    count = 0
    try:
        for number, row in rows(path):
            problem = check(key, row, previous, number)
            if problem:
                print(problem, file=sys.stderr)
                return 1
            previous = row
            count += 1
    except Unreadable as error:
        print(str(error), file=sys.stderr)
        return 1
    except OSError as error:
        print(f"Cannot read {path}: {error.strerror}.", file=sys.stderr)
        return 2
    print(f"{count} rows verified.")
    return 0


def check(key: bytes, row: dict, previous: dict | None, number: int) -> str | None:
    """What is wrong with this row (after ``previous``), or None."""
    try:
        if not isinstance(row["seq"], int) or not isinstance(row["hash"], str):
            raise TypeError("seq must be a number and hash a string")
        matches = hmac.compare_digest(row_hash(key, row), row["hash"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise Unreadable(f"Line {number} cannot be read ({error}).") from None
    if not matches:
        return f"Row {row['seq']} does not match its hash (altered)."
    if previous is None:
        return None
    if row["seq"] <= previous["seq"]:
        return f"Row {row['seq']} comes after row {previous['seq']} (out of order)."
    if row["seq"] == previous["seq"] + 1 and row["prev_hash"] != previous["hash"]:
        return f"Row {row['seq']} does not follow row {previous['seq']}."
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
