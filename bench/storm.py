"""What a storm of sign-ins costs the chat, and which part of a sign-in it is (issue 22).

    python -m bench.storm [--modes quiet,real,cheap,hash] [--repeat N] [--logins 50]
                          [--before 30] [--storm 30] [--profile DIR] [--audit-rows N]

The bench's own stack (throwaway PostgreSQL with production's durability, Redis, two
Daphnes) and the delivery phase's rooms (20 x 10 members and one of 50, the same
conversation schedule as ``make bench``). Per mode, fresh Daphnes and sockets, then
``before`` seconds of chat alone and ``storm`` seconds of chat with the mode's load:

- ``quiet``: nothing (what the ratio is when nothing happens);
- ``real``: real sign-ins (GET the form, POST handle and password), as ``make bench``;
- ``cheap``: the same sign-ins with the password check swapped for a text comparison
  (bench/storm_asgi.py; diagnostic only): a sign-in's cost without Argon2;
- ``hash``: the same number of Argon2 checks on the Daphnes, through one bare request
  each (bench/storm_asgi.py): the hash's cost without the rest of a sign-in;
- ``real-thread``: real sign-ins with the hash on a thread of the Daphne niced to 19, as
  before issue 22's fix; ``real-session``: in the worker process niced to 19, but in the
  Daphne's session (so its autogroup): which part of the fix does the work.

Prints one JSON line per run: chat p99 (and p95, p50, max) before and during, the
ratio, the Daphnes' CPU during the storm. With ``--profile DIR`` py-spy samples the
Daphnes through the storm (on-CPU only, every thread). Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DELIVERY_SIZES = [10] * 20 + [50]
MEAN_GAP = 10.0
BURST_EVERY = 5.0
WARM = 5.0
MODES = ("quiet", "real", "cheap", "hash")
# Real sign-ins with the hash where it ran before issue 22's fix, or half-way there.
VARIANTS = {
    "cheap": {"BENCH_STORM_CHEAP_HASH": "1"},
    "real-thread": {"BENCH_STORM_HASHER": "thread"},
    "real-session": {"BENCH_STORM_HASHER": "session"},
}
SHOWN = ("messages", "p50_ms", "p95_ms", "p99_ms", "max_completed_ms")


def hash_only(daphne, client_ip: str):  # noqa: ANN001, ANN201
    from bench.pages import HOST, LoginResult

    started_at = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, daphne.port, timeout=60)
    try:
        conn.request("POST", "/__bench/argon2", body=b"", headers={"X-Forwarded-For": client_ip})
        response = conn.getresponse()
        response.read()
        ok = response.status == 200
        return LoginResult(ok, response.status, time.perf_counter() - started_at, started_at)
    finally:
        conn.close()


def storm_thread(action, daphnes, usernames, seconds, results, ip_prefix):  # noqa: ANN001, ANN201, PLR0913
    from bench.data import PASSWORD
    from bench.pages import login_storm

    def hash_alone(daphne, _username, _password, ip):  # noqa: ANN001, ANN202
        return hash_only(daphne, ip)

    return login_storm(
        daphnes,
        usernames,
        PASSWORD,
        seconds=seconds,
        results=results,
        ip_prefix=ip_prefix,
        attempt=hash_alone if action == "hash" else None,  # every other mode signs in
    )


def start_daphnes(stack, env_extra: dict[str, str]):  # noqa: ANN001, ANN201
    from bench.stack import STARTUP_TIMEOUT, Daphne

    for daphne in stack.daphnes:
        daphne.stop()
    env = {**stack.env, **env_extra}
    stack.daphnes = [
        Daphne(
            env,
            stack.log_dir,
            f"storm-{n + 1}-{int(time.time())}",
            app="bench.storm_asgi:application",
        )
        for n in range(2)
    ]
    deadline = time.monotonic() + STARTUP_TIMEOUT
    for daphne in stack.daphnes:
        daphne.wait_until_healthy(deadline)
    return stack.daphnes


async def one_run(mode, rooms, daphnes, users, args, ip_prefix):  # noqa: ANN001, ANN201, PLR0913
    from bench import chat

    if mode == "hash":  # each Daphne makes its one Argon2 hash to check against first
        for n, daphne in enumerate(daphnes):
            await asyncio.to_thread(hash_only, daphne, f"10.99.0.{n + 1}")
    run = chat.ChatRun("room", rooms, daphnes)
    await run.connect()
    await run.settle()
    total = WARM + args.before + args.storm + 3.0
    schedule = chat.conversation_schedule(
        DELIVERY_SIZES, total, mean_gap=MEAN_GAP, burst_every=BURST_EVERY, seed=11
    )
    results: list = []
    storm: dict = {}
    loop = asyncio.get_running_loop()
    profilers: list = []

    def start_storm() -> None:
        storm["started"] = time.perf_counter()
        storm["cpu"] = [d.cpu_seconds() for d in daphnes]
        if args.profile:
            profilers.extend(_profilers(daphnes, args.storm, args.profile / f"{mode}-{ip_prefix}"))
        if mode != "quiet":
            storm["thread"] = storm_thread(
                mode, daphnes, users[: args.logins], args.storm, results, ip_prefix
            )

    with chat.collector_paused():
        run_started = time.perf_counter()
        loop.call_later(WARM + args.before, start_storm)
        await chat.play(run, schedule, lambda at: "")
        await run.drain(run.messages, 5.0)
    if "thread" in storm:
        await asyncio.to_thread(storm["thread"].join, 120)
    storm_start = storm["started"]
    storm_end = max(
        (r.started_at + r.seconds for r in results if r.started_at),
        default=storm_start + args.storm,
    )
    cpu = [d.cpu_seconds() - c for d, c in zip(daphnes, storm["cpu"], strict=True)]
    chat.label_around(run.messages, warm_until=run_started + WARM, start=storm_start, end=storm_end)
    before = chat.latency_summary([m for m in run.messages if m.label == "before"])
    during = chat.latency_summary([m for m in run.messages if m.label == "storm"])
    await run.close()
    for profiler in profilers:
        await asyncio.to_thread(profiler.wait)
    seconds = [r.seconds * 1000 for r in results if r.started_at]
    return {
        "mode": mode,
        "ratio": round(during["p99_ms"] / before["p99_ms"], 2)
        if during["p99_ms"] and before["p99_ms"]
        else None,
        "before": {k: before[k] for k in SHOWN},
        "during": {k: during[k] for k in SHOWN},
        "storm_s": round(storm_end - storm_start, 1),
        "daphne_cpu_s_in_storm": [round(c, 2) for c in cpu],
        "ok": sum(r.ok for r in results),
        "of": len(results),
        "action_p50_ms": chat.percentile(seconds, 50) and round(chat.percentile(seconds, 50)),
        "action_p95_ms": chat.percentile(seconds, 95) and round(chat.percentile(seconds, 95)),
    }


def _profilers(daphnes, seconds, out: Path):  # noqa: ANN001, ANN202
    out.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                *("record", "--pid", str(d.pid), "--rate", "200", "--duration", str(int(seconds))),
                *("--threads", "--format", "raw", "--output", str(out / f"d{n}.folded")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n, d in enumerate(daphnes)
    ]


def _audit_history(people, rows: int) -> None:  # noqa: ANN001
    """An audit log of ``rows`` events, as a whole run's (which signs in against one of a
    million rows): bulk-loaded, indexes rebuilt, vacuumed."""
    from datetime import UTC, datetime, timedelta

    from audit.models import Event
    from bench import auditlog

    population = auditlog.Population(people.user_ids, people.facilitator_ids, people.group_ids)
    end = datetime.now(UTC) - timedelta(hours=1)
    auditlog.append_history(
        rows - Event.objects.count(),
        templates=auditlog.templates_from_log(),
        population=population,
        start=end - timedelta(days=730),
        end=end,
        seed=7,
        rebuild_indexes=True,
    )
    auditlog.vacuum()
    print(f"audit history: {Event.objects.count()} events", file=sys.stderr)


def main(args) -> None:  # noqa: ANN001
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.stack import Stack

    stack = Stack(log=lambda message: print(message, file=sys.stderr))
    try:
        os.environ.update(stack.start_services())
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.contrib.auth.hashers import make_password
        from django.core.management import call_command

        from bench import chat, data

        call_command("migrate", verbosity=0, interactive=False)
        people = data.build_audit_people()
        admin = people.admin
        if args.audit_rows:
            _audit_history(people, args.audit_rows)
        rooms = data.build_rooms(admin, prefix="talk", sizes=DELIVERY_SIZES)
        encoded = make_password(data.PASSWORD)
        modes = args.modes.split(",") * args.repeat
        user_sets = []
        for n in range(len(modes)):
            names = [f"storm-{n}-{k}" for k in range(args.logins)]
            get_user_model().objects.bulk_create(
                [get_user_model()(username=name, password=encoded) for name in names]
            )
            user_sets.append(names)
        for n, mode in enumerate(modes):
            daphnes = start_daphnes(stack, VARIANTS.get(mode, {}))
            chat.Usage.services = stack.service_cpu_seconds
            result = asyncio.run(one_run(mode, rooms, daphnes, user_sets[n], args, f"10.{100 + n}"))
            print(json.dumps(result), flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.storm")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--logins", type=int, default=50)
    parser.add_argument("--before", type=float, default=30.0)
    parser.add_argument("--storm", type=float, default=30.0)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument(
        "--audit-rows", type=int, default=0, help="first fill the audit log (a whole run: 1000000)"
    )
    main(parser.parse_args())
