"""Group commit for the chat's send path (issue 22).

A Daphne runs its database work on one thread (``database_sync_to_async``), and a
message's transaction holds that thread until its commit is on disk and its broadcast
handed to the channel layer. One message per transaction therefore made every send wait
behind every other of the process, one commit each. Here the sends that arrive while a
transaction is in flight wait together, and the next transaction stores all of them
(``meetings.services.messages_post``): one hop to the database thread, one commit (one
wait for the disk), one hand-over of the broadcasts, for the whole batch.

A quiet process waits for nothing: a send that finds no transaction in flight is stored
at once. A busy one gathers: when its sends have been arriving less than
``GATHER_SECONDS`` apart (a smoothed gap: one quiet second ends it at once), a send that
would make a batch of one waits one such gap for the next, so the two share the
transaction. Without it, batches were one send each even near the ceiling (a
transaction ends before the next send of its process arrives, about 8 ms later at 240
messages/s), and every message paid its own hop, statements and commit; with it,
commits per message fell from 1.13 to 0.72 at 240/s, the box's work per message by a
sixth, and the p99 too (the README's Performance section). The wait is at most
``GATHER_SECONDS`` and only under load; at a meeting's pace (a message every few
seconds per room, a few dozen a second per process) the gap is far longer and nothing
waits. Each send keeps its own outcome (its ack, or its refusal), known only after the
commit.

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

# Busy: sends arrive less than this far apart (smoothed), so a batch of one waits one gap
# for the next before its transaction (see above).
GATHER_SECONDS = 0.010
# The smoothing: each new gap moves the smoothed one by this share of the difference;
# a gap counts as at most a second, so one quiet second ends the gathering at once.
_GAP_WEIGHT = 1 / 8
_LONGEST_GAP = 1.0


class GroupCommit:
    """The sends of one event loop (one Daphne process) waiting for their transaction."""

    def __init__(self) -> None:
        self.waiting: list[tuple[services.MessageSend, asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None
        # The last batch's broadcast (the next one's waits for it).
        self.broadcasting: asyncio.Task | None = None
        # Between this process's sends, smoothed (seconds); a new process is quiet.
        self.gap = _LONGEST_GAP
        self.last_arrival: float | None = None

    def arrived(self, now: float) -> None:
        """A send arrived at ``now`` (the event loop's clock)."""
        if self.last_arrival is not None:
            gap = min(now - self.last_arrival, _LONGEST_GAP)
            self.gap += (gap - self.gap) * _GAP_WEIGHT
        self.last_arrival = now

    def gathering(self) -> bool:
        """Whether sends arrive so close together that a batch of one waits for the next."""
        return self.gap < GATHER_SECONDS

    async def post(self, send: services.MessageSend) -> services.PostedMessage:
        """Store ``send`` in the next transaction; its PostedMessage once committed, or
        the RoomError that refused it."""
        loop = asyncio.get_running_loop()
        self.arrived(loop.time())
        future = loop.create_future()
        # Not waiting for a room another process holds: see services.messages_post.
        self.waiting.append((dataclasses.replace(send, wait_for_room=False), future))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self.waiting:
            if len(self.waiting) == 1 and self.gathering():
                try:
                    await asyncio.sleep(self.gap)
                except BaseException:
                    self._give_up([])
                    raise
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
                self._give_up(batch)
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

    def _give_up(self, batch: list[tuple[services.MessageSend, asyncio.Future]]) -> None:
        # Cancelled (the process is stopping): no send of the batch, nor of those queued
        # behind it, may wait forever. Whether the batch was stored is unknown;
        # unacknowledged, each stays in its client's outbox and is sent again after the
        # reconnect (a stored one is then acked as a duplicate).
        for _, future in batch + self.waiting:
            future.cancel()
        self.waiting.clear()


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
