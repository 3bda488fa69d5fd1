"""Where the slowest chat deliveries spent their time: reads a ``--trace DIR`` of
``python -m bench --delivery-only`` (or ``--e2ee-only``) and prints, per kind of room,
the median and worst of each phase of a message and, for the slowest messages, what the
Daphnes were doing meanwhile.

    python -m bench.trace_report DIR [--worst N]

A message's phases (perf_counter times, the same clock in every process of the box):
``to_server`` sent → read by its consumer; ``queued`` read → its group commit began on the
database thread; ``store`` the statements and commit; ``handover`` the broadcast handed
to the channel layer from the database thread; ``fanout`` that hand-over's end → the last
member read it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

PHASES = ("to_server", "queued", "store", "handover", "fanout", "total")


def load_daphnes(directory: Path) -> dict[str, list]:
    records: dict[str, list] = {}
    for path in sorted(directory.glob("*.jsonl")):
        records[path.stem] = [json.loads(line) for line in path.read_text().splitlines() if line]
    return records


def phases(message: dict, recv: dict, posts: dict) -> dict | None:
    got = recv.get(message["client_id"])
    post = posts.get(message["client_id"])
    if message["done"] is None or got is None or post is None:
        return None
    _, start, _end, b_start, b_end, _ids = post
    b_start = b_start or _end
    b_end = b_end or _end
    return {
        "to_server": got[0] - message["sent"],
        "queued": start - got[0],
        "store": b_start - start,
        "handover": b_end - b_start,
        "fanout": message["done"] - b_end,
        "total": message["done"] - message["sent"],
        "batch": len(post[5]),
    }


def around(records: dict[str, list], start: float, end: float) -> list[str]:
    """What each Daphne did between start and end (collections, loop lag, database work)."""
    lines = []
    for pid, items in records.items():
        for item in items:
            kind = item[0]
            if kind == "gc" and item[2] > start and item[1] < end and item[2] - item[1] > 0.002:
                lines.append(
                    f"    {pid} gc gen{item[3]} {1000 * (item[2] - item[1]):.1f} ms "
                    f"at +{1000 * (item[1] - start):.1f}"
                )
            elif kind == "lag" and item[1] + item[2] > start and item[1] < end:
                late, at = 1000 * item[2], 1000 * (item[1] - start)
                lines.append(f"    {pid} loop late {late:.1f} ms at +{at:.1f}")
            elif kind == "db" and item[3] > start and item[2] < end:
                lines.append(
                    f"    {pid} db {item[1]} {1000 * (item[3] - item[2]):.1f} ms "
                    f"at +{1000 * (item[2] - start):.1f} ({item[4]})"
                )
    return lines


def report(directory: Path, worst: int) -> None:
    records = load_daphnes(directory)
    recv = {}
    posts = {}
    for items in records.values():
        for item in items:
            if item[0] == "recv":
                recv[item[1]] = (item[2], item[3])
            elif item[0] == "post":
                for client_id in item[5]:
                    posts[client_id] = item
    for path in sorted(directory.glob("messages-*.json")):
        messages = [m for m in json.loads(path.read_text()) if m["label"] == "before"]
        print(f"== {path.stem}: {len(messages)} messages")
        timed = [(m, phases(m, recv, posts)) for m in messages]
        timed = [(m, p) for m, p in timed if p is not None]
        if timed:
            print("  phase      p50 ms   p99 ms   max ms")
            for name in PHASES:
                values = sorted(1000 * p[name] for _, p in timed)
                p99 = values[min(len(values) - 1, round(0.99 * len(values)))]
                print(f"  {name:<9} {statistics.median(values):7.1f} {p99:8.1f} {values[-1]:8.1f}")
        ranked = sorted(
            messages,
            key=lambda m: -(m["done"] - m["sent"]) if m["done"] else float("-inf"),
        )
        for m in ranked[:worst]:
            p = phases(m, recv, posts)
            if m["done"] is None:
                print(f"  {m['client_id']}: never reached every member")
                continue
            shown = (
                ", ".join(f"{k} {1000 * v:.1f}" for k, v in p.items() if k != "batch")
                + f", batch {p['batch']}"
                if p
                else "(no server record)"
            )
            arrivals = sorted(a[0] for a in m["arrivals"] or [])
            spread = 1000 * (arrivals[-1] - arrivals[0]) if arrivals else 0
            print(
                f"  {m['client_id']} room {m['room']} via daphne {m['sender_daphne']}: "
                f"{1000 * (m['done'] - m['sent']):.1f} ms ({shown}; receipts spread {spread:.1f})"
            )
            for line in around(records, m["sent"], m["done"]):
                print(line)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.trace_report")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--worst", type=int, default=12)
    args = parser.parse_args()
    report(args.directory, args.worst)


if __name__ == "__main__":
    main()
