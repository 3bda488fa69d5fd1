"""The meeting room's reports and facilitator controls: find the message and the people
by what the room knows (meeting, seq, memberships), then call the moderation services."""

from groups.models import Membership
from meetings.models import Meeting, Message
from meetings.services import meeting_close
from moderation.services import (
    ModerationError,
    action_take,
    announcement_pin,
    message_hide,
    report_file,
)

__all__ = [
    "ModerationError",
    "report_from_room",
    "moderate_from_room",
    "announce_from_room",
    "close_from_room",
]


def _message(meeting_id: int, seq: int) -> Message:
    message = (
        Message.objects.select_related("meeting", "author")
        .filter(meeting_id=meeting_id, seq=seq)
        .first()
    )
    if message is None:
        raise ModerationError("That message no longer exists.")
    return message


def _facilitator(actor_id: int, meeting: Meeting) -> Membership:
    actor = Membership.objects.select_related("user").get(pk=actor_id)
    if actor.group_id != meeting.group_id or not actor.is_facilitator:
        raise ModerationError("Only this group's facilitators can do that.")
    return actor


def report_from_room(
    *, meeting_id: int, reporter_id: int, seq: int, guideline_number: int, note: str
) -> None:
    reporter = Membership.objects.select_related("user", "group").get(pk=reporter_id)
    report_file(
        reporter=reporter,
        message=_message(meeting_id, seq),
        guideline_number=guideline_number,
        note=note,
    )


def moderate_from_room(
    *,
    meeting_id: int,
    actor_id: int,
    action: str,
    seq: int,
    guideline_number: int | None,
    minutes: int | None,
    reason: str,
) -> None:
    message = _message(meeting_id, seq)
    actor = _facilitator(actor_id, message.meeting)
    if action == "hide":
        if guideline_number is None:
            raise ModerationError("Please choose the guideline the message breaks.")
        message_hide(message=message, actor=actor, guideline_number=guideline_number, reason=reason)
        return
    if message.author is None:
        raise ModerationError("The author is no longer in the group.")
    action_take(
        membership=message.author,
        actor=actor,
        kind=action,
        guideline_number=guideline_number,
        reason=reason,
        minutes=minutes,
    )


def announce_from_room(*, meeting_id: int, actor_id: int, text: str) -> None:
    meeting = Meeting.objects.get(pk=meeting_id)
    announcement_pin(meeting=meeting, actor=_facilitator(actor_id, meeting), text=text)


def close_from_room(*, meeting_id: int, actor_id: int) -> None:
    meeting = Meeting.objects.get(pk=meeting_id)
    actor = _facilitator(actor_id, meeting)
    meeting_close(meeting=meeting, actor=actor.user)
