"""Meetings that last (issue 17): refusals reach the client in words, activity on the room
socket keeps its session alive by the pages' rules, a session that ends (by sign-out or by
timeout) ends its sockets and stores nothing more, long rooms open on their latest
messages, and the socket routes and origins that are not the app's are refused quietly."""

import logging
import time
from datetime import timedelta

import pytest
from channels.db import DatabaseSyncToAsync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import dateformat, timezone

from accounts.models import Session
from accounts.sessions import LAST_SEEN_KEY, STARTED_KEY
from audit.events import Action
from groups import services as group_services
from groups.models import Membership, Status
from meetings.models import Meeting, Message, Presence
from supportgroups.asgi import application
from supportgroups.realtime import user_group_name
from tests.meetings.conftest import (
    CLOSE_NOT_ALLOWED,
    CLOSE_SIGNED_OUT,
    Socket,
    cookie,
    events,
    run,
    session_cookie,
    set_status,
)
from tests.sockets import socket_headers

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

MINUTE = 60


# --- helpers --------------------------------------------------------------------------------


def session_of(cookie_value: str):
    return Session.objects.filter(session_key=cookie_value).first()


def session_data(cookie_value: str) -> dict:
    row = Session.objects.get(session_key=cookie_value)
    return row.get_session_store_class()(session_key=cookie_value).decode(row.session_data)


def age_session(cookie_value: str, *, started_ago: float, last_seen_ago: float) -> None:
    """What time passing does to a session, without touching the clock (as the sessions
    tests do): its start and its last activity move into the past."""
    store = Session.get_session_store_class()(session_key=cookie_value)
    now = time.time()
    store[STARTED_KEY] = now - started_ago
    store[LAST_SEEN_KEY] = now - last_seen_ago
    store.save()


def aged_cookie(user, *, started_ago: float, last_seen_ago: float) -> str:
    value = session_cookie(user)
    age_session(value, started_ago=started_ago, last_seen_ago=last_seen_ago)
    return value


def seed_messages(meeting: Meeting, author, total: int) -> None:
    Message.objects.bulk_create(
        Message(
            meeting=meeting,
            seq=n,
            client_id=f"seeded-{n:06d}",
            author=author,
            body=f"seeded {n}",
        )
        for n in range(1, total + 1)
    )
    Meeting.objects.filter(pk=meeting.pk).update(last_seq=total)


# --- refusals are told, in words, and then closed ----------------------------------------------


async def test_a_signed_out_visitor_is_told_why_and_closed_with_4003(world):
    async with Socket(world.path, None) as visitor:
        assert (visitor.connected, visitor.code) == (False, CLOSE_NOT_ALLOWED)
        assert visitor.refused["reason"] == "signed_out"
        assert "Sign in again" in visitor.refused["message"]


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ("suspended", "suspended", "suspended from this group's meetings"),
        ("removed", "not_a_member", "not a member"),
        ("agreement", "agreement_required", "sign the group's current agreement"),
        ("closed", "meeting_closed", "not open"),
    ],
)
async def test_each_refusal_says_why_in_words(world, change, reason, words):
    def apply():
        if change == "suspended":
            set_status(world.river, Status.SUSPENDED, notify=False)
        elif change == "removed":
            set_status(world.river, Status.REMOVED, notify=False)
        elif change == "agreement":
            group_services.agreement_publish(
                group=world.group,
                actor=world.admin,
                text="A new agreement.",
                summary="Something changed.",
            )
        else:
            Meeting.objects.filter(pk=world.meeting.pk).update(closed_at=world.meeting.starts_at)

    await run(apply)
    async with Socket(world.path, await cookie(world.river)) as river:
        assert (river.connected, river.code) == (False, CLOSE_NOT_ALLOWED)
        assert river.refused == {
            "type": "refused",
            "reason": reason,
            "message": river.refused["message"],
        }
        assert words in river.refused["message"]
        # Told before anything of the room: no hello, no presence.
        assert river.frames == [river.refused]


async def test_a_suspended_member_who_reconnects_is_told_until_when(world):
    until = timezone.now() + timedelta(days=2)

    def suspend():
        Membership.objects.filter(pk=world.river.pk).update(
            status=Status.SUSPENDED, suspended_until=until
        )

    await run(suspend)
    async with Socket(world.path, await cookie(world.river)) as river:
        assert river.refused["reason"] == "suspended"
        when = dateformat.format(timezone.localtime(until), "j M Y, H:i e")
        assert river.refused["message"] == (
            f"You are suspended from this group's meetings until {when}."
        )


async def test_a_meeting_that_does_not_exist_looks_like_one_of_another_group(world):
    async with Socket("/ws/meetings/999999/", await cookie(world.river)) as nowhere:
        assert nowhere.refused["reason"] == "not_a_member"
    async with Socket(world.path, await cookie(world.stranger)) as stranger:
        assert stranger.refused["reason"] == "not_a_member"


# --- activity on the socket is activity of the session -----------------------------------------


async def test_sending_a_message_refreshes_the_sessions_last_seen(world):
    value = await run(
        aged_cookie, world.river.user, started_ago=29 * MINUTE, last_seen_ago=29 * MINUTE
    )
    async with Socket(world.path, value) as river:
        await river.send_and_ack("Still here.", "lasting-0001")
    data = await run(session_data, value)
    assert time.time() - data[LAST_SEEN_KEY] < MINUTE
    row = await run(session_of, value)
    assert time.time() - row.last_seen.timestamp() < MINUTE


async def test_a_heartbeat_counts_only_while_the_page_is_visible(world):
    hidden = await run(aged_cookie, world.river.user, started_ago=600, last_seen_ago=600)
    visible = await run(aged_cookie, world.fern.user, started_ago=600, last_seen_ago=600)
    async with Socket(world.path, hidden) as river, Socket(world.path, visible) as fern:
        await river.send({"type": "ping", "visible": False})
        await river.expect("pong")
        await fern.send({"type": "ping", "visible": True})
        await fern.expect("pong")
    assert time.time() - (await run(session_data, hidden))[LAST_SEEN_KEY] > 590
    assert time.time() - (await run(session_data, visible))[LAST_SEEN_KEY] < MINUTE


async def test_a_message_is_stored_before_the_session_check_it_does_not_need_first(
    world, monkeypatch
):
    # A socket's first message: what the socket saw of its session at opening (last seen
    # 29 minutes ago, of 30) rules out a timeout, and the send's own transaction checks the
    # sign-in. So the session's clock check and "last seen" write come after the message
    # is stored, not as a trip to the database thread ahead of it.
    value = await run(aged_cookie, world.river.user, started_ago=600, last_seen_ago=29 * MINUTE)
    stored_at_check = []
    thread_handler = DatabaseSyncToAsync.thread_handler

    def watched(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if getattr(self.func, "__name__", "") in {"session_touch", "_session_touch"}:
            stored_at_check.append(Message.objects.filter(client_id="first-of-socket").exists())
        return thread_handler(self, *args, **kwargs)

    async with Socket(world.path, value) as river:
        monkeypatch.setattr(DatabaseSyncToAsync, "thread_handler", watched)
        await river.send_and_ack("My first words here.", "first-of-socket")
        await river.still_usable()  # (the check runs after the ack: wait for it)
        monkeypatch.undo()
    assert stored_at_check[0] is True
    assert time.time() - (await run(session_data, value))[LAST_SEEN_KEY] < MINUTE


async def test_a_heartbeat_is_one_trip_to_the_database_thread(world, monkeypatch):
    # That one thread runs all of a Daphne's database work in turn, chat sends included:
    # the session's check and the room's presence go there together, not one after the
    # other (a send arriving between them waited behind both).
    value = await run(aged_cookie, world.river.user, started_ago=600, last_seen_ago=600)
    async with Socket(world.path, value) as river:
        long_ago = timezone.now() - timedelta(minutes=1)
        await run(lambda: Presence.objects.update(seen_at=long_ago))
        trips = []
        thread_handler = DatabaseSyncToAsync.thread_handler

        def counted(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            trips.append(self.func)
            return thread_handler(self, *args, **kwargs)

        monkeypatch.setattr(DatabaseSyncToAsync, "thread_handler", counted)
        await river.send({"type": "ping", "visible": True})
        await river.expect("pong")
        monkeypatch.undo()
        [presence] = await run(lambda: list(Presence.objects.filter(meeting=world.meeting)))
    assert len(trips) == 1, trips
    assert presence.seen_at > long_ago
    assert time.time() - (await run(session_data, value))[LAST_SEEN_KEY] < MINUTE


async def test_a_session_that_timed_out_under_an_open_socket_is_ended_at_its_next_heartbeat(
    world,
):
    value = await run(session_cookie, world.river.user)
    async with Socket(world.path, value) as river:
        await run(age_session, value, started_ago=40 * MINUTE, last_seen_ago=31 * MINUTE)
        await river.send({"type": "ping", "visible": False})
        signed_out = await river.expect("signed_out")
        assert signed_out["reason"] == "idle"
        await river.expect_close(CLOSE_SIGNED_OUT)
    assert await run(session_of, value) is None
    [ended] = await run(events, Action.LOGGED_OUT)
    assert (ended.actor_id, ended.subject_id) == (None, world.river.user_id)
    assert ended.extra == {"timeout": "idle"}


async def test_a_socket_whose_session_was_just_signed_out_stores_nothing(world):
    value = await run(session_cookie, world.river.user)
    async with Socket(world.path, value) as river:
        # A first message: the socket has just seen its session alive, so for the next
        # few seconds only the send path itself looks at the session again.
        await river.send_and_ack("Before signing out.", "before-signout-1")
        # Signed out elsewhere, and the notice to the sockets not here yet (the channel
        # layer is only a hint): the row is gone, the socket does not know.
        await run(lambda: Session.objects.filter(session_key=value).delete())
        await river.post("Sent just after signing out.", "after-signout-01")
        assert (await river.expect("signed_out"))["reason"] == "signed_out"
        await river.expect_close(CLOSE_SIGNED_OUT)
    stored = await run(lambda: list(Message.objects.filter(meeting=world.meeting)))
    assert [m.client_id for m in stored] == ["before-signout-1"]


async def test_a_message_sent_after_the_sessions_absolute_end_is_refused_at_once(world, settings):
    # The send path reads the session row for the clock's rules only every minute or so
    # (issue 22: a second transaction per message); the absolute end is known from the
    # session's start, so a message a moment past it is still refused.
    value = await run(aged_cookie, world.river.user, started_ago=2 * MINUTE, last_seen_ago=0)
    async with Socket(world.path, value) as river:
        await river.send_and_ack("Just in time.", "absolute-00001")
        settings.SESSION_ABSOLUTE_TIMEOUT = MINUTE  # (the session started two minutes ago)
        await river.post("A moment too late.", "absolute-00002")
        assert (await river.expect("signed_out"))["reason"] == "absolute"
        await river.expect_close(CLOSE_SIGNED_OUT)
    stored = await run(lambda: list(Message.objects.filter(meeting=world.meeting)))
    assert [m.client_id for m in stored] == ["absolute-00001"]
    assert await run(session_of, value) is None
    [ended] = await run(events, Action.LOGGED_OUT)
    assert ended.extra == {"timeout": "absolute"}


async def test_the_idle_timeout_seen_on_a_page_closes_the_sessions_sockets(world):
    """Issue 18, finding 5: expiry signs out like every other sign-out."""
    value = await run(session_cookie, world.river.user)
    other = await run(session_cookie, world.river.user)
    async with Socket(world.path, value) as river, Socket(world.path, other) as elsewhere:
        await run(age_session, value, started_ago=40 * MINUTE, last_seen_ago=31 * MINUTE)

        def load_a_page():
            client = Client()
            client.cookies[settings.SESSION_COOKIE_NAME] = value
            return client.get("/groups/mine/")

        response = await run(load_a_page)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
        assert (await river.expect("signed_out", timeout=2))["reason"] == "idle"
        await river.expect_close(CLOSE_SIGNED_OUT)
        # The person's other session is not this one: it stays.
        await elsewhere.still_usable()
    [ended] = await run(events, Action.LOGGED_OUT)
    assert ended.extra == {"timeout": "idle"}


# --- long rooms: the latest first, earlier ones on demand, replay in pages ---------------------


async def test_history_gives_the_latest_messages_first_and_earlier_ones_on_demand(world):
    await run(seed_messages, world.meeting, world.river, 130)
    async with Socket(world.path, await cookie(world.fern)) as fern:
        assert fern.hello["last_seq"] == 130
        await fern.send({"type": "history"})
        latest = await fern.expect("history")
        assert [m["seq"] for m in latest["messages"]] == list(range(81, 131))
        assert (latest["last_seq"], latest["more"], latest["before_seq"]) == (130, True, None)
        assert latest["messages"][0]["body"] == "seeded 81"
        assert latest["messages"][0]["type"] == "message"

        await fern.send({"type": "history", "before_seq": 81, "limit": 100})
        earlier = await fern.expect("history")
        assert [m["seq"] for m in earlier["messages"]] == list(range(1, 81))
        assert earlier["more"] is False


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "history", "limit": 0},
        {"type": "history", "limit": 101},
        {"type": "history", "limit": "50"},
        {"type": "history", "before_seq": -1},
        {"type": "history", "before_seq": 2**63},
        {"type": "history", "before_seq": True},
    ],
)
async def test_bad_history_requests_get_an_error_and_the_socket_survives(world, frame):
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send(frame)
        await river.expect_error("invalid_history")
        await river.still_usable()


async def test_history_is_refused_to_a_member_removed_meanwhile(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        # The notice of the removal is lost: the history request itself re-checks.
        await run(set_status, world.river, Status.REMOVED, notify=False)
        await river.send({"type": "history"})
        await river.expect_error("not_a_member")
        await river.expect_close(4005)
        assert river.of_type("history") == []


async def test_a_replay_pages_until_the_rooms_last_seq(world):
    await run(seed_messages, world.meeting, world.river, 1234)
    async with Socket(world.path, await cookie(world.fern)) as fern:
        after, seen, pages = 0, [], 0
        while True:
            await fern.send({"type": "resume", "after_seq": after})
            while (frame := await fern.receive(timeout=2))["type"] in ("message", "presence"):
                if frame["type"] == "message":
                    seen.append(frame["seq"])
            assert frame["type"] == "resumed", frame
            pages += 1
            after = frame["last_seq"]
            if not frame["more"]:
                break
        assert seen == list(range(1, 1235))
        assert after == fern.hello["last_seq"] == 1234
        assert pages == 3


# --- what is not the app's socket is refused quietly --------------------------------------------


@pytest.mark.parametrize("path", ["/ws/meetings/-1/", "/ws/nothing/", "/ws/meetings/abc/"])
async def test_an_unknown_socket_path_is_refused_quietly(world, path, caplog):
    value = await cookie(world.river)
    with caplog.at_level(logging.WARNING):
        communicator = WebsocketCommunicator(application, path, headers=socket_headers(value))
        connected, _ = await communicator.connect(timeout=5)
        assert connected is False
        await communicator.disconnect()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "origin",
    [b"http://127.0.0.1:8001", b"http://127.0.0.1:80a", b"http://localhost", b"null"],
)
async def test_an_origin_on_another_port_of_an_allowed_host_is_refused(world, origin):
    value = await cookie(world.river)
    for path in (world.path, "/ws/account/"):
        communicator = WebsocketCommunicator(
            application, path, headers=socket_headers(value, origin=origin)
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected is False, (path, origin)
        await communicator.disconnect()


async def test_the_same_origin_with_its_port_is_let_in(world):
    value = await cookie(world.river)
    headers = [
        (b"origin", b"http://127.0.0.1:8001"),
        (b"host", b"127.0.0.1:8001"),
        *socket_headers(value)[2:],
    ]
    communicator = WebsocketCommunicator(application, world.path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected is True
    assert (await communicator.receive_json_from(timeout=2))["type"] in ("hello", "presence")
    await communicator.disconnect()


# --- events a consumer does not handle are ignored ---------------------------------------------


async def test_an_event_no_consumer_handles_leaves_every_socket_open(world):
    """A new per-user event needs a handler only where it is acted on (issue 16)."""
    value = await cookie(world.river)
    account = WebsocketCommunicator(application, "/ws/account/", headers=socket_headers(value))
    assert (await account.connect(timeout=5))[0] is True
    try:
        async with Socket(world.path, value) as river:
            await get_channel_layer().group_send(
                user_group_name(world.river.user_id), {"type": "something.new", "x": 1}
            )
            await river.expect_quiet()
            await river.still_usable()
            await account.send_json_to({"type": "ping"})
            answer = await account.receive_json_from(timeout=1)
            assert answer["code"] == "unexpected_message", answer
    finally:
        await account.disconnect()
