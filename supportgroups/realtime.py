"""Every socket event, one named sender each, sent only after the change is committed.

The channel layer is a delivery hint (at most once); the database is the truth. So each
sender queues its ``group_send`` with ``transaction.on_commit`` and never describes a
change that was rolled back. A new event is a new sender here plus a handler in the
consumers that care (the others ignore it); the ``type`` strings and payload keys below
are what the consumers read.

Where the broadcasts are sent from: by default the on-commit callback sends them itself
(``async_to_sync``: on a Daphne's database thread that thread then waits for a turn of
the event loop and for Redis). A caller that runs the transaction from an event loop may
instead take them back (``broadcasts_handed_back``): the callbacks, still run only on
commit, then hand their events to it, and it sends them on its loop (``broadcast``). The
chat's group commit does this (meetings/group_commit.py), so the database thread is free
for the next batch while a batch's messages go out. Either way nothing is broadcast
before its commit, and nothing for a change rolled back.

Two kinds of channel-layer group:
- ``user.<id>``: every socket of one person (the account socket and their rooms);
- ``meeting.<id>``: every socket in one meeting's room;
- ``board.<group id>``: every socket open on one group's board;
- ``e2ee_rooms.<group id>``: every socket in an end-to-end encrypted room of one group
  (a change of a member's place changes who may hold the rooms' keys);
- ``device.<meeting id>.<device id>``: the sockets of one E2EE device in one room.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any, NotRequired, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def user_group_name(user_id: int) -> str:
    """Every socket of a user joins this group, so account changes reach all of them."""
    return f"user.{user_id}"


def room_group_name(meeting_id: int) -> str:
    """Every socket in a meeting's room joins this group."""
    return f"meeting.{meeting_id}"


def e2ee_rooms_group_name(group_id: int) -> str:
    """Every socket in an end-to-end encrypted room of a group joins this group."""
    return f"e2ee_rooms.{group_id}"


def device_group_name(meeting_id: int, device_id: str) -> str:
    """The sockets of one E2EE device in one meeting's room."""
    return f"device.{meeting_id}.{device_id}"


def board_group_name(group_id: int) -> str:
    """Every socket open on a group's board joins this group."""
    return f"board.{group_id}"


class MessageEvent(TypedDict):
    """A chat message as it travels to sockets (and is replayed on resume)."""

    seq: int
    client_id: str
    author_membership: int | None
    author: str
    body: str | None
    hidden: bool
    sent_at: str
    # E2EE rooms only: what the sender's browser sent (base64), None once hidden.
    e2ee: NotRequired[dict[str, Any] | None]


# --- to one person's sockets ------------------------------------------------------------


def send_account_closed(*, user_id: int, reason: str, session_ids: list[str] | None) -> None:
    """Close this person's sockets (sign-out, password change, account deleted, ...).

    ``session_ids`` (public ids of ended sessions) limits it to sockets opened by those
    sessions; None means every socket of the person.
    """
    broadcast_on_commit(
        user_group_name(user_id),
        {"type": "account.closed", "reason": reason, "sessions": session_ids},
    )


def send_membership_changed(*, user_id: int, group_id: int) -> None:
    """Muted, suspended, removed, reinstated, left, renamed, role changed: the person's
    rooms in that group look again, and so does every E2EE room of the group (whose
    devices may hold its keys has changed)."""
    broadcast_on_commit(
        user_group_name(user_id), {"type": "group.membership_changed", "group": group_id}
    )
    send_group_devices_changed(group_id=group_id)


def send_group_devices_changed(*, group_id: int) -> None:
    """Every E2EE room of the group sends its sockets the list of devices again."""
    broadcast_on_commit(e2ee_rooms_group_name(group_id), room_devices_event())


def send_agreement_changed(*, user_id: int, group_id: int) -> None:
    """A new agreement version: the person's rooms in that group close until they sign."""
    broadcast_on_commit(
        user_group_name(user_id), {"type": "group.agreement_changed", "group": group_id}
    )


def send_account_notice(*, user_id: int, text: str, url: str) -> None:
    """Something for the person to read on one of their own pages (a request for consent,
    information shared about them): shown on whatever page they have open, with a link.
    ``text`` must name no group and nothing shared (it may be read over a shoulder)."""
    broadcast_on_commit(
        user_group_name(user_id), {"type": "account.notice", "text": text, "url": url}
    )


# --- to everyone in a meeting's room ----------------------------------------------------


def send_room_message(*, meeting_id: int, message: MessageEvent) -> None:
    broadcast_on_commit(room_group_name(meeting_id), {"type": "room.message", **message})


def send_room_messages(*, messages: list[tuple[int, MessageEvent]]) -> None:
    """Several new messages, perhaps of several rooms (``(meeting id, message)``, each
    room's in seq order): what ``send_room_message`` sends for each, handed to the channel
    layer in one go after the commit that stored them all (the chat's group commit), each
    room's in the order given, the rooms side by side."""
    by_room: dict[str, list[dict[str, Any]]] = {}
    for meeting_id, message in messages:
        by_room.setdefault(room_group_name(meeting_id), []).append(
            {"type": "room.message", **message}
        )
    _broadcast_groups_on_commit(by_room)


def send_room_message_changed(*, meeting_id: int, message: MessageEvent) -> None:
    """A message was hidden (its body is then None)."""
    broadcast_on_commit(room_group_name(meeting_id), {"type": "room.message_changed", **message})


def send_room_announcement(*, meeting_id: int, text: str) -> None:
    broadcast_on_commit(room_group_name(meeting_id), {"type": "room.announcement", "text": text})


def send_room_presence(*, meeting_id: int, present: list[str]) -> None:
    """Who is in the room now (pseudonyms)."""
    broadcast_on_commit(room_group_name(meeting_id), room_presence_event(present))


def room_presence_event(present: list[str]) -> dict[str, Any]:
    """The presence event itself, for a consumer that sends it from its own event loop
    (a socket leaving: there is no transaction to wait for)."""
    return {"type": "room.presence", "present": present}


def send_room_devices_changed(*, meeting_id: int) -> None:
    """A device was registered, admitted, retired, came or went: the room's sockets read
    the list of devices again (from the database, so no key travels through here)."""
    broadcast_on_commit(room_group_name(meeting_id), room_devices_event())


def room_devices_event() -> dict[str, Any]:
    """The devices event itself (also sent by a consumer whose socket leaves)."""
    return {"type": "room.devices_changed"}


def send_device_keys(*, meeting_id: int, device_id: str, shares: list[dict[str, Any]]) -> None:
    """Wrapped chain keys addressed to one device (only that device's key opens them)."""
    broadcast_on_commit(
        device_group_name(meeting_id, device_id), {"type": "device.keys", "shares": shares}
    )


def send_device_key_request(
    *, meeting_id: int, device_id: str, requester_device: str, epoch: int
) -> None:
    """Another device of the room asks this sender device for the chain of an epoch."""
    broadcast_on_commit(
        device_group_name(meeting_id, device_id),
        {"type": "device.key_request", "requester_device": requester_device, "epoch": epoch},
    )


def send_room_closed(*, meeting_id: int, reason: str = "meeting_closed") -> None:
    broadcast_on_commit(room_group_name(meeting_id), {"type": "room.closed", "reason": reason})


# --- to everyone reading a group's board ------------------------------------------------
# Numbers only, never text: the board's socket reads the post from the database after
# checking again that its reader may (so no post text passes through Redis).


def send_board_thread(*, group_id: int, thread_number: int) -> None:
    """A thread was started."""
    broadcast_on_commit(
        board_group_name(group_id), {"type": "board.thread", "thread": thread_number}
    )


def send_board_post(*, group_id: int, thread_number: int, post_number: int) -> None:
    """A reply was written."""
    broadcast_on_commit(
        board_group_name(group_id),
        {"type": "board.post", "thread": thread_number, "post": post_number},
    )


def send_board_post_changed(*, group_id: int, thread_number: int, post_number: int) -> None:
    """A post was hidden by a facilitator or deleted by its author."""
    broadcast_on_commit(
        board_group_name(group_id),
        {"type": "board.post_changed", "thread": thread_number, "post": post_number},
    )


def send_board_posts_changed(*, group_id: int, posts_by_thread: dict[int, list[int]]) -> None:
    """Posts lost their text with their author's account, or were deleted by the group's
    retention: one event for the group (thread number -> post numbers), however many
    threads, so an open list reads and renders them once, not once per thread."""
    broadcast_on_commit(
        board_group_name(group_id),
        {
            "type": "board.posts_changed",
            # Pairs, not a mapping: the channel layer's encoding keeps keys as given.
            "threads": [
                [thread, sorted(posts)] for thread, posts in sorted(posts_by_thread.items())
            ],
        },
    )


def send_board_thread_changed(*, group_id: int, thread_number: int) -> None:
    """A thread was pinned, locked or closed (or the reverse)."""
    broadcast_on_commit(
        board_group_name(group_id), {"type": "board.thread_changed", "thread": thread_number}
    )


# --- helpers ----------------------------------------------------------------------------


def broadcast_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send ``event`` to a channel-layer group once the current transaction commits.
    Services call the named senders above, never this."""
    _broadcast_groups_on_commit({group: [event]})


class HandedBack:
    """The broadcasts of the transactions committed inside ``broadcasts_handed_back``:
    group -> its events in the order they were sent."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.taking = True

    def take(self, events: dict[str, list[dict[str, Any]]]) -> None:
        for group, group_events in events.items():
            self.events.setdefault(group, []).extend(group_events)


_handed_back: contextvars.ContextVar[HandedBack | None] = contextvars.ContextVar(
    "realtime_handed_back", default=None
)


@contextlib.contextmanager
def broadcasts_handed_back() -> Iterator[HandedBack]:
    """While the block runs, the broadcasts of transactions that commit in it are handed
    back (``HandedBack.events``, once each commit has happened) instead of sent: the
    caller sends them with ``broadcast`` from its event loop. A transaction that commits
    after the block ended sends its own, as usual."""
    handed_back = HandedBack()
    token = _handed_back.set(handed_back)
    try:
        yield handed_back
    finally:
        _handed_back.reset(token)
        handed_back.taking = False


async def broadcast(events: dict[str, list[dict[str, Any]]]) -> None:
    """Send committed events (group -> events): each group's one after another (so they
    arrive in order), the groups side by side. Only a hint: a failure is logged."""
    layer = get_channel_layer()
    if layer is None or not events:
        return

    async def send_group(group: str, group_events: list[dict[str, Any]]) -> None:
        for event in group_events:
            try:
                await layer.group_send(group, event)
            except Exception:  # noqa: BLE001
                # The change is committed, and clients resume from the database.
                logger.warning("broadcast to %s failed", group, exc_info=True)
                return

    await asyncio.gather(*(send_group(group, e) for group, e in events.items()))


def _broadcast_groups_on_commit(events: dict[str, list[dict[str, Any]]]) -> None:
    """Like ``broadcast_on_commit`` for several groups at once (each group's events in
    order, the groups side by side): on commit, handed back to the caller that asked
    for it (``broadcasts_handed_back``), or else sent from here in one hop to the event
    loop for all of them."""
    handed_back = _handed_back.get()

    def send() -> None:
        if handed_back is not None and handed_back.taking:
            handed_back.take(events)
            return
        try:
            async_to_sync(broadcast)(events)
        except Exception:  # noqa: BLE001 - only a hint, as in broadcast
            logger.warning("broadcast to %s failed", ", ".join(events), exc_info=True)

    transaction.on_commit(send)
