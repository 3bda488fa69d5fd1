"""A socket's upkeep (its session checks, the room's presence heartbeats) runs on a
database thread of its own (accounts.consumers.upkeep_sync_to_async), so it never queues
behind the chat's sends on the process's shared database thread, nor they behind it."""

from __future__ import annotations

import asyncio
import time

import pytest

from accounts.sessions import LAST_SEEN_KEY
from meetings.models import Presence
from tests.meetings.conftest import Socket, cookie, run
from tests.meetings.test_group_commit import RoomHeldElsewhere, wait_for_lock_waiter
from tests.meetings.test_room_lasting import aged_cookie, session_data

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]


def presence_seen_at(meeting_id: int) -> list:
    return list(
        Presence.objects.filter(meeting_id=meeting_id)
        .order_by("seen_at")
        .values_list("seen_at", flat=True)
    )


async def test_a_heartbeat_is_answered_while_a_send_of_the_same_process_waits_for_its_room(
    world,
):
    fern_cookie = await run(aged_cookie, world.fern.user, started_ago=600, last_seen_ago=600)
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, fern_cookie) as fern,
    ):
        await river.send_and_ack("Hello", "upkeep-0001")
        before = await run(presence_seen_at, world.meeting.pk)
        # Another connection holds the room: river's next send waits for it on the
        # process's database thread.
        holder = RoomHeldElsewhere(world.meeting)
        try:
            await asyncio.to_thread(holder.locked.wait, 10)
            await river.post("Waits for the room", "upkeep-0002")
            await asyncio.to_thread(wait_for_lock_waiter, world.meeting)

            # Fern's heartbeat checks her session, counts as activity and refreshes her
            # presence meanwhile.
            await fern.send({"type": "ping", "visible": True})
            await fern.expect_ignoring("pong", ("message", "presence"), timeout=5)
            assert time.time() - (await run(session_data, fern_cookie))[LAST_SEEN_KEY] < 60
            assert await run(presence_seen_at, world.meeting.pk) != before
        finally:
            await asyncio.to_thread(holder.release)
        ack = await river.expect_ignoring("ack", ("message", "presence"), timeout=5)
        assert (ack["client_id"], ack["seq"]) == ("upkeep-0002", 2)
