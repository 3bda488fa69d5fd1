"""Fixtures for the meetings tests: people, groups, places and meetings built through the
app's own services; session cookies (plain, or 2FA-verified through the real sign-in
pages); and a websocket wrapper around the real ASGI application.

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
from datetime import timedelta

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP

from accounts.models import TOTPDevice, User
from groups import services as group_services
from groups.models import Group, Membership, Retention, Topic
from meetings import services as meeting_services
from meetings.models import Meeting
from supportgroups.asgi import application
from supportgroups.realtime import broadcast_on_commit, user_group_name
from tests.database import dump_every_table, events  # noqa: F401 - for the test modules
from tests.factories import CHEAP_PASSWORD_HASHERS

PASSWORD = "lantern harbour quietly 42"
OWN_ORIGIN = b"http://127.0.0.1"

CLOSE_SIGNED_OUT = 4001
CLOSE_NOT_ALLOWED = 4003
CLOSE_ROOM_CLOSED = 4004
CLOSE_MEMBERSHIP_CHANGED = 4005


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


def run(function, *args, **kwargs):
    """Call sync (ORM) code from an async test, on the same thread the consumers use."""
    return database_sync_to_async(function)(*args, **kwargs)


# --- people, groups, places -------------------------------------------------------------------


def make_person(handle: str, *, staff: bool = False) -> User:
    return User.objects.create_user(username=handle, password=PASSWORD, is_staff=staff)


def make_group(actor: User, name: str = "Evening Grief Circle", **overrides) -> Group:
    fields = {
        "topic": Topic.GRIEF,
        "description": f"A gentle weekly space: {name}.",
        "eligibility": "Adults who have lost someone close.",
        "meeting_rhythm": "Tuesdays, 7-8:30 pm",
        "listed": True,
        "requires_screening": False,
        "retention": Retention.DAYS_30,
        "crisis_resources": "Call the Night Line on 0800 555 0199, any time.",
        "guidelines": ["What is shared here stays here.", "Speak from your own experience."],
        "agreement_text": "I keep what is said here confidential.",
        "agreement_summary": "Members keep what is shared confidential.",
    }
    fields.update(overrides)
    return group_services.group_create(actor=actor, name=name, **fields)


def give_place(group: Group, user: User, pseudonym: str | None = None) -> Membership:
    """A place in the group; with a pseudonym, also chosen and signed (active)."""
    membership = group_services.membership_create(group=group, user=user, actor=None, reason="test")
    if pseudonym is not None:
        membership = group_services.membership_take_place(
            membership=membership,
            pseudonym=pseudonym,
            typed_name=pseudonym,
            guidelines_acknowledged=True,
        )
    return membership


def appoint(group: Group, user: User, pseudonym: str, *, actor: User) -> Membership:
    membership = group_services.facilitator_appoint(group=group, actor=actor, user=user)
    return group_services.membership_take_place(
        membership=membership,
        pseudonym=pseudonym,
        typed_name=pseudonym,
        guidelines_acknowledged=True,
    )


def schedule(
    group: Group,
    actor: User,
    *,
    starts_in: timedelta = timedelta(minutes=-5),
    lasts: timedelta = timedelta(hours=1),
    title: str = "Tuesday meeting",
) -> Meeting:
    """One meeting; by default it started five minutes ago, so its room is open."""
    starts_at = timezone.now() + starts_in
    return meeting_services.meeting_schedule(
        group=group,
        actor=actor,
        title=title,
        starts_at=starts_at,
        ends_at=starts_at + lasts,
    )[0]


def set_status(membership: Membership, status: str, *, notify: bool = True) -> None:
    """What the moderation service will do when it exists: change the membership's status
    and, after commit, tell the person's sockets. (There is no moderation service yet, so
    the tests change the row directly and broadcast as groups.services does.)"""
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).update(status=status)
        if notify:
            broadcast_on_commit(
                user_group_name(membership.user_id),
                {"type": "group.membership_changed", "group": membership.group_id},
            )


# --- sessions ---------------------------------------------------------------------------------


def cookie_of(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def session_cookie(user: User) -> str:
    """A signed-in session made by force_login: never 2FA-verified."""
    client = Client()
    client.force_login(user)
    return cookie_of(client)


def totp_device(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)


def totp_code(device: TOTPDevice) -> str:
    device = TOTPDevice.objects.get(pk=device.pk)
    # A code is accepted once per 30 s step; a second sign-in in the same step needs what
    # time passing would do.
    step = int(time.time()) // TOTPDevice.STEP
    if device.last_t >= step - 1:
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=step - 2)
    return f"{TOTP(bytes.fromhex(device.key)).token():06d}"


def sign_in(user: User) -> Client:
    """Sign in through the login page (and, for people with an authenticator, its code)."""
    client = Client()
    response = client.post("/accounts/login/", {"login": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    if response["Location"] == "/accounts/login/two-factor/":
        code = totp_code(totp_device(user))
        response = client.post("/accounts/login/two-factor/", {"code": code})
        assert response.status_code == 302, response.content.decode()[:2000]
        assert response["Location"] != "/accounts/login/two-factor/"
    return client


def sign_in_verified(user: User) -> Client:
    """A facilitator with an authenticator app, signed in with both steps."""
    totp_device(user)
    return sign_in(user)


# --- the world most tests start from ----------------------------------------------------------


@dataclass
class World:
    admin: User
    group: Group
    facilitator: Membership
    river: Membership  # an active member
    fern: Membership  # another active member
    other_group: Group
    stranger: Membership  # an active member of the other group only
    meeting: Meeting  # open now

    @property
    def path(self) -> str:
        return room_path(self.meeting)


def room_path(meeting: Meeting) -> str:
    return f"/ws/meetings/{meeting.pk}/"


def build_world(**group_overrides) -> World:
    admin = make_person("site-keeper", staff=True)
    group = make_group(admin, **group_overrides)
    facilitator = appoint(group, make_person("fac-login-handle"), "Lantern", actor=admin)
    river = give_place(group, make_person("river-login-handle"), "River")
    fern = give_place(group, make_person("fern-login-handle"), "Fern")
    other_group = make_group(admin, "Morning Recovery Circle")
    stranger = give_place(other_group, make_person("stranger-login-handle"), "Stranger")
    meeting = schedule(group, facilitator.user)
    return World(admin, group, facilitator, river, fern, other_group, stranger, meeting)


@pytest.fixture
def world() -> World:
    return build_world()


# --- sockets ----------------------------------------------------------------------------------


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

    async def __aenter__(self) -> Socket:
        self.communicator = WebsocketCommunicator(
            application, self.path, headers=socket_headers(self.cookie, origin=self.origin)
        )
        self.connected, self.code = await self.communicator.connect(timeout=5)
        if self.connected:
            self.hello = await self.receive()
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
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.receive(timeout=max(deadline - time.monotonic(), 0.01))
            if frame["type"] != "presence":
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


async def cookie(membership: Membership) -> str:
    """A session cookie of the membership's person (from async tests)."""
    return await run(session_cookie, membership.user)


# --- the database, raw ------------------------------------------------------------------------




