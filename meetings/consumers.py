"""The live room of one meeting. Protocol: meetings/PROTOCOL.md, frames: meetings/frames.py.

Lifecycle only: who may come in (meetings.selectors.room_entry, as the room page), the
timers that close the room and lift a mute, the channel-layer events, and handing each
frame, once meetings/frames.py has read it, to a selector or service (which re-check
authorisation on every message) through ``database_sync_to_async``. Reports and
facilitator controls are added by moderation/consumers.py, the layer above.
"""

import asyncio
import functools
import logging

from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.consumers import CLOSE_NOT_ALLOWED, AuthenticatedConsumer
from groups.models import Membership
from meetings import frames, group_commit, selectors, services
from meetings.models import Device, Meeting
from supportgroups.errors import ServiceError
from supportgroups.realtime import (
    device_group_name,
    e2ee_rooms_group_name,
    room_devices_event,
    room_presence_event,
)

logger = logging.getLogger(__name__)

# Changes of the room's devices that come this close together are sent as one `devices`
# frame: people arriving together would otherwise cost every socket a read per arrival (the
# database calls of one Daphne run on one thread).
DEVICES_COALESCE_SECONDS = 0.2
CLOSE_ROOM_CLOSED = 4004
CLOSE_MEMBERSHIP_CHANGED = 4005
# Refusals of a message that also mean the person must leave the room.
LEAVING_REFUSALS = frozenset(
    {"suspended", "agreement_required", "not_a_member", "meeting_closed", "meetings_on_hold"}
)


class RoomConsumer(AuthenticatedConsumer):
    meeting: Meeting
    membership: Membership
    can_send: bool = False
    room_group: str | None = None
    reported: set[int] = frozenset()
    closer: asyncio.Task | None = None
    unmuter: asyncio.Task | None = None
    # End-to-end encrypted rooms (meetings/E2EE.md): this socket's session's device.
    e2ee: bool = False
    device: Device | None = None
    device_group: str | None = None
    devices_stale: bool = False
    devices_refresh: asyncio.Task | None = None

    # Frame type -> method name. Layers above add theirs (moderation/consumers.py).
    FRAME_HANDLERS = {
        "send": "on_send",
        "resume": "on_resume",
        "history": "on_history",
        "ping": "on_ping",
        "device_register": "on_device_register",
        "keys_share": "on_keys_share",
        "keys_fetch": "on_keys_fetch",
        "key_request": "on_key_request",
    }
    # Only in end-to-end encrypted rooms; other rooms keep the plain protocol.
    E2EE_FRAMES = frozenset({"device_register", "keys_share", "keys_fetch", "key_request"})

    # --- joining and leaving -------------------------------------------------------------

    async def authorise(self) -> str | None:
        meeting_id = self.scope["url_route"]["kwargs"]["meeting_id"]
        return await database_sync_to_async(self._enter)(meeting_id)

    def _enter(self, meeting_id: int) -> str | None:
        entry = selectors.room_entry(self.scope["user"], meeting_id)
        if entry.refusal:
            self.refused_membership = entry.membership  # for the refusal's words
            return entry.refusal
        self.meeting, self.membership = entry.meeting, entry.membership
        self.e2ee = services.meeting_fix_e2ee(meeting=entry.meeting)
        if self.e2ee:
            self.device = selectors.live_device(
                session_key=self.scope["session"].session_key, membership_id=entry.membership.pk
            )
        self.reported = self.reported_seqs()
        self.can_send = selectors.membership_may_send(entry.membership)
        latest = entry.meeting.announcements.first()
        self.hello = frames.hello(
            membership=entry.membership,
            meeting=entry.meeting,
            can_send=self.can_send,
            guidelines=list(entry.meeting.group.guidelines.all()),
            announcement=latest.text if latest else None,
            muted=None if self.can_send else self.mute_notice(),
        )
        return None

    def mute_notice(self) -> dict:
        """Until when this member can't send (the moderation layer adds why)."""
        return frames.mute_notice(until=self.membership.muted_until)

    def reported_seqs(self) -> set[int]:
        """The messages of this meeting this member reported (none here: reports are the
        moderation layer's, which overrides this)."""
        return set()

    def refusal_text(self, reason: str) -> str:
        if reason in LEAVING_REFUSALS:
            return services.refusal_text(reason, getattr(self, "refused_membership", None))
        return super().refusal_text(reason)

    async def joined(self) -> None:
        self.room_group = services.room_group_name(self.meeting.pk)
        await self.channel_layer.group_add(self.room_group, self.channel_name)
        if self.e2ee:
            await self.channel_layer.group_add(
                e2ee_rooms_group_name(self.meeting.group_id), self.channel_name
            )
            await self._listen_as_device()
        await database_sync_to_async(services.presence_join)(
            meeting=self.meeting,
            membership=self.membership,
            channel_name=self.channel_name,
            device=self.device,
        )
        if self.e2ee:
            self.hello["e2ee"] = await database_sync_to_async(self._hello_e2ee)()
        await self.send_json(self.hello)
        # Close the room for this socket when the meeting's time is up.
        seconds_left = (self.meeting.ends_at - timezone.now()).total_seconds()
        self.closer = asyncio.create_task(self._close_at_end(max(seconds_left, 0)))
        self._watch_mute_end()

    def _hello_e2ee(self) -> dict:
        return frames.hello_e2ee(
            device=self.device,
            epoch=selectors.sender_epoch(self.meeting.pk, self.device),
            joined_after_seq=selectors.joined_after_seq(self.meeting, self.device),
            devices=selectors.room_devices(self.meeting),
        )

    async def _listen_as_device(self) -> None:
        """Join the channel group of this socket's device (keys and key requests for it)."""
        if self.device_group:
            await self.channel_layer.group_discard(self.device_group, self.channel_name)
            self.device_group = None
        if self.device is not None:
            self.device_group = device_group_name(self.meeting.pk, self.device.pk)
            await self.channel_layer.group_add(self.device_group, self.channel_name)

    def _watch_mute_end(self) -> None:
        """A mute "for 10 minutes" lifts itself: look again the moment it ends."""
        if self.unmuter:
            self.unmuter.cancel()
            self.unmuter = None
        until = self.membership.muted_until
        if not self.can_send and until is not None:
            delay = max((until - timezone.now()).total_seconds(), 0) + 0.5
            self.unmuter = asyncio.create_task(self._recheck_after(delay))

    async def _recheck_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.group_membership_changed({"group": self.meeting.group_id})

    async def _close_at_end(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.room_closed({"reason": "meeting_ended"})

    async def disconnect(self, code):
        for task in (self.closer, self.unmuter, self.devices_refresh):
            if task:
                task.cancel()
        if self.room_group:
            await self.channel_layer.group_discard(self.room_group, self.channel_name)
            if self.e2ee:
                for group in (e2ee_rooms_group_name(self.meeting.group_id), self.device_group):
                    if group:
                        await self.channel_layer.group_discard(group, self.channel_name)
            present = await database_sync_to_async(services.presence_leave)(
                meeting=self.meeting, membership=self.membership, channel_name=self.channel_name
            )
            try:
                await self.channel_layer.group_send(self.room_group, room_presence_event(present))
                if self.e2ee:
                    await self.channel_layer.group_send(self.room_group, room_devices_event())
            except Exception:  # noqa: BLE001 - a delivery hint; the layer may be down
                logger.info("could not announce a departure", exc_info=True)
        await super().disconnect(code)

    # --- frames from the browser --------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        try:
            frame = frames.parse(text_data, bytes_data)
            handler = self.FRAME_HANDLERS.get(frame["type"])
            if handler is None or (frame["type"] in self.E2EE_FRAMES and not self.e2ee):
                raise frames.unknown_type(frame)
            await getattr(self, handler)(frame)
        except frames.FrameError as error:
            await self.error(error.code, error.message, **error.extra)

    async def on_send(self, frame: dict) -> None:
        if self.e2ee:
            client_id, sealed = frames.read_sealed_send(frame)
            body = None
        else:
            if "e2ee" in frame:
                raise frames.FrameError(
                    "invalid_frame", "This meeting is not end-to-end encrypted."
                )
            send = frames.read_send(frame)
            client_id, body, sealed = send.client_id, send.body, None
        if not await self.session_active(held_by_caller=True):
            return
        try:
            # Stored with this process's other sends of the moment, in one transaction.
            posted = await group_commit.message_post(
                services.MessageSend(
                    meeting_id=self.meeting.pk,
                    membership_id=self.membership.pk,
                    client_id=client_id,
                    body=body,
                    sealed=sealed,
                    session_key=self.scope["session"].session_key,
                )
            )
        except services.RoomError as error:
            return await self._refused(error, client_id=client_id)
        await self.send_json(
            frames.ack(client_id=client_id, seq=posted.message.seq, duplicate=not posted.created)
        )

    async def _refused(self, error: ServiceError, **extra) -> None:
        if error.code == "signed_out":
            # Signed out a moment ago; the notice may still be on its way.
            return await self.signed_out("signed_out")
        await self.error(error.code, error.message, **getattr(error, "extra", {}), **extra)
        if error.code in LEAVING_REFUSALS:
            await self.close(code=CLOSE_MEMBERSHIP_CHANGED)
        return None

    # --- end-to-end encrypted rooms ------------------------------------------------------

    def _e2ee_call(self, service, **kwargs):  # noqa: ANN001, ANN202
        return database_sync_to_async(service)(
            meeting_id=self.meeting.pk,
            membership_id=self.membership.pk,
            session_key=self.scope["session"].session_key,
            **kwargs,
        )

    async def on_device_register(self, frame: dict) -> None:
        keys = frames.read_device_register(frame)
        try:
            registered = await self._e2ee_call(
                services.device_register,
                channel_name=self.channel_name,
                ecdh=keys.ecdh,
                ecdsa=keys.ecdsa,
            )
        except services.RoomError as error:
            return await self._refused(error)
        self.device = registered.device
        await self._listen_as_device()
        await self.send_json(
            frames.device_registered(
                device=registered.device, joined_after_seq=registered.joined_after_seq
            )
        )

    async def on_keys_share(self, frame: dict) -> None:
        shared = frames.read_keys_share(frame)
        try:
            count = await self._e2ee_call(
                services.keys_share, epoch=shared.epoch, shares=shared.shares
            )
        except services.RoomError as error:
            return await self._refused(error)
        await self.send_json(frames.keys_shared(epoch=shared.epoch, count=count))

    async def on_keys_fetch(self, frame: dict) -> None:
        after = frames.read_keys_fetch(frame)
        try:
            page = await self._e2ee_call(services.keys_fetch, after=after)
        except services.RoomError as error:
            return await self._refused(error)
        await self.send_json(frames.keys(shares=page.shares, cursor=page.cursor, more=page.more))

    async def on_key_request(self, frame: dict) -> None:
        wanted = frames.read_key_request(frame)
        try:
            await self._e2ee_call(
                services.key_request_relay, sender_device=wanted.sender_device, epoch=wanted.epoch
            )
        except services.RoomError as error:
            return await self._refused(error)

    async def on_resume(self, frame: dict) -> None:
        after = frames.read_resume(frame)
        refusal, page = await database_sync_to_async(self._read)(
            selectors.messages_after, self.meeting, after
        )
        if refusal:
            return await self._leave(refusal)
        for message in page.messages:
            await self.send_message(services.message_event(message))
        await self.send_json(
            frames.resumed(after_seq=after, last_seq=page.last_seq, more=page.more)
        )

    async def on_history(self, frame: dict) -> None:
        wanted = frames.read_history(frame)
        refusal, page = await database_sync_to_async(self._read)(
            selectors.messages_before, self.meeting, wanted.before_seq, limit=wanted.limit
        )
        if refusal:
            return await self._leave(refusal)
        await self.send_json(
            frames.history(
                messages=[self._message_frame(services.message_event(m)) for m in page.messages],
                before_seq=wanted.before_seq,
                last_seq=page.last_seq,
                more=page.more,
            )
        )

    def _read(self, select, *args, **kwargs):  # noqa: ANN001, ANN202
        # Re-check first: a removal whose notice the channel layer lost must not leave the
        # room's history one request away.
        # (Fresh rows, so self.membership keeps what this socket last showed.)
        membership = Membership.objects.filter(pk=self.membership.pk).first()
        meeting = Meeting.objects.get(pk=self.meeting.pk)
        refusal = selectors.room_refusal(meeting, membership) if membership else "not_a_member"
        if refusal:
            return services.RoomError(refusal, services.refusal_text(refusal, membership)), None
        return None, select(*args, **kwargs)

    async def _leave(self, refusal: services.RoomError) -> None:
        # As a refused send: the notice of the change may have been lost.
        await self.error(refusal.code, refusal.message)
        await self.close(code=CLOSE_MEMBERSHIP_CHANGED)

    async def on_ping(self, frame: dict) -> None:
        # A heartbeat from a page someone is looking at is activity of the session; from
        # a hidden one it only checks that the session has not timed out meanwhile.
        heartbeat = functools.partial(services.presence_heartbeat, channel_name=self.channel_name)
        if not await self.session_active(active=frames.read_ping(frame), then=heartbeat):
            return
        await self.send_json(frames.pong())

    async def error(self, code: str, message: str, **extra) -> None:
        await self.send_json(frames.error(code, message, **extra))

    # --- events from the channel layer ------------------------------------------------------------

    async def room_message(self, event: dict) -> None:
        await self.send_message(event)

    def _message_frame(self, event: dict) -> dict:
        return frames.message(
            event,
            viewer_membership_id=self.membership.pk,
            reported=event["seq"] in self.reported,
        )

    async def send_message(self, event: dict) -> None:
        await self.send_json(self._message_frame(event))

    async def room_message_changed(self, event: dict) -> None:
        await self.send_json(
            frames.message_changed(seq=event["seq"], hidden=event["hidden"], body=event["body"])
        )

    async def room_announcement(self, event: dict) -> None:
        await self.send_json(frames.announcement(event["text"]))

    async def room_devices_changed(self, event: dict) -> None:
        if not self.e2ee:
            return
        self.devices_stale = True
        if self.devices_refresh is None or self.devices_refresh.done():
            self.devices_refresh = asyncio.create_task(self._send_devices())

    async def _send_devices(self) -> None:
        # The first change goes out at once; later ones within the pause after it go out
        # together (and a change during a read is sent by the next turn of the loop).
        while self.devices_stale:
            self.devices_stale = False
            room_devices = await database_sync_to_async(self._devices_now)()
            await self.send_json(frames.devices(room_devices))
            await asyncio.sleep(DEVICES_COALESCE_SECONDS)

    def _devices_now(self) -> list[dict]:
        if self.device is not None:
            # Retired meanwhile (replaced, or its session ended): it may send no more.
            self.device = selectors.live_device(
                session_key=self.scope["session"].session_key, membership_id=self.membership.pk
            )
        return selectors.room_devices(self.meeting)

    async def device_keys(self, event: dict) -> None:
        await self.send_json(frames.keys(shares=event["shares"]))

    async def device_key_request(self, event: dict) -> None:
        await self.send_json(
            frames.key_request(requester_device=event["requester_device"], epoch=event["epoch"])
        )

    async def room_presence(self, event: dict) -> None:
        await self.send_json(frames.presence(event["present"]))

    async def room_closed(self, event: dict) -> None:
        reason = event.get("reason", "meeting_closed")
        # A hold says why in words; an ordinary close is told by the page itself.
        words = services.refusal_text(reason) if reason == "meetings_on_hold" else None
        await self.send_json(frames.closed(reason, words))
        await self.close(code=CLOSE_ROOM_CLOSED)

    async def group_membership_changed(self, event: dict) -> None:
        """Muted, suspended, removed, left, renamed: look again and act at once."""
        if event.get("group") != self.meeting.group_id:
            return
        # Read before the recheck, which refreshes self.membership (and so its pseudonym).
        shown_pseudonym = self.membership.pseudonym
        refusal, can_send, pseudonym, muted = await database_sync_to_async(self._recheck)()
        if refusal:
            await self.send_json(
                frames.closed(refusal, services.refusal_text(refusal, self.membership))
            )
            await self.close(code=CLOSE_MEMBERSHIP_CHANGED)
            return
        if can_send != self.can_send or pseudonym != shown_pseudonym:
            self.can_send = can_send
            await self.send_json(frames.status(can_send=can_send, pseudonym=pseudonym, muted=muted))
        if pseudonym != shown_pseudonym:
            # Everyone else's list of who is here still shows the old name.
            await database_sync_to_async(services.presence_refresh)(meeting=self.meeting)
        self._watch_mute_end()

    def _recheck(self) -> tuple[str | None, bool, str, dict | None]:
        self.membership.refresh_from_db()
        self.meeting.refresh_from_db()
        refusal = selectors.room_refusal(self.meeting, self.membership)
        can_send = selectors.membership_may_send(self.membership)
        muted = None if can_send else self.mute_notice()
        return refusal, can_send, self.membership.pseudonym, muted

    async def group_agreement_changed(self, event: dict) -> None:
        if event.get("group") != self.meeting.group_id:
            return
        await self.send_json(
            frames.closed("agreement_required", services.refusal_text("agreement_required"))
        )
        await self.close(code=CLOSE_MEMBERSHIP_CHANGED)


__all__ = ["RoomConsumer", "CLOSE_NOT_ALLOWED"]
