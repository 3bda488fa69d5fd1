"""The meeting room's reports and facilitator controls: find the message by what the room
knows (meeting, seq), then call the moderation and meetings services, which find the
actor's membership themselves and re-check their role."""

from accounts.models import User
from meetings.models import Meeting, Message
from meetings.services import RoomError, meeting_close
from moderation.models import ActionKind
from moderation.services import (
    ModerationError,
    action_take,
    announcement_pin,
    message_hide,
    refuse_a_bad_length,
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
        raise ModerationError("message_gone", "That message no longer exists.")
    return message


def report_from_room(  # noqa: PLR0913
    *,
    meeting_id: int,
    actor: User,
    seq: int,
    guideline_number: int,
    note: str,
    plaintext: str | None = None,
    franking_key: bytes | None = None,
    session_key: str | None = None,
) -> None:
    report_file(
        actor=actor,
        message=_message(meeting_id, seq),
        guideline_number=guideline_number,
        note=note,
        plaintext=plaintext,
        franking_key=franking_key,
        session_key=session_key,
    )


def moderate_from_room(
    *,
    meeting_id: int,
    actor: User,
    action: str,
    seq: int,
    guideline_number: int | None,
    minutes: int | None,
    reason: str,
) -> None:
    message = _message(meeting_id, seq)
    if action == "hide":
        refuse_a_bad_length(ActionKind.HIDE_MESSAGE, minutes, None)
        if guideline_number is None:
            raise ModerationError(
                "guideline_required", "Please choose the guideline the message breaks."
            )
        message_hide(message=message, actor=actor, guideline_number=guideline_number, reason=reason)
        return
    if message.author is None:
        raise ModerationError("author_gone", "The author is no longer in the group.")
    action_take(
        membership=message.author,
        actor=actor,
        kind=action,
        guideline_number=guideline_number,
        reason=reason,
        minutes=minutes,
    )


def announce_from_room(*, meeting_id: int, actor: User, text: str) -> None:
    announcement_pin(meeting=Meeting.objects.get(pk=meeting_id), actor=actor, text=text)


def close_from_room(*, meeting_id: int, actor: User) -> None:
    try:
        meeting_close(meeting=Meeting.objects.get(pk=meeting_id), actor=actor)
    except RoomError as error:
        # The room answers every refused control the same way (moderation_refused).
        raise ModerationError(error.code, error.message) from None
