"""Two Daphne processes share one room through one Redis, and survive a Redis restart.

DESIGN.md ("Scaling out", "Realtime chat protocol"): a member on one process and a member
on another talk normally, and a Redis restart in the middle loses nothing and doubles
nothing, because the database is the truth and clients resume after the last message
they showed. Both members here are real websocket clients (the `websockets` library)
that follow meetings/PROTOCOL.md as static/js/room.js does: render strictly in seq order,
resume on a gap or after an ack that is ahead, keep sends in an outbox until they are
shown, and after every (re)connect resume first, then resend the outbox with the same
client ids.
"""

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import websockets
from django.conf import settings
from django.db import connections
from django.test import Client
from django.utils import timezone
from websockets.asyncio.client import connect

from accounts.models import User
from groups import services as group_services
from groups.models import Topic
from meetings import services as meeting_services
from meetings.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
HOST = "127.0.0.1"
TOTAL_MESSAGES = 100
RESTART_AFTER = 50  # Redis is restarted right after this message is sent
# Every wait is bounded, and together they keep the test under a minute:
# start-up 20 s + conversation 28 s + settle 1 s + shutdown 5 s, plus building the data.
STARTUP_TIMEOUT = 20  # seconds for both Daphnes (or the new Redis) to answer
CONVERSATION_TIMEOUT = 28  # seconds for all 100 messages, restart included
TURN_TIMEOUT = 10  # seconds a member waits to see the other's message
SHUTDOWN_TIMEOUT = 5  # seconds for a Daphne to exit on SIGTERM before it is killed
# Close codes after which a client must not reconnect (PROTOCOL.md).
FINAL_CLOSE_CODES = {4001, 4003, 4004, 4005}


# --- processes -------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def database_url(db):
    """A DATABASE_URL for one of Django's DATABASES entries (as tests/e2e/conftest.py)."""
    user = quote(db["USER"], safe="")
    password = quote(db["PASSWORD"], safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{credentials}{db['HOST']}:{db['PORT']}/{quote(db['NAME'], safe='')}"


def tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_no_proxy_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DaphneProcess:
    def __init__(self, env, log_dir, *, port=None):
        # A given port: the same address again, as after a restart or a deploy.
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = Path(log_dir) / f"daphne-{self.port}-{id(self)}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "supportgroups.serve",
                    "-b",
                    HOST,
                    "-p",
                    str(self.port),
                    "supportgroups.asgi:application",
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_until_healthy(self, deadline):
        last_error = None
        while True:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"daphne on {self.url} exited with code {self.proc.returncode}:\n"
                    f"{tail(self.log_path)}",
                    pytrace=False,
                )
            try:
                with _no_proxy_opener.open(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except OSError as exc:
                last_error = str(exc)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"daphne on {self.url} did not answer /healthz (last: {last_error}):\n"
                    f"{tail(self.log_path)}",
                    pytrace=False,
                )
            time.sleep(0.1)

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.terminate()

    def wait_or_kill(self, timeout=SHUTDOWN_TIMEOUT):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def stop_all(daphnes):
    # Together, so a slow shutdown costs its wait once.
    for daphne in daphnes:
        daphne.terminate()
    for daphne in daphnes:
        daphne.wait_or_kill()


def redis_answers(port):
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")
    return False


def port_is_closed(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return False
    except OSError:
        return True


class PrivateRedis:
    """A Redis server of this test's own, which it restarts mid-conversation.

    Not the harness's Redis: the other tests (in this process and in the other pytest-xdist
    workers) use that one all the while, and must not see it stop or come back empty.
    """

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="two-daphnes-redis-"))
        self.log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 (closed by stop)
        self.proc = None
        self.downtime = None

    @property
    def url(self):
        return f"redis://{HOST}:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not redis_answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Redis did not start:\n{tail(self.dir / 'redis.log')}")
            time.sleep(0.05)

    def restart(self):
        """Stop it (losing everything it held) and start a fresh, empty one on the same port."""
        started = time.monotonic()
        subprocess.run(
            ["redis-cli", "-h", HOST, "-p", str(self.port), "shutdown", "nosave"],
            capture_output=True,
            timeout=5,
            check=False,
        )
        deadline = time.monotonic() + 5
        while not port_is_closed(self.port):
            assert time.monotonic() < deadline, f"Redis on port {self.port} did not stop"
            time.sleep(0.05)
        self._reap()
        time.sleep(0.3)  # a moment of real downtime: sends and broadcasts fail meanwhile
        self.start()
        self.downtime = time.monotonic() - started

    def _reap(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        self._reap()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- a client that follows PROTOCOL.md ---------------------------------------------------------


class RoomClient:
    """One member's tab, reduced to the protocol (the same rules as static/js/room.js)."""

    def __init__(self, name, *, base_url, meeting_id, cookie):
        parts = urlsplit(base_url)
        self.name = name
        self.socket_url = f"ws://{parts.netloc}/ws/meetings/{meeting_id}/"
        self.origin = f"http://{parts.netloc}"
        self.cookie = f"{settings.SESSION_COOKIE_NAME}={cookie}"
        self.shown = []  # message frames in the order rendered
        self.last_seq = 0
        self.early = {}  # seq -> frame that arrived before the ones before it
        self.outbox = {}  # client_id -> body, until the message is shown
        self.resuming = False
        self.ws = None
        self.stopping = False
        self.connections = 0
        self.drops = []  # why each connection ended
        self.errors = []  # error frames received
        self.final = None  # set when the server says not to come back
        self.duplicate_acks = 0
        self.sent = 0
        self._later = set()

    # -- connection with back-off ------------------------------------------------------------

    async def run(self, deadline):
        delay = 0.1
        while not self.stopping and self.final is None and time.monotonic() < deadline:
            try:
                async with connect(
                    self.socket_url,
                    origin=self.origin,
                    additional_headers={"Cookie": self.cookie},
                    proxy=None,
                    open_timeout=5,
                    close_timeout=1,
                ) as ws:
                    self.ws = ws
                    self.connections += 1
                    async for raw in ws:
                        frame = json.loads(raw)
                        if frame["type"] == "hello":
                            delay = 0.1
                        await self.handle(frame)
                    self.drops.append(f"closed {ws.close_code}")
                    if ws.close_code in FINAL_CLOSE_CODES:
                        self.final = f"closed with {ws.close_code}"
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                self.drops.append(f"dropped {code}")
                if code in FINAL_CLOSE_CODES:
                    self.final = f"closed with {code}"
            except websockets.InvalidStatus as exc:
                self.drops.append(f"handshake HTTP {exc.response.status_code}")
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                self.drops.append(f"{type(exc).__name__}: {exc}")
            finally:
                self.ws = None
            if self.stopping or self.final is not None:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def stop(self):
        self.stopping = True
        for task in self._later:
            task.cancel()
        if self.ws is not None:
            await self.ws.close()

    async def _send_frame(self, frame):
        ws = self.ws
        if ws is None:
            return
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(json.dumps(frame))

    # -- frames ------------------------------------------------------------------------------

    async def handle(self, frame):
        kind = frame["type"]
        if kind == "hello":
            self.resuming = False
            await self.request_resume()
        elif kind == "message":
            await self.accept(frame)
        elif kind == "resumed":
            self.resuming = False
            if self.early:
                await self.request_resume()
            for client_id, body in list(self.outbox.items()):
                await self._send_frame({"type": "send", "client_id": client_id, "body": body})
        elif kind == "ack":
            if frame["duplicate"]:
                self.duplicate_acks += 1
            if frame["seq"] > self.last_seq:
                # The broadcast of our own message may still be on its way; if it does
                # not come, the ack tells us we are behind.
                task = asyncio.create_task(self._resume_if_behind(frame["seq"]))
                self._later.add(task)
                task.add_done_callback(self._later.discard)
        elif kind == "error":
            self.errors.append(frame)
        elif kind in ("closed", "signed_out"):
            self.final = f"{kind}: {frame}"

    async def _resume_if_behind(self, seq):
        await asyncio.sleep(0.5)
        if seq > self.last_seq:
            await self.request_resume()

    async def accept(self, frame):
        seq = frame["seq"]
        if seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            self.early[seq] = frame
            await self.request_resume()
            return
        self.shown.append(frame)
        self.last_seq = seq
        if frame.get("client_id"):
            self.outbox.pop(frame["client_id"], None)
        following = self.early.pop(self.last_seq + 1, None)
        if following is not None:
            await self.accept(following)

    async def request_resume(self):
        if self.resuming or self.ws is None:
            return
        self.resuming = True
        await self._send_frame({"type": "resume", "after_seq": self.last_seq})

    async def send(self, number):
        """Type message `number`: it waits in the outbox until it is shown."""
        client_id = f"{self.name}-{number:03d}-{os.urandom(6).hex()}"
        body = self.outbox[client_id] = body_of(number, self.name)
        self.sent += 1
        await self._send_frame({"type": "send", "client_id": client_id, "body": body})

    def describe(self):
        return (
            f"{self.name}: last_seq={self.last_seq} shown={len(self.shown)} "
            f"outbox={len(self.outbox)} connections={self.connections} "
            f"drops={self.drops} errors={self.errors[:3]} final={self.final}"
        )


def body_of(number, name):
    return f"message {number} from {name}"


async def wait_until(predicate, timeout, what, clients, *, deadline):
    """Poll until predicate() holds, for at most `timeout` s and never past `deadline`."""
    deadline = min(time.monotonic() + timeout, deadline)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}\n"
                + "\n".join(client.describe() for client in clients)
            )
        await asyncio.sleep(0.01)


async def converse(alice, bob, restarter, deadline):
    clients = [alice, bob]
    runners = [asyncio.create_task(client.run(deadline)) for client in clients]
    restart = None
    try:
        await wait_until(
            lambda: alice.connections and bob.connections,
            10,
            "both to connect",
            clients,
            deadline=deadline,
        )
        for number in range(1, TOTAL_MESSAGES + 1):
            sender = alice if number % 2 else bob
            # Take turns: answer only once the other's message is on screen.
            await wait_until(
                lambda s=sender, n=number: s.last_seq >= n - 1,
                TURN_TIMEOUT,
                f"{sender.name} to see message {number - 1}",
                clients,
                deadline=deadline,
            )
            await sender.send(number)
            if number == RESTART_AFTER:
                # In the background, so traffic keeps flowing while Redis goes away.
                restart = asyncio.create_task(asyncio.to_thread(restarter.restart))
        await wait_until(
            lambda: all(c.last_seq >= TOTAL_MESSAGES and not c.outbox for c in clients),
            TURN_TIMEOUT,
            "both to show every message",
            clients,
            deadline=deadline,
        )
        assert restart is not None
        await restart  # re-raises if Redis could not be restarted
    finally:
        for client in clients:
            await client.stop()
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        if restart is not None and not restart.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(restart, 25)


# --- the test ----------------------------------------------------------------------------------


def open_meeting():
    organiser = User.objects.create_user(username="organiser-handle", is_staff=True)
    group = group_services.group_create(
        actor=organiser,
        name="Two Process Circle",
        topic=Topic.GRIEF,
        description="A group whose room runs on two processes.",
        eligibility="Adults.",
        meeting_rhythm="Tuesdays",
        listed=False,
        requires_screening=False,
        crisis_resources="Call your local emergency number.",
        guidelines=["What is shared here stays here."],
        agreement_text="I keep what is said here confidential.",
        # The plain protocol (issue 19's E2EE rooms have tests of their own: test_e2ee_*).
        e2ee_meetings=False,
    )
    people = {}
    for handle, pseudonym in (("alice-login-handle", "Fern"), ("bob-login-handle", "River")):
        user = User.objects.create_user(username=handle)
        membership = group_services.membership_create(
            group=group, user=user, actor=organiser, reason="test"
        )
        group_services.membership_take_place(
            actor=membership.user,
            group=membership.group,
            pseudonym=pseudonym,
            typed_name=pseudonym,
            guidelines_acknowledged=True,
        )
        client = Client()
        client.force_login(user)
        people[pseudonym] = client.cookies[settings.SESSION_COOKIE_NAME].value
    # The admin who made the group runs its meetings: the service asks for a facilitator.
    group_services.facilitator_appoint(group=group, actor=organiser, user=organiser)
    now = timezone.now()
    [meeting] = meeting_services.meeting_schedule(
        group=group,
        actor=organiser,
        title="Two process meeting",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )
    return meeting, people


def test_it_loses_and_doubles_nothing_across_two_daphnes_and_a_redis_restart():
    started = time.monotonic()
    meeting, cookies = open_meeting()

    env = os.environ.copy()
    env["DATABASE_URL"] = database_url(connections["default"].settings_dict)
    env.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # Fifty messages each in well under a minute: lift the per-member rate limit (5 / 10 s),
    # which is not what this test is about.
    env["CHAT_RATE_LIMIT_MESSAGES"] = "10000"

    redis = PrivateRedis()
    env["REDIS_URL"] = redis.url
    log_dir = tempfile.mkdtemp(prefix="two-daphnes-")
    daphnes = []
    try:
        redis.start()
        daphnes = [DaphneProcess(env, log_dir), DaphneProcess(env, log_dir)]
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for daphne in daphnes:
            daphne.wait_until_healthy(deadline)

        alice = RoomClient(
            "alice", base_url=daphnes[0].url, meeting_id=meeting.pk, cookie=cookies["Fern"]
        )
        bob = RoomClient(
            "bob", base_url=daphnes[1].url, meeting_id=meeting.pk, cookie=cookies["River"]
        )
        try:
            asyncio.run(converse(alice, bob, redis, time.monotonic() + CONVERSATION_TIMEOUT))
        except AssertionError as failure:
            logs = "\n".join(f"--- {d.url}\n{tail(d.log_path)}" for d in daphnes)
            raise AssertionError(f"{failure}\n{logs}") from None
    finally:
        # Let the last disconnects finish first: a disconnect still broadcasting when
        # SIGTERM arrives can keep Daphne from exiting until it is killed.
        time.sleep(1)
        stop_all(daphnes)
        redis.stop()
        shutil.rmtree(log_dir, ignore_errors=True)

    numbers = range(1, TOTAL_MESSAGES + 1)
    expected = [body_of(n, "alice" if n % 2 else "bob") for n in numbers]
    authors = ["Fern" if n % 2 else "River" for n in numbers]
    for client in (alice, bob):
        assert [m["seq"] for m in client.shown] == list(numbers), client.describe()
        assert [m["body"] for m in client.shown] == expected, client.describe()
        assert [m["author"] for m in client.shown] == authors
        # Only the author gets a message's client id back.
        assert all(bool(m["client_id"]) == m["mine"] for m in client.shown)
        assert client.sent == TOTAL_MESSAGES // 2
        assert not client.errors, client.describe()
        assert client.final is None, client.describe()
    # Each stored once, whatever was retried; the sequence has no holes.
    rows = list(Message.objects.filter(meeting=meeting).order_by("seq"))
    assert len(rows) == TOTAL_MESSAGES
    assert [row.seq for row in rows] == list(numbers)
    assert [row.body for row in rows] == expected
    assert redis.downtime is not None, "Redis was never restarted"
    # For the -s reader: how long it took and what the restart did to the sockets.
    print(
        f"\ntwo daphnes: {time.monotonic() - started:.1f}s; Redis down "
        f"{redis.downtime:.2f}s; duplicate acks "
        f"{alice.duplicate_acks + bob.duplicate_acks}\n{alice.describe()}\n{bob.describe()}"
    )
