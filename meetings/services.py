"""Scheduling, opening and closing meetings; posting messages; presence; retention.

Every message is committed with its per-meeting ``seq`` before it is broadcast (on
commit): the database is the truth, the channel layer only a delivery hint.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_is_admin_now
from accounts.services import session_hold
from audit.events import Action
from audit.services import record_event
from groups.models import Group, Membership, Retention
from groups.selectors import facilitation_now
from meetings.models import Attendance, Meeting, MeetingHold, Message, Presence, Recurrence
from meetings.selectors import (
    meetings_on_hold,
    membership_may_send,
    present_pseudonyms,
    room_refusal,
)
from supportgroups.crypto import encrypt_str
from supportgroups.errors import ServiceError
from supportgroups.realtime import (
    MessageEvent,
    send_room_closed,
    send_room_message,
    send_room_presence,
)
from supportgroups.realtime import room_group_name as room_group_name  # (the consumer's)

RECURRENCE_STEP = {
    Recurrence.WEEKLY: timedelta(weeks=1),
    Recurrence.FORTNIGHTLY: timedelta(weeks=2),
}
RETENTION_DAYS = {Retention.DAYS_7: 7, Retention.DAYS_30: 30, Retention.DAYS_90: 90}


class RoomError(ServiceError):
    """A refused meeting or room action (its code goes to the client in an error frame)."""


# --- scheduling -------------------------------------------------------------------------


@transaction.atomic
def meeting_schedule(
    *,
    group: Group,
    actor: User,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    recurrence: str = Recurrence.NONE,
    occurrences: int = 1,
) -> list[Meeting]:
    _require_facilitator(actor, group.pk)
    if ends_at <= starts_at:
        raise RoomError("invalid_times", "The meeting must end after it starts.")
    if recurrence == Recurrence.NONE:
        occurrences = 1
    step = RECURRENCE_STEP.get(recurrence, timedelta(0))
    first = Meeting(
        group=group, title=title, starts_at=starts_at, ends_at=ends_at, recurrence=recurrence
    )
    meetings = [first] + [
        Meeting(
            group=group,
            title=title,
            starts_at=starts_at + step * n,
            ends_at=ends_at + step * n,
            recurrence=recurrence,
            series=first.series,
        )
        for n in range(1, occurrences)
    ]
    Meeting.objects.bulk_create(meetings)
    record_event(
        action=Action.MEETING_SCHEDULED,
        actor=actor,
        target=meetings[0],
        group_id=group.pk,
        extra={"occurrences": len(meetings), "recurrence": recurrence},
    )
    return meetings


@transaction.atomic
def meeting_open(*, meeting: Meeting, actor: User) -> Meeting:
    meeting = Meeting.objects.select_for_update(no_key=True).get(pk=meeting.pk)
    _require_facilitator(actor, meeting.group_id)
    if meeting.has_ended():
        raise RoomError("meeting_closed", "This meeting has already ended.")
    if meetings_on_hold(meeting.group_id):
        raise RoomError("meetings_on_hold", _REFUSAL_TEXT["meetings_on_hold"])
    if meeting.opened_at is None:
        meeting.opened_at = timezone.now()
        meeting.save(update_fields=["opened_at"])
        record_event(
            action=Action.MEETING_OPENED, actor=actor, target=meeting, group_id=meeting.group_id
        )
    return meeting


@transaction.atomic
def meeting_close(*, meeting: Meeting, actor: User | None) -> Meeting:
    """Close the room now: everyone in it is told, and under "delete when the meeting
    ends" its messages are wiped. ``actor`` None: the system (a housekeeping command)."""
    meeting = (
        Meeting.objects.select_for_update(of=("self",), no_key=True)
        .select_related("group")
        .get(pk=meeting.pk)
    )
    if actor is not None:
        _require_facilitator(actor, meeting.group_id)
    if meeting.closed_at is None:
        meeting.closed_at = timezone.now()
        meeting.save(update_fields=["closed_at"])
        record_event(
            action=Action.MEETING_CLOSED, actor=actor, target=meeting, group_id=meeting.group_id
        )
    if meeting.group.retention == Retention.MEETING_END:
        _purge_meeting_messages(meeting)
    send_room_closed(meeting_id=meeting.pk, reason="meeting_closed")
    return meeting


# --- holds (a security incident) ------------------------------------------------------


@transaction.atomic
def meetings_hold(
    *, actor: User, groups: list[Group], ip: str | None, cause: models.Model | None = None
) -> list[MeetingHold]:
    """Put these groups' meetings on hold: open rooms close now (their sockets are told
    why, in one plain sentence) and no room of theirs opens until the hold is lifted.
    Admins only. ``cause`` (an incident) is the target of the audit events."""
    _require_admin(actor)
    now = timezone.now()
    holds = []
    for group in sorted(groups, key=lambda g: g.pk):
        holds.append(MeetingHold.objects.create(group=group, held_at=now, held_by=actor))
        for meeting_id in Meeting.objects.filter(
            group=group, closed_at__isnull=True, ends_at__gt=now
        ).values_list("pk", flat=True):
            send_room_closed(meeting_id=meeting_id, reason="meetings_on_hold")
        record_event(
            action=Action.INCIDENT_MEETINGS_HELD,
            actor=actor,
            target=cause,
            group_id=group.pk,
            ip=ip,
        )
    return holds


@transaction.atomic
def meetings_hold_lift(
    *, actor: User, holds: list[MeetingHold], ip: str | None, cause: models.Model | None = None
) -> int:
    """Lift these holds; a group's rooms open again on their times once no hold of it is
    left. Returns how many holds were lifted (one already lifted is left as it is)."""
    _require_admin(actor)
    lifted = 0
    for hold in MeetingHold.objects.select_for_update(no_key=True).filter(
        pk__in=[hold.pk for hold in holds], lifted_at__isnull=True
    ):
        hold.lifted_at = timezone.now()
        hold.lifted_by = actor
        hold.save(update_fields=["lifted_at", "lifted_by"])
        record_event(
            action=Action.INCIDENT_MEETINGS_HOLD_LIFTED,
            actor=actor,
            target=cause,
            group_id=hold.group_id,
            ip=ip,
        )
        lifted += 1
    return lifted


def _require_admin(actor: User) -> None:
    if not user_is_admin_now(actor):
        raise RoomError("not_admin", "Only site admins can do that.")


# --- messages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PostedMessage:
    message: Message
    created: bool  # False when the client id was already stored (a retry)


def message_post(
    *,
    meeting_id: int,
    membership_id: int,
    client_id: str,
    body: str,
    session_key: str | None = None,
) -> PostedMessage:
    """Store a message once (idempotent per client id) and broadcast it after commit.

    ``session_key``: the session of the socket sending it, checked (and held) in the same
    transaction, so a session signed out a moment ago stores nothing more."""
    try:
        return _message_post(
            meeting_id=meeting_id,
            membership_id=membership_id,
            client_id=client_id,
            body=body,
            session_key=session_key,
        )
    except (IntegrityError, RoomError) as error:
        # The client id may be stored already: a retry whose ack was lost (perhaps from
        # two sockets at once, or sent again just after a mute). The message was not
        # lost, so it is acknowledged rather than refused, and not broadcast again.
        existing = Message.objects.filter(meeting_id=meeting_id, client_id=client_id).first()
        if existing is not None and existing.author_id == membership_id:
            return PostedMessage(existing, created=False)
        if existing is not None and isinstance(error, IntegrityError):
            raise RoomError("duplicate_client_id", "That message id is already used.") from None
        raise


@transaction.atomic
def _message_post(
    *, meeting_id: int, membership_id: int, client_id: str, body: str, session_key: str | None
) -> PostedMessage:
    # Every chat message costs three statements, written out in SQL below: Django's query
    # compiler was a third of a Daphne's CPU under load (make bench). A retried client id
    # is caught by the unique constraint, or after a refusal by message_post; either way
    # this transaction rolls back.
    if session_key is not None and not session_hold(session_key=session_key):
        raise RoomError("signed_out", "You are signed out.")
    meeting = _meeting_take_next_seq(meeting_id)
    since = timezone.now() - timedelta(seconds=settings.CHAT_RATE_LIMIT_SECONDS)
    membership = _sender(membership_id, recent_since=since)
    if membership is None:
        raise RoomError("not_a_member", _REFUSAL_TEXT["not_a_member"])
    refusal = _post_refusal(meeting, membership)
    if refusal:
        raise refusal
    message = _message_insert(meeting, membership, client_id=client_id, body=body)
    send_room_message(meeting_id=meeting.pk, message=message_event(message))
    return PostedMessage(message, created=True)


# --- the send path's statements -----------------------------------------------------------


def _meeting_take_next_seq(meeting_id: int) -> Meeting:
    """Add one to the meeting's last_seq and return the meeting, in one statement.

    The update locks the meeting row until commit, so posts to one room are numbered one
    at a time, in commit order (and one member's rate is counted one send at a time); a
    refused post rolls back and its number is not used.
    """
    table = connection.ops.quote_name(Meeting._meta.db_table)
    found = list(
        Meeting.objects.raw(
            f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING *",  # noqa: S608
            [meeting_id],
        )
    )
    if not found:
        raise RoomError("meeting_closed", _REFUSAL_TEXT["meeting_closed"])
    return found[0]


@functools.cache
def _sender_sql() -> str:
    """The sender's membership, whether they signed the current agreement (the same test
    as groups.selectors.signed_current_agreement) and how many messages they sent since a
    moment. tests/meetings/test_send_statements.py holds it to the ORM's answers."""
    quote = connection.ops.quote_name
    return (
        "SELECT m.*, "  # noqa: S608 - table names from the models, values as parameters
        "(m.signed_agreement_id IS NOT NULL"
        " AND m.signed_agreement_id = g.current_agreement_id) AS signed_current, "
        f"(SELECT COUNT(*) FROM {quote(Message._meta.db_table)} r"
        " WHERE r.author_id = m.id AND r.created_at > %s) AS sent_recently "
        f"FROM {quote(Membership._meta.db_table)} m"
        f" JOIN {quote(Group._meta.db_table)} g ON g.id = m.group_id"
        " WHERE m.id = %s"
    )


def _sender(membership_id: int, *, recent_since: datetime) -> Membership | None:
    since = connection.ops.adapt_datetimefield_value(recent_since)
    found = list(Membership.objects.raw(_sender_sql(), [since, membership_id]))
    return found[0] if found else None


def _message_insert(
    meeting: Meeting, membership: Membership, *, client_id: str, body: str
) -> Message:
    quote = connection.ops.quote_name
    created_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Message._meta.db_table)}"  # noqa: S608
            " (meeting_id, seq, client_id, author_id, body, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            [
                meeting.pk,
                meeting.last_seq,
                client_id,
                membership.pk,
                encrypt_str(body),
                connection.ops.adapt_datetimefield_value(created_at),
            ],
        )
        (message_id,) = cursor.fetchone()
    stored = {
        "id": message_id,
        "meeting_id": meeting.pk,
        "seq": meeting.last_seq,
        "client_id": client_id,
        "author_id": membership.pk,
        "body": body,
        "created_at": created_at,
        "hidden_at": None,
        "hidden_by_id": None,
    }
    fields = [f.attname for f in Message._meta.concrete_fields]  # (a new field: KeyError)
    message = Message.from_db(connection.alias, fields, [stored[name] for name in fields])
    message.meeting, message.author = meeting, membership
    return message


def _post_refusal(meeting: Meeting, membership: Membership) -> RoomError | None:
    refusal = room_refusal(meeting, membership)
    if refusal:
        return RoomError(refusal, _REFUSAL_TEXT.get(refusal, "You can't post here now."))
    if not membership_may_send(membership):
        return RoomError("muted", "A facilitator has muted you: you can read but not send.")
    if not _rate_allows(membership):
        return RoomError(
            "rate_limited",
            f"Please slow down: at most {settings.CHAT_RATE_LIMIT_MESSAGES} messages every "
            f"{settings.CHAT_RATE_LIMIT_SECONDS} seconds.",
        )
    return None


def message_event(message: Message) -> MessageEvent:
    """How a message travels to sockets (and is replayed on resume)."""
    hidden = message.hidden_at is not None
    removed = message.author_id is None
    return {
        "seq": message.seq,
        "client_id": message.client_id,
        "author_membership": message.author_id,
        "author": "[removed]" if removed else message.author.pseudonym,
        "body": None if hidden else ("[removed]" if removed else message.body),
        "hidden": hidden,
        "sent_at": message.created_at.isoformat(),
    }


def _rate_allows(membership: Membership) -> bool:
    """At most N messages in any S seconds, counted from the stored messages themselves
    (``sent_recently``, loaded by _sender under the meeting row lock): a sliding window
    (fixed clock buckets would let 2N through around a boundary) that needs no other
    store. Refused sends are not stored and do not count."""
    return membership.sent_recently < settings.CHAT_RATE_LIMIT_MESSAGES


_REFUSAL_TEXT = {
    "suspended": "You are suspended from this group's meetings for now.",
    "agreement_required": "Please sign the group's current agreement before joining.",
    "not_a_member": "You are not a member of this group.",
    "meeting_closed": "This meeting is not open.",
    "meetings_on_hold": (
        "This group's meetings are paused for now while we check something. "
        "Nothing you need to do: we will let you know when they start again."
    ),
}


def refusal_text(code: str) -> str:
    return _REFUSAL_TEXT.get(code, "You can't join this meeting now.")


# --- presence and attendance ------------------------------------------------------------


@transaction.atomic
def presence_join(*, meeting: Meeting, membership: Membership, channel_name: str) -> None:
    Presence.objects.update_or_create(
        channel_name=channel_name,
        defaults={"meeting": meeting, "membership": membership, "seen_at": timezone.now()},
    )
    attendance, created = Attendance.objects.get_or_create(meeting=meeting, membership=membership)
    if not created:
        attendance.last_seen_at = timezone.now()
        attendance.save(update_fields=["last_seen_at"])
    _broadcast_presence(meeting)


def presence_heartbeat(*, channel_name: str) -> None:
    Presence.objects.filter(channel_name=channel_name).update(seen_at=timezone.now())


@transaction.atomic
def presence_leave(*, meeting: Meeting, membership: Membership, channel_name: str) -> list[str]:
    """Returns who is still present; the leaving socket's consumer tells the room itself
    (a broadcast from a worker thread could outlive a shutting-down event loop)."""
    Presence.objects.filter(channel_name=channel_name).delete()
    Attendance.objects.filter(meeting=meeting, membership=membership).update(
        last_seen_at=timezone.now()
    )
    return present_pseudonyms(meeting)


# A live socket beats every CHAT_HEARTBEAT_SECONDS; one silent this long is gone for good.
PRESENCE_FORGET_AFTER = timedelta(minutes=10)


def presence_sweep_stale(*, now: datetime | None = None) -> int:
    """Delete the rows of sockets that went without saying goodbye (a Daphne killed or cut
    off mid-meeting). They stopped counting as present after two missed heartbeats, but
    nothing else would ever remove them. Returns how many were deleted."""
    now = now or timezone.now()
    return Presence.objects.filter(seen_at__lt=now - PRESENCE_FORGET_AFTER).delete()[0]


def presence_refresh(*, meeting: Meeting) -> None:
    """Tell the room again who is here, e.g. after someone in it changed their name."""
    _broadcast_presence(meeting)


def _broadcast_presence(meeting: Meeting) -> None:
    send_room_presence(meeting_id=meeting.pk, present=present_pseudonyms(meeting))


# --- retention --------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    meetings_wiped: int
    messages_deleted: int


@transaction.atomic
def messages_purge_expired(*, now: datetime | None = None) -> PurgeResult:
    """Apply every group's retention policy. Safe to run as often as you like."""
    now = now or timezone.now()
    deleted = 0
    ended = (
        Meeting.objects.select_related("group")
        .filter(
            group__retention=Retention.MEETING_END,
            messages_purged_at__isnull=True,
        )
        .exclude(closed_at__isnull=True, ends_at__gt=now)
    )
    wiped = 0
    for meeting in ended:
        deleted += _purge_meeting_messages(meeting, now=now)
        wiped += 1
    for retention, days in RETENTION_DAYS.items():
        deleted += Message.objects.filter(
            meeting__group__retention=retention, created_at__lt=now - timedelta(days=days)
        ).delete()[0]
    if deleted or wiped:
        record_event(
            action=Action.MESSAGES_PURGED,
            extra={"messages_deleted": deleted, "meetings_wiped": wiped},
        )
    return PurgeResult(meetings_wiped=wiped, messages_deleted=deleted)


def _require_facilitator(actor: User, group_id: int) -> None:
    """Services re-check the role, whatever the page or socket checked before."""
    if facilitation_now(actor, group_id) is None:
        raise RoomError("not_facilitator", "Only this group's facilitators can do that.")


def _purge_meeting_messages(meeting: Meeting, *, now: datetime | None = None) -> int:
    deleted = meeting.messages.all().delete()[0]
    meeting.messages_purged_at = now or timezone.now()
    meeting.save(update_fields=["messages_purged_at"])
    return deleted


@transaction.atomic
def messages_remove_for_user(*, user: User) -> int:
    """When an account is deleted: its messages stay in place as "[removed]", with no body."""
    return Message.objects.filter(author__user=user).update(body=None, author=None)
