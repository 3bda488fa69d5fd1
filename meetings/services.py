"""Scheduling, opening and closing meetings; posting messages; presence; retention.

Every message is committed with its per-meeting ``seq`` before it is broadcast (on
commit): the database is the truth, the channel layer only a delivery hint.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_is_admin_now
from accounts.services import session_hold, sessions_hold
from audit.events import Action
from audit.services import record_event
from groups.models import Group, Membership, Retention
from groups.selectors import facilitation_now, signed_current_agreement
from meetings.e2ee import SealedMessage, SealRefused, ShareIn, b64encode, sealed_send_check
from meetings.models import (
    Attendance,
    Device,
    KeyShare,
    Meeting,
    MeetingHold,
    Message,
    Presence,
    Recurrence,
    RoomDevice,
    SenderEpoch,
)
from meetings.selectors import (
    KeyPage,
    device_may_hold_keys,
    devices_with_members,
    keys_for_device,
    meetings_on_hold,
    membership_may_send,
    present_pseudonyms,
    room_refusal,
    sender_epoch,
    share_frame,
)
from supportgroups.crypto import encrypt_str
from supportgroups.errors import ServiceError
from supportgroups.prepared import columns_of, fetch_all, model_rows
from supportgroups.realtime import (
    MessageEvent,
    send_device_key_request,
    send_device_keys,
    send_room_closed,
    send_room_devices_changed,
    send_room_messages,
    send_room_presence,
)
from supportgroups.realtime import room_group_name as room_group_name  # (the consumer's)
from supportgroups.zones import moment_words

RECURRENCE_STEP = {
    Recurrence.WEEKLY: timedelta(weeks=1),
    Recurrence.FORTNIGHTLY: timedelta(weeks=2),
}
RETENTION_DAYS = {Retention.DAYS_7: 7, Retention.DAYS_30: 30, Retention.DAYS_90: 90}


class RoomError(ServiceError):
    """A refused meeting or room action (its code goes to the client in an error frame,
    with ``extra`` as more keys of that frame, e.g. the devices still missing a key)."""

    def __init__(self, code: str, message: str, *, field: str | None = None, **extra):
        super().__init__(code, message, field=field)
        self.extra = extra


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
    meeting_fix_e2ee(meeting=meeting, actor=actor)
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


@dataclass(frozen=True)
class MessageSend:
    """One message to store: a socket's ``send`` frame, read (see message_post)."""

    meeting_id: int
    membership_id: int
    client_id: str
    body: str | None = None
    sealed: SealedMessage | None = None
    session_key: str | None = None
    # False: if another transaction holds the room's row now, do not wait for it; the send
    # is then left for the next transaction (its outcome is None), which waits.
    wait_for_room: bool = True


def message_post(
    *,
    meeting_id: int,
    membership_id: int,
    client_id: str,
    body: str | None = None,
    sealed: SealedMessage | None = None,
    session_key: str | None = None,
) -> PostedMessage:
    """Store a message once (idempotent per client id) and broadcast it after commit.

    ``body`` in a plain room, ``sealed`` (what the browser encrypted and signed) in an
    end-to-end encrypted one. ``session_key``: the session of the socket sending it,
    checked (and held) in the same transaction, so a session signed out a moment ago
    stores nothing more (and, sealed, whose live device must have sent it)."""
    (outcome,) = messages_post(
        sends=[
            MessageSend(
                meeting_id=meeting_id,
                membership_id=membership_id,
                client_id=client_id,
                body=body,
                sealed=sealed,
                session_key=session_key,
            )
        ]
    )
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


@transaction.atomic
def messages_post(*, sends: list[MessageSend]) -> list[PostedMessage | Exception | None]:
    """Store several messages in one transaction, so one commit (one wait for the disk)
    stores them all: the chat's group commit (meetings/group_commit.py). Each is checked
    exactly as message_post checks one and has its own outcome, in the order given: its
    PostedMessage, or the RoomError that refused it (or the error it met), or None when it
    was not tried (``wait_for_room`` False and its room busy). The stored ones are
    broadcast only after the commit, each room's in seq order.

    Every send is checked before anything is written, so a refused one writes nothing
    and needs no savepoint of its own: the batch costs the same few statements however
    many sends it has (sessions, rooms, senders, then one statement numbering the rooms
    and inserting the messages). A savepoint per send was a fifth of the database
    thread's time (bench.sendpath's profile).

    Locks are taken in one order whatever the batch, so two processes' batches cannot
    deadlock: the sending sessions' rows (in key order, one statement), then the rooms'
    rows (in meeting id order, one statement), those that may be skipped last and without
    waiting. A room another process's batch holds is thus not waited for while this batch
    holds rooms of its own (the two would otherwise take turns, each waiting for the
    other's whole batch); each room's sends keep their order of arrival."""
    outcomes: list[PostedMessage | Exception | None] = [None] * len(sends)
    held = sessions_hold(session_keys=sorted({s.session_key for s in sends if s.session_key}))
    rooms = _rooms_hold(
        wait={s.meeting_id for s in sends if s.wait_for_room},
        skip_if_busy={s.meeting_id for s in sends if not s.wait_for_room},
    )
    tried = [n for n in range(len(sends)) if sends[n].meeting_id in rooms]
    senders, stored_before = _senders(
        {sends[n].membership_id for n in tried},
        recent_since=timezone.now() - timedelta(seconds=settings.CHAT_RATE_LIMIT_SECONDS),
        client_ids={(sends[n].meeting_id, sends[n].client_id) for n in tried},
    )
    accepted: list[tuple[int, Message]] = []
    # (meeting id, client id) -> the message stored with it, before or in this batch
    for index in sorted(tried, key=lambda n: sends[n].meeting_id):
        send = sends[index]
        room = rooms[send.meeting_id]
        try:
            refusal = _send_refusal(send, room, senders.get(send.membership_id), held)
        except DatabaseError:
            # The transaction is aborted: the whole batch fails (the group commit stores
            # its sends again one by one when the error is about a value or a row).
            raise
        except Exception as error:  # noqa: BLE001 - this send's own outcome, not the batch's
            outcomes[index] = error
            continue
        existing = stored_before.get((send.meeting_id, send.client_id))
        if existing is not None:
            # A retry whose ack was lost (perhaps from two sockets at once, or sent again
            # just after a mute): the message was not lost, so it is acknowledged rather
            # than refused, and not broadcast again.
            if existing.author_id == send.membership_id:
                outcomes[index] = PostedMessage(existing, created=False)
            else:
                outcomes[index] = refusal or RoomError(
                    "duplicate_client_id", "That message id is already used."
                )
            continue
        if refusal is not None:
            outcomes[index] = refusal
            continue
        message = _message_new(send, room, senders[send.membership_id])
        stored_before[(send.meeting_id, send.client_id)] = message
        accepted.append((index, message))
    if accepted:
        _messages_insert([message for _, message in accepted], rooms)
        for index, message in accepted:
            outcomes[index] = PostedMessage(message, created=True)
        send_room_messages(
            messages=[(message.meeting_id, message_event(message)) for _, message in accepted]
        )
    return outcomes


def _send_refusal(
    send: MessageSend,
    meeting: Meeting | None,
    membership: Membership | None,
    sessions_held: set[str],
) -> RoomError | None:
    """Why this send may not be stored (the checks of message_post, in their order), or
    None. Reads nothing but the sealed message's check: the rows were read for the batch."""
    if send.session_key is not None and send.session_key not in sessions_held:
        return RoomError("signed_out", "You are signed out.")
    if meeting is None:
        return RoomError("meeting_closed", _REFUSAL_TEXT["meeting_closed"])
    if meeting.e2ee and send.sealed is None:
        return RoomError("invalid_e2ee", "This meeting is end-to-end encrypted: send ciphertext.")
    if send.sealed is not None and not meeting.e2ee:
        return RoomError("invalid_frame", "This meeting is not end-to-end encrypted.")
    if membership is None:
        return RoomError("not_a_member", _REFUSAL_TEXT["not_a_member"])
    refusal = _post_refusal(meeting, membership)
    if refusal:
        return refusal
    if send.sealed is not None:
        # One statement (meetings/e2ee.py), under the room's lock.
        try:
            sealed_send_check(
                send.sealed,
                meeting_id=meeting.pk,
                membership_id=membership.pk,
                session_key=send.session_key,
                client_id=send.client_id,
            )
        except SealRefused as refused:
            return RoomError(refused.code, refused.message, **refused.extra)
    return None


# --- the send path's statements -----------------------------------------------------------


@functools.cache
def _rooms_sql(*, skip_locked: bool) -> str:
    """The rooms' rows, held until the transaction ends (their seqs are taken under them),
    in id order; each with whether its group is on hold (``on_hold``, for
    room_refusal)."""
    quote = connection.ops.quote_name
    table = quote(Meeting._meta.db_table)
    return (
        f"SELECT {columns_of(Meeting, 'm')},"  # noqa: S608
        f" EXISTS (SELECT 1 FROM {quote(MeetingHold._meta.db_table)} h"
        " WHERE h.group_id = m.group_id AND h.lifted_at IS NULL) AS on_hold"
        f" FROM {table} m"
        " WHERE m.id = ANY(%s::bigint[]) ORDER BY m.id FOR NO KEY UPDATE OF m"
        + (" SKIP LOCKED" if skip_locked else "")
    )


def _rooms_hold(*, wait: set[int], skip_if_busy: set[int]) -> dict[int, Meeting | None]:
    """Hold the rooms' rows until the transaction ends: those of ``wait`` whoever holds
    them now, those of ``skip_if_busy`` only if no other transaction does. Returns each
    room held (None: a room of ``wait`` that does not exist); a room of ``skip_if_busy``
    left alone (busy, or gone) is not in it."""
    skip_if_busy = skip_if_busy - wait
    rooms: dict[int, Meeting | None] = {}
    # Those waited for first: only then may a transaction wait.
    for meeting_ids, skip_locked in ((wait, False), (skip_if_busy, True)):
        if not meeting_ids:
            continue
        if not skip_locked:
            rooms.update(dict.fromkeys(meeting_ids))
        for meeting in _rooms_read(meeting_ids, skip_locked=skip_locked):
            if meeting.e2ee is None:
                # A meeting whose first message comes before anyone opened its room: it
                # takes the group's setting now, audited as meeting_fix_e2ee audits it
                # (under the row lock just taken, so once). Only that batch pays for it.
                meeting.e2ee = _meeting_fix_e2ee(meeting, None)
            rooms[meeting.pk] = meeting
    return rooms


def _rooms_read(meeting_ids: set[int], *, skip_locked: bool) -> Iterable[Meeting]:
    if connection.vendor != "postgresql":
        # The embedded SQLite default: its writers queue for the whole database
        # (transaction_mode IMMEDIATE), so there are no rows to lock, and the same rows
        # come from the ORM (the SQL of this path is PostgreSQL's).
        return _rooms_portable(meeting_ids)
    rows = fetch_all(_rooms_sql(skip_locked=skip_locked), [sorted(meeting_ids)], locks=True)
    return model_rows(Meeting, rows, extra=("on_hold",))


def _rooms_portable(meeting_ids: set[int]) -> Iterable[Meeting]:
    holds = MeetingHold.objects.filter(group_id=OuterRef("group_id"), lifted_at__isnull=True)
    rooms = Meeting.objects.filter(pk__in=meeting_ids).annotate(on_hold=Exists(holds))
    return rooms.order_by("pk")


@functools.cache
def _senders_sql(counted_up_to: int) -> str:
    """The senders' memberships, whether they signed the current agreement (the same test
    as groups.selectors.signed_current_agreement), how many messages they sent since a
    moment (counted up to ``counted_up_to``: all the rate limit needs to know), and the ids
    of the messages already stored with the batch's (meeting, client id) pairs (the same
    in every row). tests/meetings/test_send_statements.py holds it to the ORM's answers.

    Prepared with one generic plan (supportgroups/prepared.py), so it is written to be led
    by its keys whatever the tables' statistics say: each part is a subquery that cannot be
    merged into a join (``OFFSET 0``) and takes its key from the row before it (``LATERAL``),
    so it is one index probe per key. Written as joins over ``= ANY(array)``, a plan made
    while the tables were small (a new install's first minutes) read the whole messages
    and memberships tables for every message sent, until the next ANALYZE (157 buffers a
    run at 3,600 messages in ``bench.sendpath --statements``; now 13)."""
    quote = connection.ops.quote_name
    messages = quote(Message._meta.db_table)
    return (
        f"SELECT {columns_of(Membership, 'm')}, "  # noqa: S608 - names from the models
        "(m.signed_agreement_id IS NOT NULL"
        " AND m.signed_agreement_id = g.current_agreement_id) AS signed_current, "
        # Newest first and cut at the limit: the (author, created_at) index's order.
        f"(SELECT COUNT(*) FROM (SELECT FROM {messages} r"
        " WHERE r.author_id = m.id AND r.created_at > %s::timestamptz"
        f" ORDER BY r.created_at DESC LIMIT {int(counted_up_to)}) AS recent) AS sent_recently, "
        "ARRAY(SELECT s.id FROM unnest(%s::bigint[], %s::varchar[]) AS pair (meeting_id, client_id)"
        f" CROSS JOIN LATERAL (SELECT id FROM {messages}"
        " WHERE meeting_id = pair.meeting_id AND client_id = pair.client_id OFFSET 0) AS s"
        ") AS stored_ids "
        "FROM unnest(%s::bigint[]) AS wanted (id)"
        f" CROSS JOIN LATERAL (SELECT * FROM {quote(Membership._meta.db_table)}"
        " WHERE id = wanted.id OFFSET 0) AS m"
        f" CROSS JOIN LATERAL (SELECT current_agreement_id FROM {quote(Group._meta.db_table)}"
        " WHERE id = m.group_id OFFSET 0) AS g"
    )


def _senders(
    membership_ids: set[int], *, recent_since: datetime, client_ids: set[tuple[int, str]]
) -> tuple[dict[int, Membership], dict[tuple[int, str], Message]]:
    """The senders' memberships (by id; with ``signed_current`` and ``sent_recently``),
    and the messages already stored with any of ``client_ids`` ((meeting id, client id)
    -> message), in one statement (a second, for the rare retry, reads those messages)."""
    if not membership_ids:
        return {}, {}
    if connection.vendor != "postgresql":
        return _senders_portable(membership_ids, recent_since=recent_since, client_ids=client_ids)
    return _senders_from(fetch_all(*_senders_statement(membership_ids, recent_since, client_ids)))


def _senders_statement(
    membership_ids: set[int], recent_since: datetime, client_ids: set[tuple[int, str]]
) -> tuple[str, list]:
    pairs = sorted(client_ids)
    return _senders_sql(settings.CHAT_RATE_LIMIT_MESSAGES), [
        recent_since,
        [meeting_id for meeting_id, _ in pairs],
        [client_id for _, client_id in pairs],
        sorted(membership_ids),
    ]


def _senders_from(
    rows: list[tuple],
) -> tuple[dict[int, Membership], dict[tuple[int, str], Message]]:
    found = model_rows(Membership, rows, extra=("signed_current", "sent_recently", "stored_ids"))
    stored_ids = found[0].stored_ids if found else []
    stored = {}
    if stored_ids:  # a retry whose ack was lost: rare
        stored = {(m.meeting_id, m.client_id): m for m in Message.objects.filter(pk__in=stored_ids)}
    return {membership.pk: membership for membership in found}, stored


def _senders_portable(
    membership_ids: set[int], *, recent_since: datetime, client_ids: set[tuple[int, str]]
) -> tuple[dict[int, Membership], dict[tuple[int, str], Message]]:
    """_senders from the ORM, for the embedded SQLite default."""
    recent = (
        Message.objects.filter(author_id=OuterRef("pk"), created_at__gt=recent_since)
        .order_by()
        .values("author_id")
        .annotate(count=Count("pk"))
        .values("count")
    )
    found = Membership.objects.filter(pk__in=membership_ids).annotate(
        signed_current=signed_current_agreement(),
        sent_recently=Coalesce(Subquery(recent), 0),
    )
    same_ids = Q(pk__in=[])
    for meeting_id, client_id in client_ids:
        same_ids |= Q(meeting_id=meeting_id, client_id=client_id)
    stored = {(m.meeting_id, m.client_id): m for m in Message.objects.filter(same_ids)}
    for membership in found:  # (counted up to the limit, as the statement counts)
        membership.sent_recently = min(membership.sent_recently, settings.CHAT_RATE_LIMIT_MESSAGES)
    return {membership.pk: membership for membership in found}, stored


def _message_new(send: MessageSend, meeting: Meeting, membership: Membership) -> Message:
    """The message ``send`` stores, with the room's next seq; counted at once in the
    sender's rate, so the batch's next send of theirs is counted with it."""
    meeting.last_seq += 1
    membership.sent_recently += 1
    sealed = send.sealed
    message = Message(
        meeting_id=meeting.pk,
        seq=meeting.last_seq,
        client_id=send.client_id,
        author_id=membership.pk,
        body=send.body,
        created_at=timezone.now(),
        sender_device_id=sealed.sender_device if sealed else None,
        epoch=sealed.epoch if sealed else None,
        index=sealed.index if sealed else None,
        iv=sealed.iv if sealed else None,
        ciphertext=sealed.ciphertext if sealed else None,
        signature=sealed.signature if sealed else None,
        commitment=sealed.commitment if sealed else None,
    )
    message.meeting, message.author = meeting, membership
    return message


# The columns the send path writes (the rest of a new message's are null).
_INSERTED = (
    "meeting_id",
    "seq",
    "client_id",
    "author_id",
    "body",
    "created_at",
    "sender_device_id",
    "epoch",
    "index",
    "iv",
    "ciphertext",
    "signature",
    "commitment",
)


@functools.cache
def _messages_insert_sql() -> str:
    """One statement for any batch (so it is prepared once): the rooms' new last_seq and
    the messages, each column as an array."""
    quote = connection.ops.quote_name
    by_attname = {field.attname: field for field in Message._meta.concrete_fields}
    fields = [by_attname[name] for name in _INSERTED]
    columns = ", ".join(quote(field.column) for field in fields)
    # Without a length: a cast to varchar(64) would cut a longer value short, where the
    # column refuses it (a DataError: the group commit then stores the batch's others).
    arrays = ", ".join(f"%s::{field.db_type(connection).split('(')[0]}[]" for field in fields)
    return (
        f"WITH numbered AS (UPDATE {quote(Meeting._meta.db_table)} m"  # noqa: S608
        " SET last_seq = v.last_seq"
        " FROM unnest(%s::bigint[], %s::bigint[]) AS v (id, last_seq) WHERE m.id = v.id)"
        f" INSERT INTO {quote(Message._meta.db_table)} ({columns})"
        f" SELECT * FROM unnest({arrays}) RETURNING meeting_id, seq, id"
    )


def _messages_insert(messages: list[Message], rooms: dict[int, Meeting | None]) -> None:
    """Store the messages and their rooms' new last_seq, in one statement; each message
    gets its id."""
    numbered = {m.meeting_id: rooms[m.meeting_id] for m in messages}
    if connection.vendor != "postgresql":
        # The embedded SQLite default, through the ORM (its writers queue anyway).
        for meeting in numbered.values():
            Meeting.objects.filter(pk=meeting.pk).update(last_seq=meeting.last_seq)
        Message.objects.bulk_create(messages)
        return
    values = {name: [getattr(m, name) for m in messages] for name in _INSERTED}
    values["body"] = [None if body is None else encrypt_str(body) for body in values["body"]]
    for name in ("iv", "ciphertext", "signature", "commitment"):
        values[name] = [None if v is None else bytes(v) for v in values[name]]
    rows = fetch_all(
        _messages_insert_sql(),
        [
            [meeting.pk for meeting in numbered.values()],
            [meeting.last_seq for meeting in numbered.values()],
            *values.values(),
        ],
    )
    ids = {(meeting_id, seq): pk for meeting_id, seq, pk in rows}
    for message in messages:
        message.id = ids[(message.meeting_id, message.seq)]
        message._state.adding, message._state.db = False, connection.alias


def _post_refusal(meeting: Meeting, membership: Membership) -> RoomError | None:
    refusal = room_refusal(meeting, membership)
    if refusal:
        if refusal in _REFUSAL_TEXT:
            return RoomError(refusal, refusal_text(refusal, membership))
        return RoomError(refusal, "You can't post here now.")
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
    event: MessageEvent = {
        "seq": message.seq,
        "client_id": message.client_id,
        "author_membership": message.author_id,
        "author": "[removed]" if removed else message.author.pseudonym,
        "body": None if hidden else ("[removed]" if removed else message.body),
        "hidden": hidden,
        "sent_at": message.created_at.isoformat(),
    }
    if message.epoch is not None:  # end-to-end encrypted
        event["body"] = "[removed]" if removed and not hidden else None
        event["e2ee"] = None if hidden or removed else sealed_event(message)
    return event


def sealed_event(message: Message) -> dict:
    """An E2EE message's sealed parts as the browsers read them (base64)."""
    return {
        # Everyone needs it to check the signature and open the message (it is bound into
        # both), not only the author.
        "client_id": message.client_id,
        "sender_device": message.sender_device_id,
        "epoch": message.epoch,
        "index": message.index,
        "iv": b64encode(message.iv),
        "ciphertext": b64encode(message.ciphertext),
        "signature": b64encode(message.signature),
        "commitment": b64encode(message.commitment),
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


def refusal_text(code: str, membership: Membership | None = None) -> str:
    """The words for a refusal's code; with the membership, a suspension that has an end
    says until when (as the board does), not "for now"."""
    until = membership.suspended_until if membership is not None else None
    if code == "suspended" and until is not None:
        return f"You are suspended from this group's meetings until {moment_words(until)}."
    return _REFUSAL_TEXT.get(code, "You can't join this meeting now.")


# --- presence and attendance ------------------------------------------------------------


@transaction.atomic
def presence_join(
    *, meeting: Meeting, membership: Membership, channel_name: str, device: Device | None = None
) -> None:
    """The socket is in the room; with ``device`` (an E2EE room, the session's live device
    for this membership) that device is admitted to the meeting too."""
    Presence.objects.update_or_create(
        channel_name=channel_name,
        defaults={"meeting": meeting, "membership": membership, "seen_at": timezone.now()},
    )
    attendance, created = Attendance.objects.get_or_create(meeting=meeting, membership=membership)
    if not created:
        attendance.last_seen_at = timezone.now()
        attendance.save(update_fields=["last_seen_at"])
    if device is not None:
        _device_admit(meeting_id=meeting.pk, device=device, channel_name=channel_name)
    if meeting.e2ee:
        send_room_devices_changed(meeting_id=meeting.pk)
    _broadcast_presence(meeting)


def presence_heartbeat(*, channel_name: str) -> None:
    if connection.vendor == "postgresql":  # every socket's heartbeat: supportgroups/prepared.py
        fetch_all(_presence_heartbeat_sql(), [timezone.now(), channel_name])
        return
    Presence.objects.filter(channel_name=channel_name).update(seen_at=timezone.now())


@functools.cache
def _presence_heartbeat_sql() -> str:
    quote = connection.ops.quote_name
    field = Presence._meta.get_field
    return (
        f"UPDATE {quote(Presence._meta.db_table)}"  # noqa: S608
        f" SET {quote(field('seen_at').column)} = %s::timestamptz"
        f" WHERE {quote(field('channel_name').column)} = %s"
    )


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
        cutoff = now - timedelta(days=days)
        deleted += Message.objects.filter(
            meeting__group__retention=retention, created_at__lt=cutoff
        ).delete()[0]
        # The wrapped keys of those days open nothing that is still kept.
        KeyShare.objects.filter(meeting__group__retention=retention, created_at__lt=cutoff).delete()
    _retired_devices_purge()
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
    # An E2EE room's keys go with its messages: who shared what with which device.
    KeyShare.objects.filter(meeting=meeting).delete()
    SenderEpoch.objects.filter(meeting=meeting).delete()
    RoomDevice.objects.filter(meeting=meeting).delete()
    meeting.messages_purged_at = now or timezone.now()
    meeting.save(update_fields=["messages_purged_at"])
    return deleted


def _retired_devices_purge() -> None:
    """Retired devices (signed out, or replaced) that no kept message or room names any
    more: their public keys verify nothing still stored."""
    Device.objects.filter(Q(retired_at__isnull=False) | Q(session__isnull=True)).exclude(
        pk__in=Message.objects.filter(sender_device__isnull=False).values("sender_device")
    ).exclude(pk__in=RoomDevice.objects.values("device")).delete()


@transaction.atomic
def messages_remove_for_user(*, user: User) -> int:
    """When an account is deleted: its messages stay in place as "[removed]", with no body."""
    return Message.objects.filter(author__user=user).update(
        body=None,
        author=None,
        sender_device=None,
        iv=None,
        ciphertext=None,
        signature=None,
        commitment=None,
    )


# --- end-to-end encrypted rooms (meetings/E2EE.md) -----------------------------------------


def meeting_fix_e2ee(*, meeting: Meeting, actor: User | None = None) -> bool:
    """Take the group's E2EE setting for this meeting when its room first opens to someone
    (or a facilitator opens it: ``actor``); from then on it never changes, so a change of
    the setting applies from the next meeting. Returns whether the meeting is end-to-end
    encrypted. Fixing it is audited, once."""
    if meeting.e2ee is None:
        meeting.e2ee = _meeting_fix_e2ee(meeting, actor)
    return meeting.e2ee


@transaction.atomic
def _meeting_fix_e2ee(meeting: Meeting, actor: User | None) -> bool:
    # One conditional UPDATE: when two first sockets come at once, the second waits for
    # the first's row lock, finds the setting already fixed and changes nothing; both then
    # read what the first fixed, and only the first records it. (In the ORM, so the
    # embedded SQLite default runs it too.)
    setting = Group.objects.filter(pk=OuterRef("group_id")).values("e2ee_meetings")[:1]
    fixed = Meeting.objects.filter(pk=meeting.pk, e2ee__isnull=True).update(e2ee=Subquery(setting))
    e2ee = Meeting.objects.filter(pk=meeting.pk).values_list("e2ee", flat=True).get()
    if fixed:
        record_event(
            action=Action.E2EE_MEETING_FIXED,
            actor=actor,
            target=meeting,
            group_id=meeting.group_id,
            extra={"e2ee": e2ee},
        )
    return e2ee


@dataclass(frozen=True)
class RegisteredDevice:
    device: Device
    joined_after_seq: int


@transaction.atomic
def device_register(  # noqa: PLR0913
    *,
    meeting_id: int,
    membership_id: int,
    session_key: str,
    channel_name: str,
    ecdh: bytes,
    ecdsa: bytes,
) -> RegisteredDevice:
    """This session's device for this membership, registered (or the same keys again: the
    device it has). Other keys retire the session's previous device: the keys addressed to
    it are deleted and every room it was in is told. A new device is a security notice for
    the member ("Who has seen my data", account activity)."""
    meeting, membership = _room_member(meeting_id, membership_id, session_key)
    current = (
        # (NO KEY: other devices' key shares check this row's key meanwhile; a full row
        # lock would deadlock two devices sharing with each other.)
        Device.objects.select_for_update(no_key=True)
        .filter(session_id=session_key, membership=membership, retired_at__isnull=True)
        .first()
    )
    if current is not None and (bytes(current.ecdh), bytes(current.ecdsa)) == (ecdh, ecdsa):
        device = current
    else:
        if current is not None:
            _device_retire(current, membership=membership)
        try:
            with transaction.atomic():
                device = Device.objects.create(
                    membership=membership, session_id=session_key, ecdh=ecdh, ecdsa=ecdsa
                )
        except IntegrityError:
            # Another tab of this session registered other keys at the same moment.
            raise RoomError(
                "invalid_device", "Another tab of this browser has just made a device: reload."
            ) from None
        record_event(
            action=Action.E2EE_DEVICE_REGISTERED,
            actor=membership.user,
            subject=membership.user,
            target=device,
            group_id=membership.group_id,
        )
    joined_after = _device_admit(meeting_id=meeting.pk, device=device, channel_name=channel_name)
    send_room_devices_changed(meeting_id=meeting.pk)
    return RegisteredDevice(device, joined_after)


def _device_admit(*, meeting_id: int, device: Device, channel_name: str) -> int:
    """Admit the device to the meeting (once) and mark the socket as this device's.

    Under the meeting row's lock, like a message's seq: a message stored before is at or
    below ``joined_after_seq``, and one stored after sees this device present (so its
    sender must share their key with it first). Returns ``joined_after_seq``."""
    meeting = Meeting.objects.select_for_update(no_key=True).only("last_seq").get(pk=meeting_id)
    admitted, _ = RoomDevice.objects.get_or_create(
        meeting_id=meeting_id, device=device, defaults={"joined_after_seq": meeting.last_seq}
    )
    Presence.objects.filter(channel_name=channel_name).update(device=device)
    return admitted.joined_after_seq


def _device_retire(device: Device, *, membership: Membership) -> None:
    """Retire the device replaced by other keys of the same session (a device whose session
    ends is retired with it, audited as the session's end)."""
    device.retired_at = timezone.now()
    device.save(update_fields=["retired_at"])
    record_event(
        action=Action.E2EE_DEVICE_RETIRED,
        actor=membership.user,
        subject=membership.user,
        target=device,
        group_id=membership.group_id,
        extra={"reason": "replaced"},
    )
    # A retired device gets no key again, and the ones it was given are gone.
    KeyShare.objects.filter(recipient_device=device).delete()
    Presence.objects.filter(device=device).update(device=None)
    for meeting_id in RoomDevice.objects.filter(device=device).values_list("meeting_id", flat=True):
        send_room_devices_changed(meeting_id=meeting_id)


@transaction.atomic
def keys_share(
    *,
    meeting_id: int,
    membership_id: int,
    session_key: str,
    epoch: int,
    shares: list[ShareIn],
) -> int:
    """Store the sender device's chain key for ``epoch``, wrapped per recipient device,
    and hand each recipient its share on commit. Recipients must be live devices admitted
    to this meeting whose members may be in its room now; ``epoch`` above the device's
    current one starts a new epoch, an earlier one it started goes only to devices that
    were admitted before that epoch began. Returns how many were stored."""
    meeting, membership = _room_member(meeting_id, membership_id, session_key)
    sender = _sending_device(membership, session_key, lock=True)
    current = sender_epoch(meeting.pk, sender)
    # An earlier epoch may be shared again (the answer to a key_request after the sender
    # moved on, e.g. it reconnected), but only with devices admitted before it began:
    # a device that came later must not read what was said before it came.
    earlier_started = None
    if current is not None and epoch < current:
        earlier_started = (
            SenderEpoch.objects.filter(meeting_id=meeting.pk, device=sender, epoch=epoch)
            .values_list("started_at", flat=True)
            .first()
        )
        if earlier_started is None:
            raise RoomError(
                "invalid_keys", f"Your current epoch is {current}: share that or a newer one."
            )
    wanted = {share.recipient_device for share in shares}
    recipients = {
        device.pk: device
        for device in devices_with_members(
            Device.objects.filter(pk__in=wanted, rooms__meeting_id=meeting.pk)
        )
    }
    refused = sorted(
        device_id
        for device_id in wanted
        if device_id not in recipients or not device_may_hold_keys(recipients[device_id])
    )
    if refused:
        raise RoomError(
            "invalid_keys",
            "Keys can only be shared with devices allowed in this room now.",
            devices=refused,
        )
    if earlier_started is not None:
        came_later = sorted(
            RoomDevice.objects.filter(
                meeting_id=meeting.pk, device_id__in=wanted, first_admitted_at__gte=earlier_started
            ).values_list("device_id", flat=True)
        )
        if came_later:
            raise RoomError(
                "came_after_epoch",
                "These devices came in after that key was made: they may not have it.",
                devices=came_later,
            )
    if current is None or epoch > current:
        SenderEpoch.objects.create(meeting_id=meeting.pk, device=sender, epoch=epoch)
    stored = KeyShare.objects.bulk_create(
        KeyShare(
            meeting_id=meeting.pk,
            sender_device=sender,
            epoch=epoch,
            first_index=share.first_index,
            recipient_device_id=share.recipient_device,
            recipient_session_id=recipients[share.recipient_device].session_id,
            wrapped=share.wrapped,
        )
        for share in shares
    )
    by_recipient: dict[str, list[dict]] = {}
    for share in stored:
        by_recipient.setdefault(share.recipient_device_id, []).append(share_frame(share))
    for device_id, frames_for_device in by_recipient.items():
        send_device_keys(meeting_id=meeting.pk, device_id=device_id, shares=frames_for_device)
    return len(stored)


@transaction.atomic
def key_request_relay(
    *, meeting_id: int, membership_id: int, session_key: str, sender_device: str, epoch: int
) -> None:
    """Ask a sender device for its whole chain of ``epoch`` (from index 0), for a device
    that could not open one of its messages. Only for a device admitted to the meeting
    before that epoch began: a device that came later must not read what was said before."""
    meeting, membership = _room_member(meeting_id, membership_id, session_key)
    requester = _sending_device(membership, session_key)
    admitted = (
        RoomDevice.objects.filter(meeting_id=meeting.pk, device=requester)
        .values_list("first_admitted_at", flat=True)
        .first()
    )
    started = (
        SenderEpoch.objects.filter(meeting_id=meeting.pk, device_id=sender_device, epoch=epoch)
        .values_list("started_at", flat=True)
        .first()
    )
    if admitted is None or started is None or admitted >= started or sender_device == requester.pk:
        raise RoomError(
            "key_request_refused",
            "This device came in after that key was made, so it cannot ask for it.",
        )
    send_device_key_request(
        meeting_id=meeting.pk, device_id=sender_device, requester_device=requester.pk, epoch=epoch
    )


@transaction.atomic
def keys_fetch(
    *, meeting_id: int, membership_id: int, session_key: str | None, after: int | None
) -> KeyPage:
    """The next page of wrapped keys addressed to this session's live device in the
    meeting, after the same re-check as every E2EE frame (still signed in, still allowed
    in the room). In a transaction: the session re-check holds its row."""
    meeting, membership = _room_member(meeting_id, membership_id, session_key)
    device = _sending_device(membership, session_key)
    return keys_for_device(meeting, device, after=after)


def _room_member(
    meeting_id: int, membership_id: int, session_key: str | None
) -> tuple[Meeting, Membership]:
    """The meeting and the membership, re-checked: the session still signed in, the member
    still allowed in the room, the meeting end-to-end encrypted."""
    if not session_key or not session_hold(session_key=session_key):
        raise RoomError("signed_out", "You are signed out.")
    meeting = Meeting.objects.select_related("group").get(pk=meeting_id)
    membership = Membership.objects.select_related("group", "user").filter(pk=membership_id).first()
    if membership is None:
        raise RoomError("not_a_member", _REFUSAL_TEXT["not_a_member"])
    refusal = room_refusal(meeting, membership)
    if refusal:
        raise RoomError(refusal, refusal_text(refusal, membership))
    if not meeting_fix_e2ee(meeting=meeting):
        raise RoomError("invalid_frame", "This meeting is not end-to-end encrypted.")
    return meeting, membership


def _sending_device(membership: Membership, session_key: str, *, lock: bool = False) -> Device:
    devices = Device.objects.filter(
        session_id=session_key, membership=membership, retired_at__isnull=True
    )
    # NO KEY UPDATE: a share from another device to this one only takes KEY SHARE on this
    # row (its foreign key check), which must not wait for this lock, or two devices
    # sharing with each other at once deadlock.
    device = (devices.select_for_update(no_key=True) if lock else devices).first()
    if device is None:
        raise RoomError("device_required", "This browser's device is not registered here yet.")
    return device
