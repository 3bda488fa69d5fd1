"""Who may see and join which meeting, and what a room shows."""

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from groups.models import Membership, Role, Status
from groups.selectors import (
    membership_for_user_or_404,
    membership_may_enter_meetings,
    require_place_taken,
)
from meetings.models import Meeting, Message, Presence

REPLAY_LIMIT = 1000


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
    if membership.effective_status() == Status.SUSPENDED:
        return "suspended"
    if not membership_may_enter_meetings(membership):
        return "agreement_required" if membership.is_current else "not_a_member"
    if not meeting.is_open():
        return "meeting_closed"
    return None


def membership_may_send(membership: Membership) -> bool:
    return membership.effective_status() == Status.ACTIVE


def messages_after(meeting: Meeting, after_seq: int) -> list[Message]:
    return list(
        Message.objects.filter(meeting=meeting, seq__gt=after_seq)
        .select_related("author")
        .order_by("seq")[:REPLAY_LIMIT]
    )


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
