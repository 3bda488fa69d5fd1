"""A meeting that lasts, on real Daphne processes (issue 17).

- A member whose session started 29 minutes ago and who has only chatted since is let
  back in after a Daphne restart at minute 31, and loses nothing: chatting on the socket
  kept the session alive, as pages would have (SESSION_IDLE_TIMEOUT is 30 minutes).
  Time is moved as the sessions tests move it: the session's start and last activity are
  set into the past in the database, and moved two minutes further before the restart.
- A frame over Daphne's own 1 MiB limit gets ``frame_too_large`` and the socket stays.
- /healthz answers 503, in the time the health check allows, while the database is
  unreachable (and not after the pool's own 10 s wait for a connection).
"""

import asyncio
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connections
from websockets.asyncio.client import connect

from accounts.models import Session
from accounts.sessions import LAST_SEEN_KEY, STARTED_KEY
from meetings.models import Message
from tests.meetings_multiprocess.test_two_daphnes import (
    STARTUP_TIMEOUT,
    DaphneProcess,
    RoomClient,
    body_of,
    database_url,
    free_port,
    open_meeting,
    stop_all,
    tail,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

MINUTE = 60
BEFORE_RESTART = 10  # messages chatted before the restart
DURING_RESTART = 5  # typed while the Daphne is down: they wait in the outbox


def app_env(**extra):
    env = os.environ.copy()
    env["DATABASE_URL"] = database_url(connections["default"].settings_dict)
    env.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env["CHAT_RATE_LIMIT_MESSAGES"] = "10000"
    env.update(extra)
    return env


def move_session(cookie, *, started_ago=None, by=None):
    """Set the session's start and last activity this long ago, or move both back `by`."""
    store = Session.get_session_store_class()(session_key=cookie)
    now = time.time()
    if started_ago is not None:
        store[STARTED_KEY] = store[LAST_SEEN_KEY] = now - started_ago
    if by is not None:
        store[STARTED_KEY] -= by
        store[LAST_SEEN_KEY] -= by
    store.save()


def move_session_from_a_thread(cookie, **how):
    try:
        move_session(cookie, **how)
    finally:
        # This thread's own database connection would outlive the test database.
        connections.close_all()


def test_a_member_who_chatted_for_29_minutes_is_let_back_in_after_a_restart_at_minute_31():
    meeting, cookies = open_meeting()
    cookie = cookies["Fern"]
    move_session(cookie, started_ago=29 * MINUTE)
    env = app_env()
    log_dir = tempfile.mkdtemp(prefix="meeting-lasts-")
    daphnes = []
    try:
        first = DaphneProcess(env, log_dir)
        daphnes.append(first)
        first.wait_until_healthy(time.monotonic() + STARTUP_TIMEOUT)
        fern = RoomClient("fern", base_url=first.url, meeting_id=meeting.pk, cookie=cookie)

        async def meeting_goes_on():
            deadline = time.monotonic() + 60
            runner = asyncio.create_task(fern.run(deadline))
            try:
                await wait_until(
                    lambda: fern.connections, 10, "fern to connect", [fern], deadline=deadline
                )
                for number in range(1, BEFORE_RESTART + 1):
                    await fern.send(number)
                    await wait_until(
                        lambda n=number: fern.last_seq >= n,
                        10,
                        f"message {number} shown",
                        [fern],
                        deadline=deadline,
                    )
                # Minute 31: two more minutes pass, then the Daphne is restarted (a deploy).
                await asyncio.to_thread(move_session_from_a_thread, cookie, by=2 * MINUTE)
                first.terminate()
                await asyncio.to_thread(first.wait_or_kill)
                for number in range(BEFORE_RESTART + 1, BEFORE_RESTART + DURING_RESTART + 1):
                    await fern.send(number)
                second = DaphneProcess(env, log_dir, port=first.port)
                daphnes.append(second)
                await asyncio.to_thread(
                    second.wait_until_healthy, time.monotonic() + STARTUP_TIMEOUT
                )
                total = BEFORE_RESTART + DURING_RESTART
                await wait_until(
                    lambda: fern.last_seq >= total and not fern.outbox or fern.final,
                    20,
                    "fern to be back with every message",
                    [fern],
                    deadline=deadline,
                )
            finally:
                await fern.stop()
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)

        try:
            asyncio.run(meeting_goes_on())
        except AssertionError as failure:
            logs = "\n".join(f"--- {d.url}\n{tail(d.log_path)}" for d in daphnes)
            raise AssertionError(f"{failure}\n{logs}") from None
    finally:
        stop_all(daphnes)
        shutil.rmtree(log_dir, ignore_errors=True)

    total = BEFORE_RESTART + DURING_RESTART
    assert fern.final is None, fern.describe()
    assert fern.connections >= 2, fern.describe()
    assert not any("403" in drop for drop in fern.drops), fern.describe()
    assert [m["seq"] for m in fern.shown] == list(range(1, total + 1))
    assert [m["body"] for m in fern.shown] == [body_of(n, "fern") for n in range(1, total + 1)]
    stored = list(Message.objects.filter(meeting=meeting).order_by("seq"))
    assert [m.body for m in stored] == [body_of(n, "fern") for n in range(1, total + 1)]
    # The session lives on: chatting was activity.
    assert Session.objects.filter(session_key=cookie).exists()


def test_a_frame_over_daphnes_own_limit_gets_frame_too_large_and_the_socket_stays():
    meeting, cookies = open_meeting()
    log_dir = tempfile.mkdtemp(prefix="frame-limit-")
    daphne = DaphneProcess(app_env(), log_dir)
    try:
        daphne.wait_until_healthy(time.monotonic() + STARTUP_TIMEOUT)
        netloc = urlsplit(daphne.url).netloc

        async def oversized():
            async with connect(
                f"ws://{netloc}/ws/meetings/{meeting.pk}/",
                origin=f"http://{netloc}",
                additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookies['Fern']}"},
                proxy=None,
                max_size=None,
            ) as ws:
                assert json.loads(await ws.recv())["type"] in ("hello", "presence")
                answers = []
                for size in (1024 * 1024 + 1, 3 * 1024 * 1024, 20 * 1024):
                    await ws.send(json.dumps({"type": "send", "body": "x" * size}))
                    await ws.send(json.dumps({"type": "ping", "visible": True}))
                    while True:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        if frame["type"] == "pong":
                            break
                        if frame["type"] != "presence" and frame["type"] != "hello":
                            answers.append(frame)
                return answers

        try:
            answers = asyncio.run(oversized())
        except Exception as failure:
            raise AssertionError(f"{failure!r}\n{tail(daphne.log_path)}") from None
        assert [(a["type"], a["code"]) for a in answers] == [("error", "frame_too_large")] * 3
    finally:
        stop_all([daphne])
        shutil.rmtree(log_dir, ignore_errors=True)


def test_healthz_answers_503_quickly_while_the_database_is_unreachable():
    nowhere = dict(connections["default"].settings_dict, PORT=str(free_port()))
    log_dir = tempfile.mkdtemp(prefix="healthz-down-")
    daphne = DaphneProcess(app_env(DATABASE_URL=database_url(nowhere)), log_dir)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert daphne.proc.poll() is None, tail(daphne.log_path)
            try:
                # Well under the pool's 10 s wait for a connection, which a load balancer
                # would see as a hang; the health check itself waits 2 s.
                with opener.open(f"{daphne.url}/healthz", timeout=7) as response:
                    status, body = response.status, response.read()
            except urllib.error.HTTPError as answer:
                status, body = answer.code, answer.read()
            except urllib.error.URLError as failure:
                # Not listening yet.
                assert isinstance(failure.reason, ConnectionRefusedError), failure
                assert time.monotonic() < deadline, tail(daphne.log_path)
                time.sleep(0.1)
                continue
            break
        assert status == 503, body
        assert json.loads(body)["database"] == "down"
    finally:
        stop_all([daphne])
        shutil.rmtree(log_dir, ignore_errors=True)
