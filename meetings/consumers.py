"""The live room of one meeting. Protocol: meetings/PROTOCOL.md.

Thin on purpose: it authenticates, parses and validates frames, and calls the meetings
services (which re-check authorisation on every message) through
``database_sync_to_async``.
"""

import asyncio
import json
import logging
import re

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from accounts.consumers import CLOSE_NOT_ALLOWED, AuthenticatedConsumer
from groups.models import Membership
from meetings import selectors, services
from meetings.models import Meeting
from moderation import room as moderation_actions

logger = logging.getLogger(__name__)

CLOSE_ROOM_CLOSED = 4004
CLOSE_MEMBERSHIP_CHANGED = 4005
# Matched with fullmatch: "$" would also accept a trailing newline.
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


class RoomConsumer(AuthenticatedConsumer):
    meeting: Meeting
    membership: Membership
    can_send: bool = False
    room_group: str | None = None
    closer: asyncio.Task | None = None
    unmuter: asyncio.Task | None = None

    # --- joining and leaving -------------------------------------------------------------

    async def authorise(self) -> bool:
        meeting_id = self.scope["url_route"]["kwargs"]["meeting_id"]
        found = await database_sync_to_async(self._load)(meeting_id)
        return found

    def _load(self, meeting_id: int) -> bool:
        meeting = Meeting.objects.select_related("group").filter(pk=meeting_id).first()
        if meeting is None:
            return False
        membership = Membership.objects.filter(user=self.scope["user"], group=meeting.group).first()
        if membership is None or selectors.room_refusal(meeting, membership):
            return False
        self.meeting, self.membership = meeting, membership
        self.can_send = selectors.membership_may_send(membership)
        self.guidelines = [
            {"number": g.number, "text": g.text} for g in meeting.group.guidelines.all()
        ]
        latest = meeting.announcements.first()
        self.announcement = latest.text if latest else None
        return True

    async def joined(self) -> None:
        self.room_group = services.room_group_name(self.meeting.pk)
        await self.channel_layer.group_add(self.room_group, self.channel_name)
        await database_sync_to_async(services.presence_join)(
            meeting=self.meeting, membership=self.membership, channel_name=self.channel_name
        )
        await self.send_json(
            {
                "type": "hello",
                "you": {
                    "pseudonym": self.membership.pseudonym,
                    "can_send": self.can_send,
                    "is_facilitator": self.membership.is_facilitator,
                },
                "guidelines": self.guidelines,
                "announcement": self.announcement,
                "meeting": {
                    "id": self.meeting.pk,
                    "title": self.meeting.title,
                    "ends_at": self.meeting.ends_at.isoformat(),
                },
                "last_seq": self.meeting.last_seq,
                "limits": {
                    "max_length": settings.CHAT_MAX_MESSAGE_LENGTH,
                    "heartbeat_seconds": settings.CHAT_HEARTBEAT_SECONDS,
                },
            }
        )
        # Close the room for this socket when the meeting's time is up.
        seconds_left = (self.meeting.ends_at - timezone.now()).total_seconds()
        self.closer = asyncio.create_task(self._close_at_end(max(seconds_left, 0)))
        self._watch_mute_end()

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
        for task in (self.closer, self.unmuter):
            if task:
                task.cancel()
        if self.room_group:
            await self.channel_layer.group_discard(self.room_group, self.channel_name)
            present = await database_sync_to_async(services.presence_leave)(
                meeting=self.meeting, membership=self.membership, channel_name=self.channel_name
            )
            try:
                await self.channel_layer.group_send(
                    self.room_group, {"type": "room.presence", "present": present}
                )
            except Exception:  # noqa: BLE001 - a delivery hint; the layer may be down
                logger.info("could not announce a departure", exc_info=True)
        await super().disconnect(code)

    # --- frames from the browser --------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if bytes_data is not None or text_data is None:
            return await self.error("invalid_frame", "Send JSON text frames.")
        if len(text_data.encode()) > settings.CHAT_MAX_FRAME_BYTES:
            return await self.error("frame_too_large", "That frame is too large.")
        try:
            frame = json.loads(text_data)
            # A lone surrogate ("\ud800") is valid JSON but not Unicode that can be stored
            # or sent on (UnicodeEncodeError is a ValueError); deep nesting can't be parsed.
            json.dumps(frame, ensure_ascii=False).encode()
        except (ValueError, RecursionError):
            return await self.error("invalid_json", "That was not valid JSON.")
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return await self.error("invalid_frame", "Each frame must be an object with a type.")
        handler = {
            "send": self.on_send,
            "resume": self.on_resume,
            "ping": self.on_ping,
            "report": self.on_report,
            "moderate": self.on_moderate,
            "announce": self.on_announce,
            "close_room": self.on_close_room,
        }.get(frame["type"])
        if handler is None:
            return await self.error("unknown_type", f"Unknown frame type {frame['type'][:40]!r}.")
        await handler(frame)

    async def on_send(self, frame: dict) -> None:
        client_id, body = frame.get("client_id"), frame.get("body")
        if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
            return await self.error("invalid_client_id", "Each message needs a client_id.")
        if not isinstance(body, str) or not body.strip():
            return await self.error("empty_body", "The message is empty.", client_id=client_id)
        if len(body) > settings.CHAT_MAX_MESSAGE_LENGTH:
            return await self.error(
                "body_too_long",
                f"Messages can be at most {settings.CHAT_MAX_MESSAGE_LENGTH} characters.",
                client_id=client_id,
            )
        try:
            posted = await database_sync_to_async(services.message_post)(
                meeting_id=self.meeting.pk,
                membership_id=self.membership.pk,
                client_id=client_id,
                body=body,
            )
        except services.RoomError as error:
            await self.error(error.code, error.message, client_id=client_id)
            if error.code in ("suspended", "agreement_required", "not_a_member", "meeting_closed"):
                await self.close(code=CLOSE_MEMBERSHIP_CHANGED)
            return
        await self.send_json(
            {
                "type": "ack",
                "client_id": client_id,
                "seq": posted.message.seq,
                "duplicate": not posted.created,
            }
        )

    async def on_resume(self, frame: dict) -> None:
        after = frame.get("after_seq", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            return await self.error("invalid_resume", "after_seq must be a whole number.")
        refusal, messages = await database_sync_to_async(self._replay)(after)
        if refusal:
            # Same as a refused send: the notice of the change may have been lost.
            await self.error(refusal, services.refusal_text(refusal))
            return await self.close(code=CLOSE_MEMBERSHIP_CHANGED)
        for event in messages:
            await self.send_message(event)
        await self.send_json(
            {"type": "resumed", "last_seq": messages[-1]["seq"] if messages else after}
        )

    def _replay(self, after: int) -> tuple[str | None, list[dict]]:
        # Re-check first: a removal whose notice the channel layer lost must not leave the
        # room's history one request away.
        # (Fresh rows, so self.membership keeps what this socket last showed.)
        membership = Membership.objects.filter(pk=self.membership.pk).first()
        meeting = Meeting.objects.get(pk=self.meeting.pk)
        refusal = selectors.room_refusal(meeting, membership) if membership else "not_a_member"
        if refusal:
            return refusal, []
        events = [services.message_event(m) for m in selectors.messages_after(self.meeting, after)]
        return None, events

    async def on_ping(self, frame: dict) -> None:
        await database_sync_to_async(services.presence_heartbeat)(channel_name=self.channel_name)
        await self.send_json({"type": "pong"})

    # --- reports and facilitator controls (through the moderation services) ---------------

    async def on_report(self, frame: dict) -> None:
        seq, rule = frame.get("seq"), frame.get("guideline")
        note = frame.get("note") or ""
        if not _whole(seq) or not _whole(rule) or not isinstance(note, str) or len(note) > 1000:
            return await self.error("invalid_report", "A report needs a message and a guideline.")
        try:
            await database_sync_to_async(moderation_actions.report_from_room)(
                meeting_id=self.meeting.pk,
                actor=self.scope["user"],
                seq=seq,
                guideline_number=rule,
                note=note,
            )
        except moderation_actions.ModerationError as error:
            return await self.error("report_refused", str(error))
        await self.send_json({"type": "reported", "seq": seq})

    async def on_moderate(self, frame: dict) -> None:
        action, seq = frame.get("action"), frame.get("seq")
        rule, minutes = frame.get("guideline"), frame.get("minutes")
        reason = frame.get("reason") or ""
        if (
            action not in ("hide", "mute", "unmute", "remove")
            or not _whole(seq)
            or (rule is not None and not _whole(rule))
            or (minutes is not None and (not _whole(minutes) or minutes < 1))
            or not isinstance(reason, str)
            or len(reason) > 1000
        ):
            return await self.error("invalid_moderation", "That moderation request is incomplete.")
        try:
            await database_sync_to_async(moderation_actions.moderate_from_room)(
                meeting_id=self.meeting.pk,
                actor=self.scope["user"],
                action=action,
                seq=seq,
                guideline_number=rule,
                minutes=minutes,
                reason=reason,
            )
        except moderation_actions.ModerationError as error:
            return await self.error("moderation_refused", str(error))
        await self.send_json({"type": "moderated", "action": action, "seq": seq})

    async def on_announce(self, frame: dict) -> None:
        text = frame.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 500:
            return await self.error(
                "invalid_announcement", "Announcements are 1 to 500 characters."
            )
        try:
            await database_sync_to_async(moderation_actions.announce_from_room)(
                meeting_id=self.meeting.pk, actor=self.scope["user"], text=text
            )
        except moderation_actions.ModerationError as error:
            await self.error("moderation_refused", str(error))

    async def on_close_room(self, frame: dict) -> None:
        try:
            await database_sync_to_async(moderation_actions.close_from_room)(
                meeting_id=self.meeting.pk, actor=self.scope["user"]
            )
        except moderation_actions.ModerationError as error:
            await self.error("moderation_refused", str(error))

    async def error(self, code: str, message: str, **extra) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **extra})

    # --- events from the channel layer ------------------------------------------------------------

    async def room_message(self, event: dict) -> None:
        await self.send_message(event)

    async def send_message(self, event: dict) -> None:
        await self.send_json(
            {
                "type": "message",
                "seq": event["seq"],
                "client_id": event["client_id"]
                if event["author_membership"] == self.membership.pk
                else None,
                "author": event["author"],
                "mine": event["author_membership"] == self.membership.pk,
                "body": event["body"],
                "hidden": event["hidden"],
                "sent_at": event["sent_at"],
            }
        )

    async def room_message_changed(self, event: dict) -> None:
        await self.send_json(
            {
                "type": "message_changed",
                "seq": event["seq"],
                "hidden": event["hidden"],
                "body": event["body"],
            }
        )

    async def room_announcement(self, event: dict) -> None:
        await self.send_json({"type": "announcement", "text": event["text"]})

    async def room_presence(self, event: dict) -> None:
        await self.send_json({"type": "presence", "present": event["present"]})

    async def room_closed(self, event: dict) -> None:
        await self.send_json({"type": "closed", "reason": event.get("reason", "meeting_closed")})
        await self.close(code=CLOSE_ROOM_CLOSED)

    async def group_membership_changed(self, event: dict) -> None:
        """Muted, suspended, removed, left, renamed: look again and act at once."""
        if event.get("group") != self.meeting.group_id:
            return
        # Read before the recheck, which refreshes self.membership (and so its pseudonym).
        shown_pseudonym = self.membership.pseudonym
        refusal, can_send, pseudonym = await database_sync_to_async(self._recheck)()
        if refusal:
            await self.send_json(
                {"type": "closed", "reason": refusal, "message": services.refusal_text(refusal)}
            )
            await self.close(code=CLOSE_MEMBERSHIP_CHANGED)
            return
        if can_send != self.can_send or pseudonym != shown_pseudonym:
            self.can_send = can_send
            await self.send_json({"type": "status", "can_send": can_send, "pseudonym": pseudonym})
        if pseudonym != shown_pseudonym:
            # Everyone else's list of who is here still shows the old name.
            await database_sync_to_async(services.presence_refresh)(meeting=self.meeting)
        self._watch_mute_end()

    def _recheck(self) -> tuple[str | None, bool, str]:
        self.membership.refresh_from_db()
        self.meeting.refresh_from_db()
        refusal = selectors.room_refusal(self.meeting, self.membership)
        return refusal, selectors.membership_may_send(self.membership), self.membership.pseudonym

    async def group_agreement_changed(self, event: dict) -> None:
        if event.get("group") != self.meeting.group_id:
            return
        await self.send_json(
            {
                "type": "closed",
                "reason": "agreement_required",
                "message": services.refusal_text("agreement_required"),
            }
        )
        await self.close(code=CLOSE_MEMBERSHIP_CHANGED)


def _whole(value) -> bool:  # noqa: ANN001
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


__all__ = ["RoomConsumer", "CLOSE_NOT_ALLOWED"]
