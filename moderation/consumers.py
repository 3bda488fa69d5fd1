"""The meeting room with reports and facilitator controls.

meetings sits below moderation in the layers (DESIGN.md, "Where code goes"), so the room
itself (meetings/consumers.py) knows nothing of moderation; this consumer adds the
moderation frames (PROTOCOL.md: report, moderate, announce, close_room) and is what
supportgroups/routing.py serves at ``ws/meetings/<id>/``.
"""

from channels.db import database_sync_to_async

from meetings import frames
from meetings.consumers import LEAVING_REFUSALS, RoomConsumer
from moderation import room as moderation_actions
from moderation import selectors


class ModeratedRoomConsumer(RoomConsumer):
    FRAME_HANDLERS = RoomConsumer.FRAME_HANDLERS | {
        "report": "on_report",
        "moderate": "on_moderate",
        "announce": "on_announce",
        "close_room": "on_close_room",
    }

    def reported_seqs(self) -> set[int]:
        return selectors.seqs_reported_by(self.membership, self.meeting)

    def mute_notice(self) -> dict:
        step = selectors.latest_mute(self.membership)
        if step is None:
            return super().mute_notice()
        return frames.mute_notice(
            until=self.membership.muted_until,
            guideline_number=step.guideline_number,
            guideline_text=step.guideline_text,
            reason=step.reason,
        )

    async def on_report(self, frame: dict) -> None:
        report = frames.read_report(frame)
        try:
            await database_sync_to_async(moderation_actions.report_from_room)(
                meeting_id=self.meeting.pk,
                actor=self.scope["user"],
                seq=report.seq,
                guideline_number=report.guideline,
                note=report.note,
                plaintext=report.plaintext,
                franking_key=report.franking_key,
                session_key=self.scope["session"].session_key,
            )
        except moderation_actions.ModerationError as error:
            if error.code == "signed_out" or error.code in LEAVING_REFUSALS:
                # As for every frame: signed out, or no longer allowed in the room.
                return await self._refused(error)
            # An E2EE report that does not open the message's commitment says so.
            code = error.code if error.code == "report_unverifiable" else "report_refused"
            return await self.error(code, str(error))
        self.reported = self.reported | {report.seq}
        await self.send_json(frames.reported(report.seq))

    async def on_moderate(self, frame: dict) -> None:
        step = frames.read_moderate(frame)
        try:
            await database_sync_to_async(moderation_actions.moderate_from_room)(
                meeting_id=self.meeting.pk,
                actor=self.scope["user"],
                action=step.action,
                seq=step.seq,
                guideline_number=step.guideline,
                minutes=step.minutes,
                reason=step.reason,
            )
        except moderation_actions.ModerationError as error:
            return await self.error("moderation_refused", str(error))
        await self.send_json(frames.moderated(action=step.action, seq=step.seq))

    async def on_announce(self, frame: dict) -> None:
        text = frames.read_announce(frame)
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
