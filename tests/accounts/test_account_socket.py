"""The account socket (/ws/account/): who may open it, and how signing out closes it.

Driven through the real ASGI application (origin validation, session auth, the 2FA rule)
with channels_redis on a real Redis, so every "signed out" notice really crosses Redis.
"""

import contextlib
import json
import time

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP

from accounts import services
from accounts.models import Session, TOTPDevice, User
from accounts.sessions import LAST_SEEN_KEY, STARTED_KEY
from supportgroups.asgi import application

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

PATH = "/ws/account/"
OWN_ORIGIN = b"http://127.0.0.1"
PASSWORD = "quiet harbour lantern 7"
CLOSE_NOT_ALLOWED = 4003
CLOSE_SIGNED_OUT = 4001


@pytest_asyncio.fixture(autouse=True)
async def _close_worker_connections():
    yield
    # ORM calls from async code (ours and the consumer's) share one worker thread, whose
    # persistent connection (CONN_MAX_AGE) would otherwise keep the test database busy.
    await sync_to_async(connections.close_all)()


# --- building people and their sessions (sync: they use the ORM and the test client) ---


def make_person(username, *, staff=False, password=None):
    return User.objects.create_user(username=username, password=password, is_staff=staff)


def add_authenticator(user):
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def totp_code(device, *, offset=0):
    totp = TOTP(device.bin_key, step=TOTPDevice.STEP, digits=TOTPDevice.DIGITS)
    totp.time = time.time() + offset
    return f"{totp.token():06d}"


def signed_in_client(user):
    """A client with a session made by force_login: signed in, never OTP-verified."""
    client = Client()
    client.force_login(user)
    return client


def cookie_of(client):
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def client_with_cookie(value):
    """A second browser holding the same session (e.g. another tab)."""
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = value
    return client


def otp_verified_client(user, device):
    """Sign in as a person would: password, then the code at the second step."""
    client = Client()
    response = client.post(reverse("account_login"), {"login": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    assert response["Location"] == reverse("account_two_factor_login")
    response = client.post(reverse("account_two_factor_login"), {"code": totp_code(device)})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == reverse("groups:mine")
    # The session really is verified: the privacy centre answers instead of redirecting.
    assert client.get(reverse("account_home")).status_code == 200
    return client


def age_session(client, *, started_ago, last_seen_ago):
    session = client.session
    now = time.time()
    session[STARTED_KEY] = now - started_ago
    session[LAST_SEEN_KEY] = now - last_seen_ago
    session.save()


# --- sockets ------------------------------------------------------------------------------


def headers(cookie=None, *, origin=OWN_ORIGIN):
    result = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if cookie is not None:
        result.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return result


class Socket:
    """A WebsocketCommunicator on the real application that always gets cleaned up."""

    def __init__(self, cookie=None, *, origin=OWN_ORIGIN):
        self.communicator = WebsocketCommunicator(
            application, PATH, headers=headers(cookie, origin=origin)
        )
        self.connected = None
        self.code = None
        self.refused = None

    async def __aenter__(self):
        self.connected, self.code = await self.communicator.connect(timeout=5)
        # A refused socket is accepted, told why, then closed: read as a refusal.
        if self.connected and not await self.communicator.receive_nothing(timeout=0.2):
            self.refused = await self.communicator.receive_json_from(timeout=1)
            assert self.refused["type"] == "refused", self.refused
            closing = await self.communicator.receive_output(timeout=1)
            assert closing["type"] == "websocket.close", closing
            self.connected, self.code = False, closing.get("code")
        return self

    async def __aexit__(self, *exc_info):
        # The consumer may already be gone (closed by the server); that is fine.
        with contextlib.suppress(Exception):
            await self.communicator.disconnect(timeout=2)

    async def expect_signed_out(self, *, within=1.0):
        started = time.monotonic()
        frame = await self.communicator.receive_json_from(timeout=within)
        assert frame["type"] == "signed_out", frame
        closing = await self.communicator.receive_output(
            timeout=max(within - (time.monotonic() - started), 0.05)
        )
        assert closing["type"] == "websocket.close", closing
        assert closing.get("code") == CLOSE_SIGNED_OUT, closing
        assert time.monotonic() - started <= within

    async def expect_still_open(self):
        """Nothing arrived, and the socket still answers."""
        assert await self.communicator.receive_nothing(timeout=0.3)
        await self.communicator.send_json_to({"type": "ping"})
        frame = await self.communicator.receive_json_from(timeout=1)
        assert frame["type"] == "error" and frame["code"] == "unexpected_message", frame


def run(function, *args, **kwargs):
    return database_sync_to_async(function)(*args, **kwargs)


# --- who may connect -------------------------------------------------------------------------


async def test_it_refuses_an_anonymous_visitor():
    async with Socket() as socket:
        assert socket.connected is False
        assert socket.code == CLOSE_NOT_ALLOWED
        # Told why first (a close before accepting reaches a browser as 1006).
        assert socket.refused["reason"] == "signed_out"
        assert socket.refused["message"] == "You are signed out. Sign in again to continue."


async def test_it_refuses_an_unknown_session_cookie():
    async with Socket("no-such-session-key") as socket:
        assert socket.connected is False
        assert socket.code == CLOSE_NOT_ALLOWED


async def test_it_refuses_another_origin_even_with_a_valid_session():
    member = await run(make_person, "quiet-otter")
    cookie = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(cookie, origin=b"http://evil.example") as socket:
        assert socket.connected is False

    # The same session from the app's own origin is fine: it was the origin that counted.
    async with Socket(cookie) as socket:
        assert socket.connected is True


async def test_it_accepts_a_member_without_two_factor():
    member = await run(make_person, "quiet-otter")
    cookie = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(cookie) as socket:
        assert socket.connected is True


async def test_it_refuses_an_admin_whose_session_is_not_two_factor_verified():
    admin = await run(make_person, "night-heron", staff=True)
    cookie = await run(lambda: cookie_of(signed_in_client(admin)))

    async with Socket(cookie) as socket:
        assert socket.connected is False
        assert socket.code == CLOSE_NOT_ALLOWED
        assert socket.refused["reason"] == "two_factor_required"
        assert "second sign-in step" in socket.refused["message"]


async def test_it_refuses_an_admin_with_an_authenticator_but_an_unverified_session():
    admin = await run(make_person, "night-heron", staff=True)
    await run(add_authenticator, admin)
    cookie = await run(lambda: cookie_of(signed_in_client(admin)))

    async with Socket(cookie) as socket:
        assert socket.connected is False
        assert socket.code == CLOSE_NOT_ALLOWED


async def test_it_refuses_a_member_with_two_factor_whose_session_is_not_verified():
    member = await run(make_person, "quiet-otter")
    await run(add_authenticator, member)
    cookie = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(cookie) as socket:
        assert socket.connected is False
        assert socket.code == CLOSE_NOT_ALLOWED


async def test_it_accepts_an_admin_after_the_second_sign_in_step():
    admin = await run(make_person, "night-heron", staff=True, password=PASSWORD)
    device = await run(add_authenticator, admin)
    cookie = await run(lambda: cookie_of(otp_verified_client(admin, device)))

    async with Socket(cookie) as socket:
        assert socket.connected is True


async def test_it_refuses_an_admin_verified_by_a_device_that_was_removed_since():
    admin = await run(make_person, "night-heron", staff=True, password=PASSWORD)
    device = await run(add_authenticator, admin)
    cookie = await run(lambda: cookie_of(otp_verified_client(admin, device)))
    await run(lambda: TOTPDevice.objects.filter(pk=device.pk).delete())

    async with Socket(cookie) as socket:
        assert socket.connected is False
        assert socket.code == CLOSE_NOT_ALLOWED


@pytest.mark.parametrize(
    ("started_ago", "last_seen_ago"),
    [
        pytest.param(60, settings.SESSION_IDLE_TIMEOUT + 60, id="idle"),
        pytest.param(settings.SESSION_ABSOLUTE_TIMEOUT + 60, 10, id="absolute"),
    ],
)
async def test_it_refuses_an_expired_session(started_ago, last_seen_ago, request):
    member = await run(make_person, "quiet-otter")

    def expired_cookie():
        client = signed_in_client(member)
        age_session(client, started_ago=started_ago, last_seen_ago=last_seen_ago)
        return cookie_of(client)

    cookie = await run(expired_cookie)

    async with Socket(cookie) as socket:
        assert socket.connected is False
        assert socket.code == CLOSE_NOT_ALLOWED
        assert socket.refused["reason"] == request.node.callspec.id
        assert "You were signed out" in socket.refused["message"]
    # Ended there and then, as a page would have ended it.
    assert not await run(lambda: Session.objects.filter(session_key=cookie).exists())


async def test_it_accepts_a_session_that_is_within_both_timeouts():
    member = await run(make_person, "quiet-otter")

    def fresh_cookie():
        client = signed_in_client(member)
        age_session(client, started_ago=60, last_seen_ago=30)
        return cookie_of(client)

    cookie = await run(fresh_cookie)

    async with Socket(cookie) as socket:
        assert socket.connected is True


# --- signing out closes open sockets -----------------------------------------------------------


async def test_ending_all_sessions_closes_the_socket_within_a_second():
    member = await run(make_person, "quiet-otter")
    cookie = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(cookie) as socket:
        assert socket.connected is True
        ended = await run(services.sessions_end, user=member, keep_current=False)
        assert ended == 1
        await socket.expect_signed_out()


async def test_signing_out_in_another_tab_closes_the_socket_within_a_second():
    member = await run(make_person, "quiet-otter")
    cookie = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(cookie) as socket:
        assert socket.connected is True
        response = await run(lambda: client_with_cookie(cookie).post(reverse("account_logout")))
        assert response.status_code == 302
        await socket.expect_signed_out()

    # And the session is really over: it cannot open a new socket.
    async with Socket(cookie) as socket:
        assert socket.connected is False


async def test_signing_out_everywhere_closes_the_sockets_of_every_session():
    member = await run(make_person, "quiet-otter")
    here = await run(lambda: cookie_of(signed_in_client(member)))
    elsewhere = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(here) as this_tab, Socket(elsewhere) as other_device:
        assert this_tab.connected and other_device.connected
        response = await run(
            lambda: client_with_cookie(here).post(reverse("account_sessions"), {"end": "all"})
        )
        assert response.status_code == 302
        await this_tab.expect_signed_out()
        await other_device.expect_signed_out()


async def test_signing_out_a_verified_admin_closes_their_socket():
    admin = await run(make_person, "night-heron", staff=True, password=PASSWORD)
    device = await run(add_authenticator, admin)
    cookie = await run(lambda: cookie_of(otp_verified_client(admin, device)))

    async with Socket(cookie) as socket:
        assert socket.connected is True
        response = await run(lambda: client_with_cookie(cookie).post(reverse("account_logout")))
        assert response.status_code == 302
        await socket.expect_signed_out()


async def test_sign_out_everywhere_else_closes_other_sockets_but_keeps_this_one():
    member = await run(make_person, "quiet-otter")
    kept_client = await run(signed_in_client, member)
    kept = await run(cookie_of, kept_client)
    other = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(kept) as kept_socket, Socket(other) as other_socket:
        assert kept_socket.connected and other_socket.connected
        response = await run(
            lambda: kept_client.post(reverse("account_sessions"), {"end": "others"})
        )
        assert response.status_code == 302
        assert response["Location"] == reverse("account_sessions")

        await other_socket.expect_signed_out()
        await kept_socket.expect_still_open()

    # The kept session still opens sockets; the ended one cannot.
    async with Socket(kept) as socket:
        assert socket.connected is True
    async with Socket(other) as socket:
        assert socket.connected is False


async def test_it_ignores_sign_outs_of_other_people():
    member = await run(make_person, "quiet-otter")
    someone_else = await run(make_person, "paper-crane")
    cookie = await run(lambda: cookie_of(signed_in_client(member)))
    await run(lambda: cookie_of(signed_in_client(someone_else)))

    async with Socket(cookie) as socket:
        assert socket.connected is True
        await run(services.sessions_end, user=someone_else, keep_current=False)
        await socket.expect_still_open()


async def test_ending_one_named_session_closes_only_its_socket():
    member = await run(make_person, "quiet-otter")
    kept_client = await run(signed_in_client, member)
    kept = await run(cookie_of, kept_client)
    other = await run(lambda: cookie_of(signed_in_client(member)))

    def end_other_by_public_id():
        from accounts.models import session_public_id

        response = kept_client.post(reverse("account_sessions"), {"end": session_public_id(other)})
        assert response.status_code == 302

    async with Socket(kept) as kept_socket, Socket(other) as other_socket:
        assert kept_socket.connected and other_socket.connected
        await run(end_other_by_public_id)
        await other_socket.expect_signed_out()
        await kept_socket.expect_still_open()


# --- what the socket accepts from the browser ---------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param({"type": "ping"}, id="unknown-type"),
        pytest.param({"type": "signed_out"}, id="server-only-type"),
        pytest.param([1, 2, 3], id="not-an-object"),
    ],
)
async def test_it_answers_any_json_message_with_an_error_and_stays_open(frame):
    member = await run(make_person, "quiet-otter")
    cookie = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(cookie) as socket:
        assert socket.connected is True
        await socket.communicator.send_json_to(frame)
        reply = await socket.communicator.receive_json_from(timeout=1)
        assert reply["type"] == "error"
        assert reply["code"] == "unexpected_message"
        assert reply["message"]
        await socket.expect_still_open()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"text_data": "this is not json"}, id="bad-json"),
        pytest.param({"bytes_data": b"\x00\x01binary"}, id="binary-frame"),
    ],
)
async def test_it_answers_a_frame_that_is_not_json_with_an_error_and_stays_open(raw):
    member = await run(make_person, "quiet-otter")
    cookie = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(cookie) as socket:
        assert socket.connected is True
        await socket.communicator.send_to(**raw)
        reply = json.loads(await socket.communicator.receive_from(timeout=1))
        assert reply["type"] == "error"
        assert isinstance(reply["code"], str) and reply["code"]
        await socket.expect_still_open()
