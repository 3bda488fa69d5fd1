"""The meeting room's websocket as a test sees it: a wrapper around the real ASGI application,
the session cookies that open it, and the fixtures socket tests need.
The meetings and moderation conftests re-export these for their test modules.

Socket tests run with ``django_db(transaction=True)``: the consumer reads the database from
Channels' worker thread, so it only sees committed rows. Inside an ``async def`` test every
ORM call goes through ``run(...)`` (``database_sync_to_async``): the suite runs without
DJANGO_ALLOW_ASYNC_UNSAFE, so a forgotten one fails loudly.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from meetings.models import Meeting
from supportgroups.asgi import application
from tests.factories import CHEAP_PASSWORD_HASHERS

OWN_ORIGIN = b"http://127.0.0.1"

CLOSE_SIGNED_OUT = 4001
CLOSE_NOT_ALLOWED = 4003
CLOSE_ROOM_CLOSED = 4004
CLOSE_MEMBERSHIP_CHANGED = 4005


# --- fixtures (pytest finds them in the conftests that import them) ---------------------------


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


@pytest.fixture(autouse=True)
def _channel_layer_per_test(settings):
    """A fresh channel layer for every test (the production configuration, unchanged).

    Each test runs on its own event loop, and a channels_redis layer keeps locks and
    connections bound to the loop that made them; changing CHANNEL_LAYERS makes Channels
    build a new layer, so nothing is carried over from the previous test's loop.
    """
    settings.CHANNEL_LAYERS = copy.deepcopy(settings.CHANNEL_LAYERS)


@pytest_asyncio.fixture
async def close_worker_connections():
    yield
    # The ORM calls of the test and of the consumers share Channels' one worker thread;
    # its persistent connection would otherwise keep the test database busy.
    await sync_to_async(connections.close_all)()


# --- sessions ---------------------------------------------------------------------------------


def cookie_of(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


# --- sockets ----------------------------------------------------------------------------------


def run(function, *args, **kwargs):
    """Call sync (ORM) code from an async test, on the same thread the consumers use."""
    return database_sync_to_async(function)(*args, **kwargs)


def room_path(meeting: Meeting) -> str:
    return f"/ws/meetings/{meeting.pk}/"


def socket_headers(cookie: str | None, *, origin: bytes = OWN_ORIGIN) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return headers


@dataclass
class Socket:
    """A WebsocketCommunicator on the real application that is always cleaned up and
    remembers every frame it received (for privacy checks)."""

    path: str
    cookie: str | None
    origin: bytes = OWN_ORIGIN
    connected: bool | None = None
    code: int | None = None
    frames: list[dict] = field(default_factory=list)
    # Frames already read (e.g. while waiting for an ack) but not yet looked at by the test.
    pending: list[dict] = field(default_factory=list)
    hello: dict | None = None
    # The frame that said why the socket was refused (it is accepted, told, then closed).
    refused: dict | None = None

    async def __aenter__(self) -> Socket:
        self.communicator = WebsocketCommunicator(
            application, self.path, headers=socket_headers(self.cookie, origin=self.origin)
        )
        self.connected, self.code = await self.communicator.connect(timeout=5)
        if self.connected:
            first = await self.receive()
            if first["type"] == "refused":
                # A refusal: read as one before the accept was (connected False, the code).
                self.refused = first
                close = await self.communicator.receive_output(timeout=1)
                assert close["type"] == "websocket.close", close
                self.connected, self.code = False, close.get("code")
                return self
            self.hello = first
            assert self.hello["type"] == "hello", self.hello
        return self

    async def __aexit__(self, exc_type, exc, traceback) -> None:  # noqa: ANN001
        try:
            await self.communicator.disconnect(timeout=2)
        except BaseException:
            # A consumer that crashed fails the test (its exception surfaces here), unless
            # the test has already failed for a reason of its own.
            if exc_type is None:
                raise

    async def hang_up(self) -> None:
        """What the browser does once the server closed the socket (Daphne then tells the
        consumer, which leaves the room)."""
        await self.communicator.disconnect(timeout=2)

    async def send(self, frame) -> None:  # noqa: ANN001
        await self.communicator.send_json_to(frame)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def post(self, body: str, client_id: str) -> None:
        await self.send({"type": "send", "client_id": client_id, "body": body})

    async def receive(self, timeout: float = 1) -> dict:
        if self.pending:
            return self.pending.pop(0)
        output = await self.communicator.receive_output(timeout=timeout)
        assert output["type"] == "websocket.send", output
        frame = json.loads(output["text"])
        self.frames.append(frame)
        return frame

    async def expect(self, kind: str, timeout: float = 1) -> dict:
        """The next frame that is not a presence update; it must be of this type."""
        return await self.expect_ignoring(kind, (), timeout)

    async def expect_ignoring(self, kind: str, ignore: tuple[str, ...], timeout: float = 1) -> dict:
        """The next frame of this type, skipping presence updates and ``ignore`` types."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.receive(timeout=max(deadline - time.monotonic(), 0.01))
            if frame["type"] == "presence" or frame["type"] in ignore:
                continue
            assert frame["type"] == kind, frame
            return frame

    async def expect_both(self, first: str, second: str, timeout: float = 1) -> tuple[dict, dict]:
        """Two frames whose relative order the protocol leaves open (e.g. the author's ack
        and the broadcast of their own message), in the order named."""
        deadline = time.monotonic() + timeout
        got: dict[str, dict] = {}
        while len(got) < 2:
            frame = await self.receive(timeout=max(deadline - time.monotonic(), 0.01))
            if frame["type"] == "presence":
                continue
            assert frame["type"] in (first, second) and frame["type"] not in got, frame
            got[frame["type"]] = frame
        return got[first], got[second]

    async def expect_presence(self, names: list[str], timeout: float = 2) -> dict:
        """Wait for a presence frame listing exactly these pseudonyms."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.receive(timeout=max(deadline - time.monotonic(), 0.01))
            if frame["type"] == "presence" and frame["present"] == names:
                return frame
            assert frame["type"] == "presence", frame

    async def expect_error(self, code: str, timeout: float = 1) -> dict:
        frame = await self.expect("error", timeout)
        assert frame["code"] == code, frame
        assert frame["message"], frame
        return frame

    async def expect_close(self, code: int, timeout: float = 1) -> None:
        leftover = [frame for frame in self.pending if frame["type"] != "presence"]
        assert not leftover, f"expected the close, got {leftover}"
        self.pending.clear()
        deadline = time.monotonic() + timeout
        while True:
            output = await self.communicator.receive_output(
                timeout=max(deadline - time.monotonic(), 0.01)
            )
            if output["type"] == "websocket.send":
                frame = json.loads(output["text"])
                self.frames.append(frame)
                assert frame["type"] == "presence", f"expected the close, got {frame}"
                continue
            assert output["type"] == "websocket.close", output
            assert output.get("code") == code, output
            return

    async def expect_closed(self, reason: str, code: int, timeout: float = 1) -> dict:
        """A closed frame with this reason, then the close itself, both within timeout."""
        started = time.monotonic()
        frame = await self.expect("closed", timeout)
        assert frame["reason"] == reason, frame
        await self.expect_close(code, timeout=max(timeout - (time.monotonic() - started), 0.01))
        return frame

    async def expect_quiet(self, timeout: float = 0.3) -> None:
        """Nothing but presence updates arrives."""
        leftover = [frame for frame in self.pending if frame["type"] != "presence"]
        assert not leftover, leftover
        self.pending.clear()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or await self.communicator.receive_nothing(timeout=left):
                return
            frame = await self.receive()
            assert frame["type"] == "presence", frame

    async def still_usable(self) -> None:
        """The socket answers a heartbeat."""
        await self.send({"type": "ping"})
        await self.expect("pong")

    async def send_and_ack(self, body: str, client_id: str) -> dict:
        """Post a message and wait for its ack and (unless it is a duplicate) for the
        broadcast of it; other frames meanwhile are kept for the test to look at."""
        await self.post(body, client_id)
        deadline = time.monotonic() + 2
        ack = echo = None
        held = []
        while ack is None or (not ack["duplicate"] and echo is None):
            output = await self.communicator.receive_output(
                timeout=max(deadline - time.monotonic(), 0.01)
            )
            assert output["type"] == "websocket.send", output
            frame = json.loads(output["text"])
            self.frames.append(frame)
            if frame["type"] == "ack" and frame["client_id"] == client_id:
                ack = frame
            elif frame["type"] == "message" and frame["client_id"] == client_id:
                assert frame["mine"] is True and frame["body"] == body, frame
                echo = frame
            else:
                assert frame["type"] in ("presence", "message"), frame
                held.append(frame)
        if echo is not None:
            assert echo["seq"] == ack["seq"], (echo, ack)
        self.pending.extend(held)
        return ack

    def of_type(self, kind: str) -> list[dict]:
        return [frame for frame in self.frames if frame["type"] == kind]
