"""Who may see and join which meeting, and what a room shows."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from groups.models import Membership, Role
from groups.selectors import (
    membership_for_user_or_404,
    membership_may_write,
    membership_refusal,
    require_place_taken,
)
from meetings.models import Meeting, MeetingHold, Message, Presence

# A replay (``resume``) sends at most this many messages at a time; the client asks for
# the next page when ``resumed`` says ``more``.
REPLAY_LIMIT = 500


def upcoming_meetings(group, *, limit: int = 5) -> QuerySet[Meeting]:  # noqa: ANN001
    return Meeting.objects.filter(
        group=group, ends_at__gt=timezone.now(), closed_at__isnull=True
    ).order_by("starts_at")[:limit]


def meeting_for_member_or_404(user, meeting_id: int) -> tuple[Meeting, Membership]:  # noqa: ANN001
    """The meeting and the person's current membership of its group, or 404."""
    meeting = Meeting.objects.select_related("group").filter(pk=meeting_id).first()
    if meeting is None:
        raise Http404
    membership = membership_for_user_or_404(user, meeting.group.slug)
    return meeting, membership


def meeting_for_facilitator_or_404(user, meeting_id: int) -> tuple[Meeting, Membership]:  # noqa: ANN001
    meeting, membership = meeting_for_member_or_404(user, meeting_id)
    if membership.role != Role.FACILITATOR:
        raise Http404
    return meeting, require_place_taken(membership)


def room_refusal(meeting: Meeting, membership: Membership) -> str | None:
    """Why this membership may not be in the room now (a stable code), or None."""
    refusal = membership_refusal(membership)
    if refusal:
        return refusal
    if not meeting.is_open():
        return "meeting_closed"
    return None


@dataclass(frozen=True)
class RoomEntry:
    """Whether a person may be in a meeting's room now: the room page and the room's
    socket ask the same question here."""

    meeting: Meeting | None
    membership: Membership | None
    # Why not (a stable code, with words in meetings.services.refusal_text), or None.
    refusal: str | None


def room_entry(user, meeting_id: int) -> RoomEntry:  # noqa: ANN001
    """The meeting, the person's membership of its group (whatever its status) and why
    they may not be in its room now. A meeting that does not exist and a group the person
    has no place in look the same: "not_a_member"."""
    meeting = Meeting.objects.select_related("group").filter(pk=meeting_id).first()
    if meeting is None or not user.is_authenticated:
        return RoomEntry(None, None, "not_a_member")
    membership = (
        Membership.objects.select_related("group").filter(user=user, group=meeting.group).first()
    )
    if membership is None:
        return RoomEntry(meeting, None, "not_a_member")
    refusal = room_refusal(meeting, membership)
    if refusal is None and meetings_on_hold(meeting.group_id):
        # Asked when a page or socket enters, not for every message: a hold closes the
        # rooms' open sockets itself (meetings.services.meetings_hold).
        refusal = "meetings_on_hold"
    return RoomEntry(meeting, membership, refusal)


def meetings_on_hold(group_id: int) -> bool:
    """Whether the group's meetings are on hold (a security incident)."""
    return MeetingHold.objects.filter(group_id=group_id, lifted_at__isnull=True).exists()


def membership_may_send(membership: Membership) -> bool:
    return membership_may_write(membership)


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]
    # resume: every stored message up to this seq has been included (the room's last seq
    # when nothing follows, so holes in the numbering never hold a client back).
    # history: the room's last seq when the page was read.
    last_seq: int
    more: bool  # resume: later messages follow; history: earlier messages exist


def messages_after(meeting: Meeting, after_seq: int, *, limit: int = REPLAY_LIMIT) -> MessagePage:
    """The next page of a replay: messages after ``after_seq``, oldest first."""
    # The room's last seq first: every message up to it is committed (the seq is taken
    # in the transaction that stores the message), so none can be skipped.
    room_last = Meeting.objects.values_list("last_seq", flat=True).get(pk=meeting.pk)
    found = list(
        Message.objects.filter(meeting=meeting, seq__gt=after_seq, seq__lte=room_last)
        .select_related("author")
        .order_by("seq")[: limit + 1]
    )
    more = len(found) > limit
    found = found[:limit]
    last = found[-1].seq if more else max(room_last, after_seq)
    return MessagePage(found, last, more)


def messages_before(meeting: Meeting, before_seq: int | None, *, limit: int) -> MessagePage:
    """The latest ``limit`` messages before ``before_seq`` (or the latest of all), oldest
    first: what a member joining a long room sees, and "Show earlier messages"."""
    room_last = Meeting.objects.values_list("last_seq", flat=True).get(pk=meeting.pk)
    newest = room_last if before_seq is None else min(before_seq - 1, room_last)
    found = list(
        Message.objects.filter(meeting=meeting, seq__lte=newest)
        .select_related("author")
        .order_by("-seq")[: limit + 1]
    )
    more = len(found) > limit
    return MessagePage(found[:limit][::-1], room_last, more)


def present_pseudonyms(meeting: Meeting) -> list[str]:
    fresh = timezone.now() - timedelta(seconds=2 * settings.CHAT_HEARTBEAT_SECONDS)
    return sorted(
        set(
            Presence.objects.filter(meeting=meeting, seen_at__gte=fresh).values_list(
                "membership__pseudonym", flat=True
            )
        ),
        key=str.casefold,
    )
