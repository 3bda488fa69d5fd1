"""Broadcasts after commit: in commit order, from the server's worker thread (as consumers
and views run services) and from plain sync code (commands); a rolled-back change is never
broadcast."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from supportgroups.realtime import broadcast_on_commit

pytestmark = pytest.mark.django_db(transaction=True)

GROUP = "test.realtime"


def commit_each(numbers, *, roll_back=()):
    """One transaction per number, each broadcasting it on commit, as services do."""
    for n in numbers:
        try:
            with transaction.atomic():
                broadcast_on_commit(GROUP, {"type": "test.event", "n": n})
                if n in roll_back:
                    raise RuntimeError("rolled back")
        except RuntimeError:
            pass


async def received(layer, channel, count):
    return [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(count)]


@pytest.mark.asyncio
async def test_broadcasts_from_the_worker_thread_arrive_in_commit_order():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    try:
        await database_sync_to_async(commit_each)(range(40), roll_back={7, 30})
        expected = [n for n in range(40) if n not in (7, 30)]
        assert await received(layer, channel, len(expected)) == expected
        with pytest.raises(asyncio.TimeoutError):  # and nothing from the rolled-back ones
            await asyncio.wait_for(layer.receive(channel), 0.3)
    finally:
        await layer.group_discard(GROUP, channel)


def test_broadcasts_from_plain_sync_code_are_sent_before_on_commit_returns():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(GROUP, channel)
    try:
        commit_each([1, 2, 3], roll_back={2})
        assert async_to_sync(received)(layer, channel, 2) == [1, 3]
    finally:
        async_to_sync(layer.group_discard)(GROUP, channel)


def test_each_named_sender_sends_the_event_its_consumers_read():
    """The event types and keys the consumers read (accounts/consumers.py, the room). All
    go through broadcast_on_commit, so the tests above hold for them too."""
    from supportgroups import realtime

    message = {
        "seq": 3,
        "client_id": "client-0001",
        "author_membership": 7,
        "author": "River",
        "body": "Hello",
        "hidden": False,
        "sent_at": "2026-01-01T19:00:00+00:00",
    }
    expected = [
        (
            lambda: realtime.send_account_closed(user_id=5, reason="signed_out", session_ids=None),
            "user.5",
            {"type": "account.closed", "reason": "signed_out", "sessions": None},
        ),
        (
            lambda: realtime.send_membership_changed(user_id=5, group_id=2),
            "user.5",
            {"type": "group.membership_changed", "group": 2},
        ),
        (
            lambda: realtime.send_agreement_changed(user_id=5, group_id=2),
            "user.5",
            {"type": "group.agreement_changed", "group": 2},
        ),
        (
            lambda: realtime.send_room_message(meeting_id=9, message=message),
            "meeting.9",
            {"type": "room.message", **message},
        ),
        (
            lambda: realtime.send_room_message_changed(
                meeting_id=9, message={**message, "hidden": True, "body": None}
            ),
            "meeting.9",
            {"type": "room.message_changed", **message, "hidden": True, "body": None},
        ),
        (
            lambda: realtime.send_room_announcement(meeting_id=9, text="Welcome"),
            "meeting.9",
            {"type": "room.announcement", "text": "Welcome"},
        ),
        (
            lambda: realtime.send_room_presence(meeting_id=9, present=["River"]),
            "meeting.9",
            {"type": "room.presence", "present": ["River"]},
        ),
        (
            lambda: realtime.send_room_closed(meeting_id=9),
            "meeting.9",
            {"type": "room.closed", "reason": "meeting_closed"},
        ),
    ]
    layer = get_channel_layer()
    for send, group, event in expected:
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(group, channel)
        try:
            with transaction.atomic():
                send()
            assert async_to_sync(layer.receive)(channel) == event
        finally:
            async_to_sync(layer.group_discard)(group, channel)


@pytest.mark.asyncio
async def test_a_burst_of_broadcasts_wider_than_redis_py_s_default_pool_all_go_out():
    # redis-py's pool refuses a command at once when 100 of its connections are in use
    # (MaxConnectionsError), and a broadcast is only logged when it fails: a burst (a
    # meeting's members all joining, a busy room on a busy box) lost live messages.
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)  # (a layer with the current settings)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    outcomes = await asyncio.gather(
        *(layer.group_send(GROUP, {"type": "test.event", "n": n}) for n in range(250)),
        return_exceptions=True,
    )
    assert [o for o in outcomes if o is not None] == []
    assert sorted(await received(layer, channel, 250)) == list(range(250))
