"""Who may see and join which meeting, and what a room shows."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, QuerySet
from django.http import Http404
from django.utils import timezone

from groups.models import Membership, Role
from groups.selectors import (
    membership_for_user_or_404,
    membership_may_write,
    membership_refusal,
    require_place_taken,
    signed_current_agreement,
)
from meetings.e2ee import b64encode
from meetings.models import (
    Device,
    KeyShare,
    Meeting,
    MeetingHold,
    Message,
    Presence,
    RoomDevice,
    SenderEpoch,
)
from supportgroups.compiled_query import CompiledQuery

# A replay (``resume``) sends at most this many messages at a time; the client asks for
# the next page when ``resumed`` says ``more``.
REPLAY_LIMIT = 500
# keys_fetch answers this many wrapped keys at a time.
KEYS_PAGE = 200


def upcoming(group, *, now: datetime, limit: int = 5) -> QuerySet[Meeting]:  # noqa: ANN001
    """The next meetings not yet over or closed, soonest first (``group``: one or its id)."""
    return Meeting.objects.filter(group=group, ends_at__gt=now, closed_at__isnull=True).order_by(
        "starts_at"
    )[:limit]


# On the group's home and the facilitator's dashboard: compiled once per process
# (supportgroups/compiled_query.py).
_UPCOMING = CompiledQuery(
    lambda group_id, now: upcoming(group_id, now=now), group_id=int, now=datetime
)


def next_meetings(group, *, now: datetime) -> list[Meeting]:  # noqa: ANN001
    """``upcoming(group, now=now)``, from SQL compiled once."""
    return _UPCOMING.run(group_id=group.pk, now=now)


def upcoming_meetings(group, *, limit: int = 5) -> list[Meeting]:  # noqa: ANN001
    now = timezone.now()
    if limit == 5:
        return next_meetings(group, now=now)
    return list(upcoming(group, now=now, limit=limit))


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
    # Asked for every message and key frame too, not only at the door: a socket that
    # missed the hold's closing broadcast must not keep writing into a held group.
    if meeting_on_hold(meeting):
        return "meetings_on_hold"
    return None


def meeting_on_hold(meeting: Meeting) -> bool:
    """Whether the meeting's group is on hold; the send path's one statement brings the
    answer with the meeting row (``on_hold``), so a message costs no extra query."""
    known = getattr(meeting, "on_hold", None)
    return bool(known) if known is not None else meetings_on_hold(meeting.group_id)


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
    return RoomEntry(meeting, membership, room_refusal(meeting, membership))


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


def _fresh_presence_since():  # noqa: ANN202
    return timezone.now() - timedelta(seconds=2 * settings.CHAT_HEARTBEAT_SECONDS)


# --- end-to-end encrypted rooms -------------------------------------------------------------


def live_device(*, session_key: str | None, membership_id: int) -> Device | None:
    """The session's live device for this membership, if it registered one."""
    if not session_key:
        return None
    return Device.objects.filter(
        session_id=session_key, membership_id=membership_id, retired_at__isnull=True
    ).first()


def devices_with_members(devices: QuerySet[Device]) -> QuerySet[Device]:
    """Devices with their membership and group in the same query, and whether the member
    signed the group's current agreement (groups.selectors: signed_current_agreement), as
    device_may_hold_keys reads them: a room's devices are asked about at once."""
    return devices.select_related("membership__group").annotate(
        member_signed_current=signed_current_agreement(through="membership__")
    )


def device_may_hold_keys(device: Device) -> bool:
    """Whether a device may receive keys now: live, and its member allowed in the group's
    private spaces (groups.selectors.membership_refusal: not removed, suspended or gone,
    named, the current agreement signed). Load devices with devices_with_members() to ask
    about many without a query each. (The sealed send asks the same in SQL:
    meetings.e2ee.may_hold_keys_sql, held to these answers by a test.)"""
    membership = device.membership
    if hasattr(device, "member_signed_current"):
        membership.signed_current = device.member_signed_current
    return device.is_live and membership_refusal(membership) is None


def present_device_ids(meeting: Meeting) -> set[str]:
    """Devices with an open socket in the room now (a fresh heartbeat)."""
    return set(
        Presence.objects.filter(
            meeting=meeting, seen_at__gte=_fresh_presence_since(), device__isnull=False
        ).values_list("device_id", flat=True)
    )


def room_devices(meeting: Meeting) -> list[dict]:
    """Every device admitted to this meeting so far (so history can still be verified),
    whether it is in the room now and whether it may be."""
    present = present_device_ids(meeting)
    admitted = devices_with_members(Device.objects.filter(rooms__meeting=meeting)).order_by(
        "rooms__first_admitted_at", "rooms__pk"
    )
    return [
        {
            "id": device.pk,
            "pseudonym": device.membership.pseudonym,
            "ecdh": b64encode(device.ecdh),
            "ecdsa": b64encode(device.ecdsa),
            "present": device.pk in present,
            "allowed": device_may_hold_keys(device),
        }
        for device in admitted
    ]


def sender_epoch(meeting_id: int, device: Device | None) -> int | None:
    """The device's current sending epoch in this meeting (the highest it started), or None
    before its first."""
    if device is None:
        return None
    return SenderEpoch.objects.filter(meeting_id=meeting_id, device=device).aggregate(
        current=Max("epoch")
    )["current"]


def joined_after_seq(meeting: Meeting, device: Device | None) -> int | None:
    if device is None:
        return None
    return (
        RoomDevice.objects.filter(meeting=meeting, device=device)
        .values_list("joined_after_seq", flat=True)
        .first()
    )


def device_was_given_key(message: Message, *, session_key: str | None, membership_id: int) -> bool:
    """Whether this session's device for the membership was given the key that opens an
    end-to-end encrypted message: a share of its sender's epoch from an index at or before
    the message's (the device read it, or could have)."""
    if not session_key or message.sender_device_id is None:
        return False
    return KeyShare.objects.filter(
        meeting_id=message.meeting_id,
        sender_device_id=message.sender_device_id,
        epoch=message.epoch,
        first_index__lte=message.index,
        recipient_device__session_id=session_key,
        recipient_device__membership_id=membership_id,
        recipient_device__retired_at__isnull=True,
    ).exists()


@dataclass(frozen=True)
class KeyPage:
    shares: list[dict]
    cursor: int | None  # ask again with after=cursor while more
    more: bool


def share_frame(share: KeyShare) -> dict:
    return {
        "id": share.pk,
        "sender_device": share.sender_device_id,
        "epoch": share.epoch,
        "first_index": share.first_index,
        "wrapped": b64encode(share.wrapped),
    }


def keys_for_device(
    meeting: Meeting, device: Device, *, after: int | None, limit: int = KEYS_PAGE
) -> KeyPage:
    """The wrapped keys addressed to this device in this meeting, oldest first."""
    found = KeyShare.objects.filter(meeting=meeting, recipient_device=device)
    if after is not None:
        found = found.filter(pk__gt=after)
    page = list(found.order_by("pk")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return KeyPage([share_frame(share) for share in page], page[-1].pk if more else None, more)
