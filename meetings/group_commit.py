"""Group commit for the chat's send path (issue 22).

A Daphne runs its database work on one thread (``database_sync_to_async``), and a
message's transaction holds that thread until its commit is on disk and its broadcast
handed to the channel layer. One message per transaction therefore made every send wait
behind every other of the process, one commit each. Here the sends that arrive while a
transaction is in flight wait together, and the next transaction stores all of them
(``meetings.services.messages_post``): one hop to the database thread, one commit (one
wait for the disk), one hand-over of the broadcasts, for the whole batch.

Nothing waits on a timer: a send that finds no transaction in flight is stored at once,
so a quiet room pays nothing for this, and under load the batches grow by themselves.
Each send keeps its own outcome (its ack, or its refusal), known only after the commit.

The batch's broadcasts are sent from the event loop, not from the database thread: the
transaction runs inside ``realtime.broadcasts_handed_back``, so its on-commit callbacks
(run only if it commits) hand the events back with its outcomes, and the flusher sends
them (``realtime.broadcast``) while the database thread already stores the next batch.
Sending them from the database thread made it wait, per batch, for a turn of the event
loop and for Redis (29% of its time per message before the group commit, 10-14% of its
samples with it, in the README's profiles). Each batch's broadcast
waits for the one before it, so a room's messages still go out in seq order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from typing import Any

from channels.db import database_sync_to_async
from django.db import DataError, IntegrityError

from meetings import services
from supportgroups import realtime

# At most this many sends in one transaction: the rest go in the next one. (Its row locks
# of the rooms and sessions it stores for are held until its commit.)
MAX_BATCH = 64


class GroupCommit:
    """The sends of one event loop (one Daphne process) waiting for their transaction."""

    def __init__(self) -> None:
        self.waiting: list[tuple[services.MessageSend, asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None
        # The last batch's broadcast (the next one's waits for it).
        self.broadcasting: asyncio.Task | None = None

    async def post(self, send: services.MessageSend) -> services.PostedMessage:
        """Store ``send`` in the next transaction; its PostedMessage once committed, or
        the RoomError that refused it."""
        future = asyncio.get_running_loop().create_future()
        # Not waiting for a room another process holds: see services.messages_post.
        self.waiting.append((dataclasses.replace(send, wait_for_room=False), future))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self.waiting:
            batch = self.waiting[:MAX_BATCH]
            del self.waiting[:MAX_BATCH]
            try:
                outcomes, events = await database_sync_to_async(_store)([send for send, _ in batch])
            except (DataError, IntegrityError) as error:
                if len(batch) == 1:
                    outcomes, events = [error], {}
                else:
                    # One send's value the database cannot store, or a row it names gone
                    # meanwhile, fails the batch's one transaction: each is stored again
                    # alone, so the error is only the cause's. (Not for the database
                    # being away or a timeout: every send would meet it again, one after
                    # another, while the sends behind them wait.)
                    outcomes, events = await _store_one_by_one([send for send, _ in batch])
            except Exception as error:  # noqa: BLE001 - the commit failed: every send's error
                outcomes, events = [error] * len(batch), {}
            except BaseException:
                # Cancelled (the process is stopping): no send of the batch, nor of those
                # queued behind it, may wait forever. Whether the batch was stored is
                # unknown; unacknowledged, each stays in its client's outbox and is sent
                # again after the reconnect (a stored one is then acked as a duplicate).
                for _, future in batch + self.waiting:
                    future.cancel()
                self.waiting.clear()
                raise
            if events:
                self.broadcasting = asyncio.create_task(_broadcast_after(self.broadcasting, events))
            busy_rooms = []
            for (send, future), outcome in zip(batch, outcomes, strict=True):
                if outcome is None:
                    # Its room was held by another process's transaction: first in the
                    # next transaction, which waits for the room.
                    busy_rooms.append((dataclasses.replace(send, wait_for_room=True), future))
                    continue
                if future.done():  # its socket went away meanwhile (the send was stored)
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
            self.waiting[:0] = busy_rooms


def _store(
    sends: list[services.MessageSend],
) -> tuple[list[services.PostedMessage | Exception | None], dict[str, list[dict[str, Any]]]]:
    """On the database thread: the batch's transaction, and the broadcasts of its commit
    (none if it rolled back), for the event loop to send."""
    with realtime.broadcasts_handed_back() as handed_back:
        outcomes = services.messages_post(sends=sends)
    return outcomes, handed_back.events


async def _store_one_by_one(
    sends: list[services.MessageSend],
) -> tuple[list[services.PostedMessage | Exception | None], dict[str, list[dict[str, Any]]]]:
    outcomes: list[services.PostedMessage | Exception | None] = []
    events: dict[str, list[dict[str, Any]]] = {}
    for send in sends:  # (in the batch's order: each room's sends in their order of arrival)
        try:
            (outcome,), stored = await database_sync_to_async(_store)([send])
        except Exception as error:  # noqa: BLE001 - this send's own outcome
            outcome, stored = error, {}
        outcomes.append(outcome)
        for group, group_events in stored.items():
            events.setdefault(group, []).extend(group_events)
    return outcomes, events


async def _broadcast_after(
    previous: asyncio.Task | None, events: dict[str, list[dict[str, Any]]]
) -> None:
    if previous is not None:
        await asyncio.wait([previous])  # (done or cancelled: either way, this one's turn)
    await realtime.broadcast(events)


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommit] = (
    weakref.WeakKeyDictionary()
)


async def message_post(send: services.MessageSend) -> services.PostedMessage:
    """``services.message_post`` for a consumer: stored with the other sends of this
    process that wait for the same transaction."""
    loop = asyncio.get_running_loop()
    group = _per_loop.get(loop)
    if group is None:
        group = _per_loop[loop] = GroupCommit()
    return await group.post(send)
