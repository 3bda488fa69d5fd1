"""End-to-end encrypted meetings survive the servers (issue 19, "Done means"): three members
in real browsers across the two Daphnes of the multi-process setup, a Redis restart and a
Daphne restart in the middle of the meeting, and at the end every member present reads
every message, each once, and no page shows a message it could not unlock.

The keys live in the browsers and in the database (wrapped for each recipient device), never
only in Redis or in a process: a page that loses its socket fetches them again."""

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from playwright.sync_api import expect

from meetings.models import Message
from tests.e2e.test_e2ee_room import HANDLES, World, expect_read  # noqa: F401
from tests.e2e.test_e2ee_room import world as world  # noqa: PLC0414 - the fixture
from tests.e2e.test_meeting_room import say, sign_in
from tests.factories import CHEAP_PASSWORD_HASHERS
from tests.meetings_multiprocess.test_two_daphnes import (
    STARTUP_TIMEOUT,
    DaphneProcess,
    PrivateRedis,
    database_url,
    stop_all,
    tail,
)

CONNECTED = 30_000  # ms: a page reconnects with back-off (1 s, 2 s, 4 s ...) after a drop


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


@pytest.fixture
def servers():
    """Two Daphnes on one private Redis, as production runs them."""
    env = os.environ.copy()
    env["DATABASE_URL"] = database_url(connections["default"].settings_dict)
    env.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    redis = PrivateRedis()
    env["REDIS_URL"] = redis.url
    log_dir = tempfile.mkdtemp(prefix="e2ee-restarts-")
    state = {"env": env, "log_dir": log_dir, "redis": redis, "daphnes": []}
    try:
        redis.start()
        state["daphnes"] = [DaphneProcess(env, log_dir), DaphneProcess(env, log_dir)]
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for daphne in state["daphnes"]:
            daphne.wait_until_healthy(deadline)
        yield state
    finally:
        time.sleep(1)
        stop_all(state["daphnes"])
        redis.stop()
        shutil.rmtree(log_dir, ignore_errors=True)


class Monitor:
    """`redis-cli MONITOR` on the private Redis: every command the app sent it, to a file
    (started again after a restart, which ends the capture)."""

    def __init__(self, redis, directory):
        self.redis = redis
        self.path = Path(directory) / "redis-monitor.txt"
        self.procs = []

    def start(self):
        with open(self.path, "ab") as out:
            self.procs.append(
                subprocess.Popen(
                    ["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis.port), "monitor"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        time.sleep(0.2)

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=5)
        return self.path.read_text(errors="replace")


def database_dump():
    """pg_dump of the test database, as text."""
    db = connections["default"].settings_dict
    env = {**os.environ, "PGPASSWORD": db["PASSWORD"] or ""}
    dump = subprocess.run(
        ["pg_dump", "-h", db["HOST"], "-p", str(db["PORT"]), "-U", db["USER"], db["NAME"]],
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    return dump.stdout.decode(errors="replace")


def restart_daphne(state, index):
    """Stop one Daphne (its sockets drop) and start a new one on the same address."""
    old = state["daphnes"][index]
    stop_all([old])
    new = DaphneProcess(state["env"], state["log_dir"], port=old.port)
    new.wait_until_healthy(time.monotonic() + STARTUP_TIMEOUT)
    state["daphnes"][index] = new


def expect_connected(page):
    expect(page.locator("#room-status")).to_have_text("Connected.", timeout=CONNECTED)


def test_a_redis_and_a_daphne_restart_leave_no_message_unreadable_for_those_present(
    browser, servers, world
):
    daphnes = servers["daphnes"]
    homes = {"Fern": 0, "River": 0, "Wren": 1}  # Wren on the other process
    contexts, pages, problems = [], {}, []
    allowed = {f"127.0.0.1:{d.port}" for d in daphnes}
    monitor = Monitor(servers["redis"], servers["log_dir"])
    monitor.start()
    try:
        for name, home in homes.items():
            base = daphnes[home].url
            context = browser.new_context(base_url=base)
            contexts.append(context)
            context.on("weberror", lambda error: problems.append(f"uncaught: {error.error}"))
            context.on(
                "request",
                lambda request: (
                    problems.append(f"another origin: {request.url}")
                    if re.match(r"^(https?|wss?)://", request.url)
                    and request.url.split("/")[2] not in allowed
                    else None
                ),
            )
            page = context.new_page()
            sign_in(page, base, HANDLES[name])
            page.goto(base + world.path)
            expect_connected(page)
            pages[name] = page

        conversation = []

        def round_of(label):
            for name in ("Fern", "River", "Wren"):
                text = f"{name}, {label}."
                say(pages[name], name, text)
                conversation.append((name, text))
                for page in pages.values():
                    expect_read(page, conversation)

        round_of("before anything")

        servers["redis"].restart()
        monitor.start()
        for page in pages.values():
            expect_connected(page)
        round_of("after Redis came back")

        restart_daphne(servers, 1)  # Wren's process
        expect(pages["Wren"].locator("#room-status")).not_to_have_text("Connected.")
        for page in pages.values():
            expect_connected(page)
        round_of("after a Daphne restart")
    except AssertionError as failure:
        logs = "\n".join(f"--- {d.url}\n{tail(d.log_path)}" for d in servers["daphnes"])
        raise AssertionError(f"{failure}\n{logs}") from None
    finally:
        for context in contexts:
            context.close()

    assert not problems, problems
    # What the servers held or passed on during the meeting: no plaintext anywhere (the
    # database, everything sent to Redis, both Daphnes' logs).
    captured = {
        "the PostgreSQL dump": database_dump(),
        "the Redis MONITOR capture": monitor.stop(),
        "the Daphne logs": "\n".join(
            path.read_text(errors="replace") for path in Path(servers["log_dir"]).glob("*.log")
        ),
    }
    assert len(captured["the Redis MONITOR capture"]) > 1000  # it did capture the meeting
    for where, text in captured.items():
        for _, said in conversation:
            assert said not in text, f"{said!r} in {where}"
        for words in ("before anything", "after Redis came back", "after a Daphne restart"):
            assert words not in text, f"{words!r} in {where}"
    # Each message stored once, in order; the pages showed each once (expect_read).
    rows = list(Message.objects.filter(meeting=world.meeting).order_by("seq"))
    assert [row.seq for row in rows] == list(range(1, len(conversation) + 1))
    assert all(row.body is None for row in rows)
