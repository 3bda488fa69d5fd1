"""Where a benched page's time goes: in-process timings, SQL and a cProfile per page.

    .venv/bin/python -m bench.profile_pages [--rounds N] [--only NAME] [--stats DIR]

Starts the bench's throwaway PostgreSQL (durable, as in production) and Redis, builds the
page data exactly as ``make bench`` does (bench/data.py), and for every page the bench
times (bench/__main__.py PAGES, at 10 and 100 rows) prints: the median and p95 of
``django.test.Client`` GETs in this process, the queries of one GET with their time, and
the functions that took most of the time over ``--rounds`` GETs (cProfile). ``--stats``
keeps each page's profile for ``python -m pstats``. A tool for finding costs, not a
benchmark: no Daphne, no network, one process.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--only", default="", help="pages whose name contains this")
    parser.add_argument("--stats", type=Path, default=None)
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()

    from bench.stack import Stack

    stack = Stack()
    try:
        os.environ.update(stack.start_services())
        import django

        django.setup()
        profile(args)
    finally:
        stack.stop()


def profile(args) -> None:  # noqa: ANN001
    from django.core.management import call_command

    from bench import data
    from bench.__main__ import PAGES

    call_command("migrate", verbosity=0, interactive=False)
    t = time.monotonic()
    admin = data.build_audit_people().admin
    shared = data.build_page_groups(admin, 100)
    page_sets = {rows: data.build_pages(admin, rows, shared_groups=shared) for rows in (10, 100)}
    print(f"data built in {time.monotonic() - t:.1f}s")

    from django.test import Client

    plan = [("healthz", "/healthz", Client(HTTP_HOST=data.HOST))]
    for rows, page_set in page_sets.items():
        clients = data.page_set_clients(page_set)
        for name, attribute, who in PAGES:
            url = getattr(page_set, attribute) if attribute else "/groups/mine/"
            plan.append((f"{name}_{rows}", url, clients[who]))
    if args.only:
        plan = [p for p in plan if args.only in p[0] or p[0] == "healthz"]

    summary = []
    for name, url, client in plan:
        for _ in range(5):
            assert client.get(url).status_code == 200, (name, url)
        took = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            client.get(url)
            took.append((time.perf_counter() - started) * 1000)
        response, captured = get_with_queries(client, url)
        sql_ms = sum(t for t, _ in captured) * 1000
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.rounds):
            client.get(url)
        profiler.disable()
        split = time_split(client, url, args.rounds)
        median = statistics.median(took)
        p95 = sorted(took)[int(len(took) * 0.95) - 1]
        summary.append((name, median, p95, len(captured), sql_ms, len(response.content)))
        print(
            f"\n=== {name} {url}: median {median:.2f} ms, p95 {p95:.2f} ms, "
            f"{len(captured)} queries ({sql_ms:.2f} ms), {len(response.content)} bytes"
        )
        print("  split per request (median of totals; means of parts): " + split)
        for took_s, sql in captured:
            print(f"  {took_s * 1000:6.2f} ms  {sql[:240]}")
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top * 2)
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
        if args.stats:
            args.stats.mkdir(parents=True, exist_ok=True)
            stats.dump_stats(args.stats / f"{name}.prof")

    print("\npage                          median ms   p95 ms  queries  sql ms   bytes")
    base = summary[0][1]
    for name, median, p95, queries, sql_ms, size in summary:
        print(
            f"{name:28s} {median:8.2f} {p95:8.2f} {queries:8d} {sql_ms:7.2f} {size:7d}"
            f"  ({median / base:.1f}x healthz median)"
        )


def time_split(client, url: str, rounds: int) -> str:
    """Where a request's wall time goes, without a profiler's overhead: SQL (ORM compile
    excluded: only cursor.execute and fetching), the template's render (with the SQL it
    runs), and the rest."""
    from django.core.signals import request_started
    from django.db import connection
    from django.template import base

    sql = [0.0]
    render = [0.0]
    depth = [0]

    def timed(execute, sql_text, params, many, context):  # noqa: ANN001, ANN202
        started = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            sql[0] += time.perf_counter() - started

    def wrap(**kwargs) -> None:  # noqa: ANN003
        # Once: the connection (and its wrappers) outlives the request in this thread, and
        # a wrapper added per request counted each statement once per request so far.
        if timed not in connection.execute_wrappers:
            connection.execute_wrappers.append(timed)

    original = base.Template.render

    def render_timed(self, context):  # noqa: ANN001, ANN202
        depth[0] += 1
        started = time.perf_counter()
        try:
            return original(self, context)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                render[0] += time.perf_counter() - started

    base.Template.render = render_timed
    request_started.connect(wrap)
    totals = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            client.get(url)
            totals.append(time.perf_counter() - started)
    finally:
        request_started.disconnect(wrap)
        connection.execute_wrappers[:] = [w for w in connection.execute_wrappers if w is not timed]
        base.Template.render = original
    n = len(totals)
    return (
        f"total {statistics.median(totals) * 1000:.2f} ms, sql {sql[0] / n * 1000:.2f}, "
        f"render {render[0] / n * 1000:.2f} (with its sql), "
        f"rest {(sum(totals) - render[0]) / n * 1000:.2f} (with its sql)"
    )


def get_with_queries(client, url: str):  # noqa: ANN001, ANN201
    """One GET, with the (seconds, SQL) of each query it ran (execute_wrappers: the
    connection is taken from the pool inside the request)."""
    from django.core.signals import request_started
    from django.db import connection

    captured: list[tuple[float, str]] = []

    def timed(execute, sql, params, many, context):  # noqa: ANN001, ANN202
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            captured.append((time.perf_counter() - started, sql))

    def wrap(**kwargs) -> None:  # noqa: ANN003
        connection.execute_wrappers.append(timed)

    request_started.connect(wrap)
    try:
        response = client.get(url)
    finally:
        request_started.disconnect(wrap)
        connection.execute_wrappers[:] = [w for w in connection.execute_wrappers if w is not timed]
    return response, captured


if __name__ == "__main__":
    main()
