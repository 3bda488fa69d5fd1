"""The chat send path counted rather than timed: per persisted message at one fixed rate,
PostgreSQL's commits and WAL flushes (pg_stat_database, pg_stat_wal) and the Daphnes' CPU.

    python -m bench.sendpath RATE SECONDS      # e.g. 50 15

The bench's own stack (throwaway PostgreSQL with production's durability, Redis, two
Daphnes) and 20 rooms x 10 members; one short warm-up step (every socket's first session
check), then one step at RATE messages/s for SECONDS. Counts mean the same on a busy box,
where latencies do not (issue 22). Prints one JSON line; not part of `make bench`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path


def main(rate: float, seconds: float) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.stack import Stack

    stack = Stack(log=lambda message: print(message, file=sys.stderr))
    try:
        os.environ.update(stack.start_services())
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        from bench import chat, data

        admin = data.build_audit_people().admin
        rooms = data.build_rooms(admin, prefix="probe", sizes=[10] * 20)
        daphnes = stack.start_daphnes(2)
        return asyncio.run(_measure(rooms, daphnes, rate, seconds, chat))
    finally:
        stack.stop()


def _database_counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(xact_commit) FROM pg_stat_database")
        commits = int(cursor.fetchone()[0])
        cursor.execute("SELECT wal_sync, wal_write, wal_records FROM pg_stat_wal")
        flushes, writes, records = cursor.fetchone()
    return {
        "commits": commits,
        "wal_flushes": int(flushes),
        "wal_writes": int(writes),
        "wal_records": int(records),
    }


async def _measure(rooms, daphnes, rate: float, seconds: float, chat) -> dict:  # noqa: ANN001
    run = chat.ChatRun("room", rooms, daphnes)
    await run.connect()
    await run.settle()
    await chat.rate_step(run, rate, 3.0, 2.0)
    await asyncio.sleep(1.0)
    before = await asyncio.to_thread(_database_counts)
    usage = chat.Usage(daphnes)
    step = await chat.rate_step(run, rate, seconds, 2.0)
    cpu = usage.stop()
    after = await asyncio.to_thread(_database_counts)
    await run.close()
    sent = step["messages"]
    result = {f"{k}_per_message": round((after[k] - before[k]) / sent, 2) for k in before}
    result.update(
        rate=rate,
        messages=sent,
        p99_ms=step["p99_ms"],
        daphne_cpu_percent_of_one_core=cpu["daphne_cpu_percent_of_one_core"],
        box_busy_percent=cpu["box_busy_percent"],
    )
    return result


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]), float(sys.argv[2]))))
