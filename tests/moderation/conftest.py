"""Fixtures for the moderation tests: people, groups, places, meetings and messages built
through the app's own services; sessions (members signed in plainly, facilitators through
the real password + authenticator pages); and a websocket wrapper around the real ASGI
application.

Socket tests run with ``django_db(transaction=True)``: the consumer reads the database from
Channels' worker thread, so it only sees committed rows. Inside an ``async def`` test every
ORM call goes through ``run(...)``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
from dataclasses import dataclass, field
from html import unescape

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection, connections
from django.test import Client
from django_otp.oath import TOTP

from accounts.models import TOTPDevice, User
from groups import services as group_services
from groups.models import Group, Membership, Retention, Topic
from meetings import services as meeting_services
from meetings.models import Meeting, Message
from screening import services as screening_services
from screening.models import Application, QuestionKind
from supportgroups.asgi import application
from tests.database import events  # noqa: F401 - for the test modules
from tests.factories import CHEAP_PASSWORD_HASHERS
from tests.meetings.conftest import appoint, give_place, schedule  # the same set-up steps

PASSWORD = "lantern harbour quietly 42"
OWN_ORIGIN = b"http://127.0.0.1"
TWO_FACTOR_SET_UP = "/account/two-factor/set-up/"

CLOSE_NOT_ALLOWED = 4003
CLOSE_ROOM_CLOSED = 4004
CLOSE_MEMBERSHIP_CHANGED = 4005

RULES = [
    "What is shared here stays here.",
    "Speak from your own experience; no advice unless asked.",
    "Be kind: never mock or judge anyone.",
]

# What only the account knows: it must never reach another member or facilitator, except
# the phone and emergency contact through the audited break-glass reveal.
RIVER_PHONE = "+44 7700 900123"
RIVER_EMERGENCY = "Sam Okafor (sister), 07700 900456"


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


@pytest.fixture(autouse=True)
def _channel_layer_per_test(settings):
    """A fresh channel layer for every test, with no client-side Redis read timeout.

    Changing CHANNEL_LAYERS makes Channels build a new layer, so no connection or lock made
    on one test's event loop is reused on the next one's. The read timeout: channels_redis
    waits with a server-side BRPOP of 5 s while redis-py's default client-side
    socket_timeout is also 5 s, so a quiet socket dies with a TimeoutError after ~5 s and
    a refused socket takes 5 s to shut down (tests/meetings/conftest.py explains; the fix
    belongs in supportgroups/settings.py).
    """
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    config = layers["default"].get("CONFIG") or {}
    if "hosts" in config:
        config["hosts"] = [
            {**host, "socket_timeout": None}
            if isinstance(host, dict)
            else {"address": host, "socket_timeout": None}
            for host in config["hosts"]
        ]
    settings.CHANNEL_LAYERS = layers


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


def make_person(
    handle: str,
    *,
    staff: bool = False,
    email: str | None = None,
    email_verified: bool = True,
    phone: str | None = None,
    emergency_contact: str | None = None,
) -> User:
    user = User.objects.create_user(username=handle, password=PASSWORD, is_staff=staff)
    if email or phone or emergency_contact:
        if email:
            user.set_recovery_email(email)
            user.recovery_email_verified = email_verified
        user.phone = phone
        user.emergency_contact = emergency_contact
        user.save()
    return user


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
        "guidelines": RULES,
        "agreement_text": "I keep what is said here confidential.",
        "agreement_summary": "Members keep what is shared confidential.",
    }
    fields.update(overrides)
    return group_services.group_create(actor=actor, name=name, **fields)


_client_ids = iter(range(1, 10**9))


def post(meeting: Meeting, membership: Membership, body: str) -> Message:
    """A message in the room, through the same service the socket uses."""
    return meeting_services.message_post(
        meeting_id=meeting.pk,
        membership_id=membership.pk,
        client_id=f"test-msg-{next(_client_ids):08d}",
        body=body,
    ).message


def submitted_application(group: Group, applicant: User) -> Application:
    application = screening_services.application_start(group=group, applicant=applicant)
    answers = {}
    for question in application.questionnaire.questions.all():
        if question.kind == QuestionKind.YES_NO:
            answers[str(question.pk)] = "yes"
        elif question.kind == QuestionKind.SINGLE_CHOICE:
            answers[str(question.pk)] = question.choices[0]
        elif question.kind == QuestionKind.MULTIPLE_CHOICE:
            answers[str(question.pk)] = question.choices[:1]
        else:
            answers[str(question.pk)] = f"My answer to question {question.position}."
    return screening_services.application_save(
        application=application, answers=answers, submit=True
    )


def fresh(obj):  # noqa: ANN001, ANN201
    return type(obj).objects.get(pk=obj.pk)




# --- sessions ---------------------------------------------------------------------------------


def cookie_of(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def member_client(user: User) -> Client:
    """A signed-in session made by force_login (members need no second factor)."""
    client = Client()
    client.force_login(user)
    return client


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


def verified_client(user: User) -> Client:
    """Signed in through the login page and the authenticator-code page, as a person is."""
    device = totp_device(user)
    client = Client()
    response = client.post("/accounts/login/", {"login": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/accounts/login/two-factor/", response["Location"]
    response = client.post("/accounts/login/two-factor/", {"code": totp_code(device)})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] != "/accounts/login/two-factor/"
    return client


# --- the world most tests start from ----------------------------------------------------------


@dataclass
class World:
    admin: User  # staff, with a confirmed recovery email
    group: Group
    facilitator: Membership  # "Lantern": 2FA, confirmed recovery email
    river: Membership  # member A
    fern: Membership  # member B
    other_group: Group
    # Facilitator of the other group and a plain member ("Harbour") of this one.
    other_facilitator: Membership
    harbour: Membership
    stranger: Membership  # member of the other group only
    meeting: Meeting  # open now
    fern_message: Message  # seq 1, by Fern
    river_message: Message  # seq 2, by River

    @property
    def slug(self) -> str:
        return self.group.slug

    @property
    def path(self) -> str:
        return room_path(self.meeting)


def room_path(meeting: Meeting) -> str:
    return f"/ws/meetings/{meeting.pk}/"


def build_world(**group_overrides) -> World:
    admin = make_person("site-keeper", staff=True, email="keeper@example.org")
    totp_device(admin)
    group = make_group(admin, **group_overrides)
    lantern_user = make_person("fac-login-handle", email="lantern.private@example.org")
    totp_device(lantern_user)
    facilitator = appoint(group, lantern_user, "Lantern", actor=admin)
    river = give_place(
        group,
        make_person(
            "river-login-handle",
            email="river.private@example.org",
            phone=RIVER_PHONE,
            emergency_contact=RIVER_EMERGENCY,
        ),
        "River",
    )
    fern = give_place(group, make_person("fern-login-handle"), "Fern")
    other_group = make_group(admin, "Morning Recovery Circle")
    beacon_user = make_person("beacon-login-handle", email="beacon.private@example.org")
    totp_device(beacon_user)
    other_facilitator = appoint(other_group, beacon_user, "Beacon", actor=admin)
    harbour = give_place(group, beacon_user, "Harbour")
    stranger = give_place(other_group, make_person("stranger-login-handle"), "Stranger")
    meeting = schedule(group, lantern_user)
    fern_message = post(meeting, fern, "Honestly, you are all pathetic.")
    river_message = post(meeting, river, "That hurt to read.")
    return World(
        admin=admin,
        group=group,
        facilitator=facilitator,
        river=river,
        fern=fern,
        other_group=other_group,
        other_facilitator=other_facilitator,
        harbour=harbour,
        stranger=stranger,
        meeting=meeting,
        fern_message=fern_message,
        river_message=river_message,
    )


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.fixture
def fac(world) -> Client:
    """Lantern, 2FA-verified."""
    return verified_client(world.facilitator.user)


@pytest.fixture
def unverified_facilitator(world) -> Membership:
    """A facilitator of the group who has not set up 2FA yet."""
    return appoint(world.group, make_person("ember-login-handle"), "Ember", actor=world.admin)


# --- pages ------------------------------------------------------------------------------------


def html(response) -> str:  # noqa: ANN001
    return unescape(response.content.decode())


def text_of(response) -> str:  # noqa: ANN001
    """The page's visible text, tags dropped and whitespace collapsed."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()
    return re.sub(r" ([,.;:)])", r"\1", text)


def urls(world: World, *, report_id: int = 1, flag_id: int = 1) -> dict[str, str]:
    slug, member = world.slug, world.fern.pk
    return {
        "dashboard": "/moderation/",
        "group": f"/moderation/{slug}/",
        "member": f"/moderation/{slug}/members/{member}/",
        "reveal": f"/moderation/{slug}/members/{member}/reveal/",
        "report": f"/moderation/{slug}/reports/{report_id}/",
        "handle_flag": f"/moderation/{slug}/flags/{flag_id}/handled/",
    }


# --- sockets ----------------------------------------------------------------------------------


def socket_headers(cookie: str | None, *, origin: bytes = OWN_ORIGIN) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return headers


@dataclass
class Socket:
    """A WebsocketCommunicator on the real application that is always cleaned up and
    remembers every frame it received."""

    path: str
    cookie: str | None
    connected: bool | None = None
    code: int | None = None
    frames: list[dict] = field(default_factory=list)
    hello: dict | None = None

    async def __aenter__(self) -> Socket:
        self.communicator = WebsocketCommunicator(
            application, self.path, headers=socket_headers(self.cookie)
        )
        self.connected, self.code = await self.communicator.connect(timeout=5)
        if self.connected:
            self.hello = await self.receive()
            assert self.hello["type"] == "hello", self.hello
        return self

    async def __aexit__(self, *exc_info) -> None:
        with contextlib.suppress(Exception):
            await self.communicator.disconnect(timeout=2)

    async def send(self, frame) -> None:  # noqa: ANN001
        await self.communicator.send_json_to(frame)

    async def receive(self, timeout: float = 1) -> dict:
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

    async def expect_ignoring(self, kind: str, ignore: tuple[str, ...], timeout: float = 1) -> dict:
        """The next frame of this type, skipping presence updates and ``ignore`` types."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.receive(timeout=max(deadline - time.monotonic(), 0.01))
            if frame["type"] == "presence" or frame["type"] in ignore:
                continue
            assert frame["type"] == kind, frame
            return frame

    async def expect_error(self, code: str, timeout: float = 1) -> dict:
        frame = await self.expect("error", timeout)
        assert frame["code"] == code, frame
        assert frame["message"], frame
        return frame

    async def expect_close(self, code: int, timeout: float = 1) -> None:
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
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or await self.communicator.receive_nothing(timeout=left):
                return
            frame = await self.receive()
            assert frame["type"] == "presence", frame

    async def still_usable(self) -> None:
        await self.send({"type": "ping"})
        await self.expect("pong")

    async def post(self, body: str, client_id: str) -> None:
        await self.send({"type": "send", "client_id": client_id, "body": body})

    async def send_and_ack(self, body: str, client_id: str) -> dict:
        await self.post(body, client_id)
        deadline = time.monotonic() + 2
        while True:
            frame = await self.receive(timeout=max(deadline - time.monotonic(), 0.01))
            if frame["type"] == "ack":
                assert frame["client_id"] == client_id, frame
                return frame
            assert frame["type"] in ("presence", "message"), frame


async def member_cookie(membership: Membership) -> str:
    return await run(lambda: cookie_of(member_client(membership.user)))


async def facilitator_cookie(membership: Membership) -> str:
    return await run(lambda: cookie_of(verified_client(membership.user)))


# --- the database, raw ------------------------------------------------------------------------


def raw_rows(table: str) -> str:
    """Every column of every row of one table, as the database stores it."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {quote(table)}")
        return "\n".join(" | ".join(str(value) for value in row) for row in cursor.fetchall())
