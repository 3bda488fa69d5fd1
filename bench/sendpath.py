"""The chat send path counted rather than timed: per persisted message at one fixed rate,
PostgreSQL's commits and WAL flushes (pg_stat_database, pg_stat_wal) and the Daphnes' CPU.

    python -m bench.sendpath RATE SECONDS [--rooms N] [--e2ee | --echo] [--profile DIR]
                             [--statements]
    python -m bench.sendpath --summary DIR                              # the profile, summed

The bench's own stack (throwaway PostgreSQL with production's durability, Redis, two
Daphnes) and N rooms x 10 members (20 by default; the members' rate limit allows N x 4
messages/s); a warm-up (every socket's first message, with its session check), then one step
at RATE messages/s for SECONDS. Counts mean the same on a busy box, where latencies do
not (issue 22). Prints one JSON line; not part of `make bench`.

With ``--profile DIR``, py-spy samples both Daphnes through the measured step (every
thread, idle ones too, so time spent waiting shows; with ``--on-cpu`` only samples on the
CPU, that is holding the interpreter lock: syscalls and waits are then left out), one
folded-stack file per Daphne;
``--summary DIR`` then prints, per thread kind, the share of samples in which each of the
send path's frames was on the stack. With ``--statements``, PostgreSQL counts every
statement of the step (pg_stat_statements): the most called, per message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

SAMPLES_PER_SECOND = 100
# Frames worth naming in the summary: where a Daphne's time goes per message.
WATCHED = (
    "message_post",
    "messages_post",
    "_send_refusal",
    "session_hold",
    "sessions_hold",
    "_rooms_hold",
    "_senders",
    "_messages_insert",
    "fetch_all",
    "encrypt_str",
    "_commit",
    "commit",
    "wait (psycopg",
    "_check_connection",
    "close_old_connections",
    "ensure_connection",
    "send_room_message",
    "send_room_messages",
    "group_send",
    "async_to_sync",
    "__call__ (asgiref/sync.py",
    "session_touch",
    "session_active",
    "presence_heartbeat",
    "on_send",
    "on_ping",
    "room_message",
    "send_message",
    "send_json",
    "message (meetings/frames.py",
    "dumps",
    "receive (channels_redis",
    "run_once (asyncio",
    "select (selectors.py",
)


def main(  # noqa: PLR0913
    rate: float,
    seconds: float,
    rooms: int,
    profile: Path | None,
    on_cpu: bool,
    statements: bool,
    *,
    e2ee: bool = False,
    echo: bool = False,
) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.stack import Stack

    stack = Stack(log=lambda message: print(message, file=sys.stderr))
    try:
        os.environ.update(stack.start_services(STATEMENT_STATISTICS if statements else None))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        if statements:
            _superuser_sql(stack, "CREATE EXTENSION pg_stat_statements")
        from bench import chat, data

        admin = data.build_audit_people().admin
        built = data.build_rooms(admin, prefix="probe", sizes=[10] * rooms, e2ee=e2ee)
        daphnes = stack.start_daphnes(2)
        chat.Usage.services = stack.service_cpu_seconds
        counted = stack if statements else None
        return asyncio.run(
            _measure(
                built,
                daphnes,
                rate,
                seconds,
                chat,
                profile,
                on_cpu=on_cpu,
                counted=counted,
                kind="echo" if echo else "e2ee" if e2ee else "room",
            )
        )
    finally:
        stack.stop()


# The server settings of ``--statements``: every statement counted, with its calls.
STATEMENT_STATISTICS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.track_planning": "on",
}
STATEMENTS_SHOWN = 25


def _superuser_sql(stack, statement: str) -> list[list[str]]:  # noqa: ANN001
    """Run ``statement`` in the app's database as PostgreSQL's superuser; its rows."""
    from tests.harness import DB_NAME, HOST

    services = stack.services
    result = subprocess.run(
        [
            str(services.pg_bin / "psql"),
            *("-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"),
            *("-h", HOST, "-p", str(services.pg_port), "-U", "postgres", "-d", DB_NAME),
            *("-c", statement),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split("\t") for line in result.stdout.splitlines() if line]


def _statements_per_message(stack, sent: int) -> list[str]:  # noqa: ANN001
    """The statements run since the reset, the most called first: calls per message,
    the mean planning and execution time of one call in ms (PostgreSQL's own, no round
    trip), the buffers it read per call (a scan shows as many), and the statement (its
    first 150 characters)."""
    rows = _superuser_sql(
        stack,
        "SELECT calls, round(mean_plan_time::numeric, 3), round(mean_exec_time::numeric, 3),"  # noqa: S608
        " round((shared_blks_hit + shared_blks_read)::numeric / NULLIF(calls, 0), 1),"
        " left(regexp_replace(query, '\\s+', ' ', 'g'), 150)"
        f" FROM pg_stat_statements ORDER BY calls DESC LIMIT {STATEMENTS_SHOWN}",
    )
    return [
        f"{int(calls) / sent:.3f} plan {plan} exec {run} blocks {blocks} {query}"
        for calls, plan, run, blocks, query in rows
    ]


def redis_commands() -> Counter:
    """Redis's count of each command it has run (INFO commandstats)."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return Counter({name.removeprefix("cmdstat_"): row["calls"] for name, row in stats.items()})


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


def _start_profilers(
    daphnes,  # noqa: ANN001
    seconds: float,
    profile: Path,
    *,
    on_cpu: bool,
) -> list[subprocess.Popen]:
    profile.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(daphne.pid),
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--duration",
                str(max(1, int(seconds))),
                # Without --idle, py-spy's idle detection still counted this VM's waits (a thread
                # blocked in a lock or the driver) as running: --gil keeps only the samples
                # of a thread holding the interpreter lock, Python actually running.
                *(["--gil"] if on_cpu else ["--idle"]),
                "--threads",
                "--format",
                "raw",
                "--output",
                str(profile / f"{daphne.name}.folded"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for daphne in daphnes
    ]


async def _measure(  # noqa: PLR0913
    rooms,  # noqa: ANN001
    daphnes,  # noqa: ANN001
    rate: float,
    seconds: float,
    chat,  # noqa: ANN001
    profile: Path | None,
    *,
    on_cpu: bool,
    counted,  # noqa: ANN001 - the Stack, with --statements
    kind: str = "room",
) -> dict:
    run = chat.ChatRun(kind, rooms, daphnes)
    await run.connect()
    if kind == "e2ee":
        await run.share_keys()
    await run.settle()
    await chat.warm_up(run, rate, 2.0)
    await asyncio.sleep(1.0)
    if counted is not None:
        await asyncio.to_thread(_superuser_sql, counted, "SELECT pg_stat_statements_reset()")
    before = await asyncio.to_thread(_database_counts)
    redis_before = await asyncio.to_thread(redis_commands)
    profilers = _start_profilers(daphnes, seconds, profile, on_cpu=on_cpu) if profile else []
    usage = chat.Usage(daphnes)
    step = await chat.rate_step(run, rate, seconds, 2.0)
    cpu = usage.stop()
    after = await asyncio.to_thread(_database_counts)
    redis_after = await asyncio.to_thread(redis_commands)
    for profiler in profilers:
        await asyncio.to_thread(profiler.wait)
    await run.close()
    sent = step["messages"]
    result = {f"{k}_per_message": round((after[k] - before[k]) / sent, 2) for k in before}
    redis_used = redis_after - redis_before
    redis_used.pop("info", None)  # (this probe's own)
    result["redis_commands_per_message"] = {
        name: round(calls / sent, 2) for name, calls in redis_used.most_common()
    }
    result.update(
        rate=rate,
        kind=kind,
        rooms=len(rooms),
        messages=sent,
        p50_ms=step["p50_ms"],
        p99_ms=step["p99_ms"],
        incomplete=step["incomplete"],
        daphne_cpu_percent_of_one_core=cpu["daphne_cpu_percent_of_one_core"],
        postgres_cpu_percent_of_one_core=cpu.get("postgres_cpu_percent_of_one_core"),
        redis_cpu_percent_of_one_core=cpu.get("redis_cpu_percent_of_one_core"),
        load_generator_cpu_percent_of_one_core=cpu["load_generator_cpu_percent_of_one_core"],
        box_busy_percent=cpu["box_busy_percent"],
    )
    if counted is not None:
        result["statements_per_message"] = await asyncio.to_thread(
            _statements_per_message, counted, sent
        )
    return result


def thread_kind(stack: str) -> str:
    """The event loop's thread, the database thread (database_sync_to_async), or other."""
    if "run_forever" in stack or "run_until_complete" in stack or "twisted" in stack:
        return "event loop"
    if "thread_handler" in stack or "sync.py" in stack:
        return "database thread"
    return "other"


def summary(profile: Path) -> dict:
    """Per thread kind: how many samples, and the share of them with each watched frame on
    the stack (frames nest, so the shares overlap)."""
    totals: Counter = Counter()
    frames: dict[str, Counter] = {}
    for path in sorted(profile.glob("*.folded")):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            kind = thread_kind(stack)
            totals[kind] += int(count)
            seen = frames.setdefault(kind, Counter())
            for name in WATCHED:
                if name in stack:
                    seen[name] += int(count)
    return {
        kind: {
            "samples": totals[kind],
            "share": {
                name: round(count / totals[kind], 3) for name, count in frames[kind].most_common()
            },
        }
        for kind in totals
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.sendpath")
    parser.add_argument("rate", type=float, nargs="?")
    parser.add_argument("seconds", type=float, nargs="?")
    parser.add_argument("--rooms", type=int, default=20)
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--e2ee", action="store_true", help="end-to-end encrypted rooms (sealed messages)"
    )
    kind.add_argument(
        "--echo",
        action="store_true",
        help="the bench's echo consumer in the same rooms (the baseline's cost per message)",
    )
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--summary", type=Path, default=None)
    parser.add_argument(
        "--on-cpu", action="store_true", help="profile only samples on the CPU (no waiting)"
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="count every statement PostgreSQL runs in the step (pg_stat_statements)",
    )
    args = parser.parse_args()
    if args.summary:
        print(json.dumps(summary(args.summary), indent=1))
    else:
        print(
            json.dumps(
                main(
                    args.rate,
                    args.seconds,
                    args.rooms,
                    args.profile,
                    args.on_cpu,
                    args.statements,
                    e2ee=args.e2ee,
                    echo=args.echo,
                )
            )
        )
