"""Reports, moderation actions, safety flags and the break-glass contact reveal.

Dashboard views, the meeting room's facilitator controls and housekeeping commands all
act through these functions. Each writes its audit event in the same transaction;
sockets and emails hear about it only after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import session_hold
from audit.events import Action
from audit.services import record_event
from board.models import Post
from board.selectors import board_entry_now
from groups.models import CURRENT_STATUSES, Group, Guideline, Membership, Role, Status
from groups.selectors import facilitation_now, membership_refusal
from meetings.e2ee import commitment_opens
from meetings.models import Meeting, Message
from meetings.selectors import device_was_given_key
from meetings.services import message_event, refusal_text
from moderation.models import (
    ActionKind,
    Announcement,
    ContactReveal,
    ModerationAction,
    Report,
    SafetyFlag,
)
from supportgroups.errors import ServiceError
from supportgroups.mail import email_people_on_commit
from supportgroups.realtime import (
    send_board_post_changed,
    send_membership_changed,
    send_room_announcement,
    send_room_message_changed,
)

# Actions that need a rule to cite (reinstating and unmuting don't).
CITING_KINDS = {
    ActionKind.WARN,
    ActionKind.MUTE,
    ActionKind.SUSPEND,
    ActionKind.REMOVE,
    ActionKind.HIDE_MESSAGE,
}

# The longest mute or suspension; anything longer is a removal.
MAX_ACTION_MINUTES = 366 * 24 * 60

# The only steps that last: every other step takes no length (or end).
LASTING_KINDS = {ActionKind.MUTE, ActionKind.SUSPEND}


class ModerationError(ServiceError):
    """A refused report, moderation step, safety flag or reveal."""


# --- reports ----------------------------------------------------------------------------


def report_file(  # noqa: PLR0913
    *,
    actor: User,
    message: Message,
    guideline_number: int,
    note: str = "",
    plaintext: str | None = None,
    franking_key: bytes | None = None,
    session_key: str | None = None,
) -> Report:
    """A member reports a message in a meeting of their group, citing a guideline. The
    reporter must be allowed in the group's rooms now (not suspended, removed or gone, the
    current agreement signed); from the room, ``session_key`` is the reporting socket's
    session, which must still be signed in.

    An end-to-end encrypted message is reported with what the reporter's browser read
    (``plaintext``) and the message's ``franking_key``: the session's device must have
    been given the key that opens that message (a device that came later never read it),
    and they must open the commitment stored with the message (meetings/E2EE.md,
    "Reports"), or nothing is filed and no facilitator sees anything (a commitment that
    does not open is audited)."""
    body = message.body
    if message.epoch is not None:
        # Before the report's transaction: a refusal's audit row must stay.
        body = _verified_plaintext(actor, message, plaintext, franking_key, session_key)
        if body is None:
            raise ModerationError(
                "report_unverifiable",
                "This report could not be checked against the message that was sent, so it "
                "was not filed.",
            )
    return _report_store(
        actor=actor,
        message=message,
        body=body,
        guideline_number=guideline_number,
        note=note,
        session_key=session_key,
    )


@transaction.atomic
def _report_store(  # noqa: PLR0913
    *,
    actor: User,
    message: Message,
    body: str | None,
    guideline_number: int,
    note: str,
    session_key: str | None,
) -> Report:
    reporter = _reporter(actor, message, session_key)
    if message.author_id == reporter.pk:
        raise ModerationError("own_message", "You can't report your own message.")
    guideline = _guideline(reporter.group_id, guideline_number)
    try:
        with transaction.atomic():
            report = Report.objects.create(
                group_id=reporter.group_id,
                meeting_id=message.meeting_id,
                message=message,
                message_seq=message.seq,
                message_body=body,
                reported=message.author,
                reporter=reporter,
                guideline_number=guideline.number,
                guideline_text=guideline.text,
                note=note.strip() or None,
            )
    except IntegrityError:
        raise ModerationError(
            "already_reported", "You have already reported this message."
        ) from None
    record_event(
        action=Action.REPORT_FILED,
        actor=actor,
        target=report,
        group_id=reporter.group_id,
        extra={"rule": guideline.number},
    )
    return report


def _reporter(actor: User, message: Message, session_key: str | None) -> Membership:
    """The reporter's membership, re-checked as every frame of the room is: the session
    still signed in (when the report comes from a socket), and the member allowed in the
    group's rooms now (groups.selectors.membership_refusal)."""
    if session_key is not None and not session_hold(session_key=session_key):
        raise ModerationError("signed_out", "You are signed out.")
    reporter = _current_membership(actor, message.meeting.group_id)
    refusal = membership_refusal(reporter)
    if refusal == "not_a_member":
        raise ModerationError("not_a_member", "That message is not in your group.")
    if refusal:
        raise ModerationError(refusal, refusal_text(refusal, reporter))
    return reporter


@transaction.atomic
def _verified_plaintext(
    actor: User,
    message: Message,
    plaintext: str | None,
    franking_key: bytes | None,
    session_key: str | None,
) -> str | None:
    """The reported text, once it opens the message's commitment (in constant time); None
    (and the attempt audited, committed with nothing else) when it does not. Only a device
    that was given the message's key may claim to have read it: anyone else is refused
    before the commitment is looked at (so no one can test guesses against it)."""
    reporter = _reporter(actor, message, session_key)
    if not device_was_given_key(message, session_key=session_key, membership_id=reporter.pk):
        raise ModerationError(
            "not_a_reader",
            "This browser was not given the key to that message, so it cannot report it.",
        )
    verified = (
        plaintext is not None
        and franking_key is not None
        and message.commitment is not None
        and message.sender_device_id is not None
        and commitment_opens(
            message.commitment,
            franking_key=franking_key,
            body=plaintext,
            meeting_id=message.meeting_id,
            sender_device=message.sender_device_id,
            client_id=message.client_id,
        )
    )
    if not verified:
        record_event(
            action=Action.E2EE_REPORT_UNVERIFIED,
            actor=reporter.user,
            target=message,
            group_id=reporter.group_id,
        )
        return None
    return plaintext


@transaction.atomic
def post_report_file(*, actor: User, post: Post, guideline_number: int, note: str = "") -> Report:
    """A member reports a post on their group's board, citing a guideline: it lands in the
    same queue as the meetings' reports."""
    post = Post.objects.select_related("thread", "author").get(pk=post.pk)
    group_id = post.thread.group_id
    entry = board_entry_now(actor, group_id)
    if entry.refusal:
        raise ModerationError("not_a_member", "That post is not on a board you can use.")
    reporter = entry.membership
    if post.author_id == reporter.pk:
        raise ModerationError("own_message", "You can't report your own post.")
    if post.body is None:
        raise ModerationError("post_gone", "That post has been deleted.")
    guideline = _guideline(group_id, guideline_number)
    try:
        with transaction.atomic():
            report = Report.objects.create(
                group_id=group_id,
                post=post,
                message_body=post.body,
                reported=post.author,
                reporter=reporter,
                guideline_number=guideline.number,
                guideline_text=guideline.text,
                note=note.strip() or None,
            )
    except IntegrityError:
        raise ModerationError("already_reported", "You have already reported this post.") from None
    record_event(
        action=Action.REPORT_FILED,
        actor=actor,
        target=report,
        group_id=group_id,
        extra={"rule": guideline.number, "board": True},
    )
    return report


@transaction.atomic
def report_resolve(
    *,
    report: Report,
    actor: User,
    action: str,
    note: str = "",
    minutes: int | None = None,
    until: datetime | None = None,
    hide_message: bool = False,
) -> Report:
    """Close a report in one decision: "no action", hiding the message, a moderation step
    about its author, or hiding the message *and* a step about its author
    (``hide_message=True`` with ``action`` a step). All of it or nothing: one transaction."""
    report = Report.objects.select_for_update(no_key=True).get(pk=report.pk)
    facilitator = _require_facilitator(actor, report.group_id)
    if report.status != Report.Status.OPEN:
        raise ModerationError("already_resolved", "This report has already been resolved.")
    if action == ActionKind.HIDE_MESSAGE:
        hide_message, action = True, "none"
    if action == "none":
        # No step about the author: a length here would be dropped unseen.
        refuse_a_bad_length(action, minutes, until)
    try:
        if hide_message and report.post_id is not None:
            post_hide(
                post=report.post,
                actor=actor,
                guideline_number=report.guideline_number,
                reason=note,
                report=report,
            )
        elif hide_message:
            if report.message is None:
                raise ModerationError("message_gone", "That message no longer exists.")
            message_hide(
                message=report.message,
                actor=actor,
                guideline_number=report.guideline_number,
                reason=note,
                report=report,
            )
    except ModerationError as refused:
        # Hidden already (another report about it resolved, or hidden in the room) or
        # deleted by its author: nothing more to do for the hide, and no second step
        # about the author; the resolution still says what the facilitator decided.
        if refused.code not in ("already_hidden", "post_gone"):
            raise
    if action != "none":
        if report.reported is None:
            raise ModerationError(
                "author_gone", "The member who wrote it is no longer in the group."
            )
        action_take(
            membership=report.reported,
            actor=actor,
            kind=action,
            guideline_number=report.guideline_number,
            reason=note,
            minutes=minutes,
            until=until,
            report=report,
        )
    # "hide_message", "mute", "hide_message+mute", or "none" (Report.resolution_label reads it).
    steps = [ActionKind.HIDE_MESSAGE.value] if hide_message else []
    steps += [action] if action != "none" else []
    resolution = "+".join(steps) or "none"
    report.status = Report.Status.RESOLVED
    report.resolved_at = timezone.now()
    report.resolved_by = facilitator
    report.resolution = resolution
    report.resolution_note = note.strip() or None
    # Resolved: the copy of the message follows the room's retention again (i.e. goes).
    report.message_body = None
    report.save(
        update_fields=[
            "status",
            "resolved_at",
            "resolved_by",
            "resolution",
            "resolution_note",
            "message_body",
        ]
    )
    record_event(
        action=Action.REPORT_RESOLVED,
        actor=actor,
        target=report,
        group_id=report.group_id,
        extra={"resolution": resolution},
    )
    return report


# --- actions on a membership ------------------------------------------------------------


@transaction.atomic
def action_take(
    *,
    membership: Membership,
    actor: User,
    kind: str,
    guideline_number: int | None = None,
    reason: str = "",
    minutes: int | None = None,
    until: datetime | None = None,
    report: Report | None = None,
) -> ModerationAction:
    membership = (
        Membership.objects.select_for_update(of=("self",), no_key=True)
        .select_related("user")
        .get(pk=membership.pk)
    )
    facilitator = _require_facilitator(actor, membership.group_id)
    if kind not in ActionKind.values or kind == ActionKind.HIDE_MESSAGE:
        raise ModerationError("unknown_action", "Unknown action.")
    if membership.pk == facilitator.pk:
        raise ModerationError("self", "You can't take moderation steps about yourself.")
    if membership.role == Role.FACILITATOR and kind in (
        ActionKind.MUTE,
        ActionKind.SUSPEND,
        ActionKind.REMOVE,
    ):
        raise ModerationError(
            "facilitator_protected",
            "Facilitators can't be muted, suspended or removed here; "
            "an admin can change their role first.",
        )
    guideline = None
    if kind in CITING_KINDS:
        if guideline_number is None:
            raise ModerationError(
                "guideline_required", "Please choose the guideline this is about."
            )
        guideline = _guideline(membership.group_id, guideline_number)
    refuse_a_bad_length(kind, minutes, until)
    if minutes is not None:
        if minutes > MAX_ACTION_MINUTES:
            # Also keeps the end date inside what datetimes can hold (a room frame may
            # carry any whole number).
            raise ModerationError(
                "too_long", "That is too long: at most a year (or remove the member)."
            )
        until = timezone.now() + timedelta(minutes=minutes)
    if until is not None and until <= timezone.now():
        raise ModerationError("end_in_past", "The end of the action must be in the future.")
    if kind == ActionKind.SUSPEND and until is None:
        raise ModerationError(
            "end_required", "A suspension needs an end date (remove the member instead)."
        )
    _apply(membership, kind, until)
    entry = ModerationAction.objects.create(
        group_id=membership.group_id,
        membership=membership,
        kind=kind,
        guideline_number=guideline.number if guideline else None,
        guideline_text=guideline.text if guideline else "",
        reason=reason.strip() or None,
        until=until,
        actor=facilitator,
        report=report,
    )
    record_event(
        action=Action.MODERATION_ACTION_TAKEN,
        actor=actor,
        subject=membership.user,
        target=entry,
        group_id=membership.group_id,
        extra={"kind": kind, "rule": entry.guideline_number, "minutes": minutes},
    )
    send_membership_changed(user_id=membership.user_id, group_id=membership.group_id)
    return entry


def refuse_a_bad_length(kind: str, minutes: int | None, until: datetime | None) -> None:
    """A length only for a step that lasts, and a whole number of minutes: said, not
    dropped (a facilitator who sends "warn for a week" meant something else)."""
    if kind not in LASTING_KINDS and (minutes is not None or until is not None):
        raise ModerationError(
            "length_not_applicable",
            "Only a mute or a suspension lasts: this step takes no length.",
        )
    if minutes is not None and (
        isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1
    ):
        raise ModerationError("invalid_length", "A length is a whole number of minutes.")


def _apply(membership: Membership, kind: str, until: datetime | None) -> None:
    current = membership.effective_status()
    if kind == ActionKind.WARN:
        return
    if kind == ActionKind.MUTE:
        if current not in (Status.ACTIVE, Status.MUTED):
            raise ModerationError("not_active", "Only active members can be muted.")
        membership.status, membership.muted_until = Status.MUTED, until
    elif kind == ActionKind.UNMUTE:
        if membership.status != Status.MUTED:
            raise ModerationError("not_muted", "This member is not muted.")
        membership.status, membership.muted_until = Status.ACTIVE, None
    elif kind == ActionKind.SUSPEND:
        if current not in (Status.ACTIVE, Status.MUTED, Status.SUSPENDED):
            raise ModerationError("not_active", "Only active members can be suspended.")
        membership.status, membership.suspended_until = Status.SUSPENDED, until
    elif kind == ActionKind.REMOVE:
        if membership.status in (Status.REMOVED, Status.LEFT):
            raise ModerationError("not_a_member", "This person is no longer in the group.")
        membership.status = Status.REMOVED
    elif kind == ActionKind.REINSTATE:
        if membership.status not in (Status.MUTED, Status.SUSPENDED, Status.REMOVED):
            raise ModerationError("nothing_to_reinstate", "There is nothing to reinstate.")
        membership.status = Status.ACTIVE
        membership.muted_until = membership.suspended_until = None
    membership.save(update_fields=["status", "muted_until", "suspended_until"])


@transaction.atomic
def message_hide(
    *,
    message: Message,
    actor: User,
    guideline_number: int,
    reason: str = "",
    report: Report | None = None,
) -> ModerationAction:
    # Lock only the message row: PostgreSQL can't lock the nullable side of the outer join
    # to the author (gone once the account is deleted).
    message = (
        Message.objects.select_for_update(of=("self",), no_key=True)
        .select_related("meeting", "author")
        .get(pk=message.pk)
    )
    facilitator = _require_facilitator(actor, message.meeting.group_id)
    if message.author is None:
        # Its account was deleted and its text with it; the step would otherwise be
        # recorded as taken about the facilitator.
        raise ModerationError(
            "author_gone", "This message was removed with its author's account already."
        )
    if message.hidden_at is not None:
        # A second hide (two facilitators at once, a second report) would record a
        # second step about the author for one message.
        raise ModerationError("already_hidden", "That message is already hidden.")
    guideline = _guideline(message.meeting.group_id, guideline_number)
    message.hidden_at = timezone.now()
    message.hidden_by = facilitator
    message.save(update_fields=["hidden_at", "hidden_by"])
    entry = _hide_recorded(
        actor=actor,
        facilitator=facilitator,
        author=message.author,
        guideline=guideline,
        reason=reason,
        report=report,
        extra={"seq": message.seq},
        message=message,
    )
    send_room_message_changed(meeting_id=message.meeting_id, message=message_event(message))
    return entry


@transaction.atomic
def post_hide(
    *,
    post: Post,
    actor: User,
    guideline_number: int,
    reason: str = "",
    report: Report | None = None,
) -> ModerationAction:
    """A facilitator hides a post on the board: it reads "Hidden by a facilitator." to
    everyone, the author sees the step with its rule, as for a message in a meeting."""
    post = (
        Post.objects.select_for_update(of=("self",), no_key=True)
        .select_related("thread", "author")
        .get(pk=post.pk)
    )
    group_id = post.thread.group_id
    facilitator = _require_facilitator(actor, group_id)
    if post.author is None:
        raise ModerationError(
            "author_gone", "This post was removed with its author's account already."
        )
    if post.body is None:
        raise ModerationError("post_gone", "That post has been deleted.")
    if post.hidden_at is not None:
        # As for a message: one step about the author per hidden post.
        raise ModerationError("already_hidden", "That post is already hidden.")
    guideline = _guideline(group_id, guideline_number)
    post.hidden_at = timezone.now()
    post.hidden_by = facilitator
    post.save(update_fields=["hidden_at", "hidden_by"])
    entry = _hide_recorded(
        actor=actor,
        facilitator=facilitator,
        author=post.author,
        guideline=guideline,
        reason=reason,
        report=report,
        extra={"thread": post.thread.number, "post": post.number},
        post=post,
    )
    send_board_post_changed(
        group_id=group_id, thread_number=post.thread.number, post_number=post.number
    )
    return entry


def _hide_recorded(
    *,
    actor: User,
    facilitator: Membership,
    author: Membership,
    guideline: Guideline,
    reason: str,
    report: Report | None,
    extra: dict,
    **hidden: Message | Post,
) -> ModerationAction:
    """The step and its audit row for hiding a meeting message or a board post (``hidden``
    is ``message=`` or ``post=``): one record, so both read the same in every history."""
    entry = ModerationAction.objects.create(
        group_id=author.group_id,
        membership=author,
        kind=ActionKind.HIDE_MESSAGE,
        guideline_number=guideline.number,
        guideline_text=guideline.text,
        reason=reason.strip() or None,
        actor=facilitator,
        report=report,
        **hidden,
    )
    record_event(
        action=Action.MODERATION_ACTION_TAKEN,
        actor=actor,
        subject=author.user,
        target=entry,
        group_id=author.group_id,
        extra={"kind": ActionKind.HIDE_MESSAGE.value, "rule": guideline.number, **extra},
    )
    return entry


@dataclass(frozen=True)
class LapsedResult:
    lifted: int


@transaction.atomic
def lapsed_actions_lift(*, now: datetime | None = None) -> LapsedResult:
    """Record that mutes and suspensions whose time is up have ended, and tell sockets.
    (Access checks already treat them as ended; this makes the record match.)"""
    now = now or timezone.now()
    lapsed = list(
        Membership.objects.select_for_update(no_key=True).filter(
            status=Status.MUTED, muted_until__lte=now
        )
    ) + list(
        Membership.objects.select_for_update(no_key=True).filter(
            status=Status.SUSPENDED, suspended_until__lte=now
        )
    )
    for membership in lapsed:
        kind = "mute" if membership.status == Status.MUTED else "suspension"
        membership.status = Status.ACTIVE
        membership.muted_until = membership.suspended_until = None
        membership.save(update_fields=["status", "muted_until", "suspended_until"])
        record_event(
            action=Action.MODERATION_LAPSED,
            subject=membership.user,
            target=membership,
            group_id=membership.group_id,
            extra={"ended": kind},
        )
        send_membership_changed(user_id=membership.user_id, group_id=membership.group_id)
    return LapsedResult(lifted=len(lapsed))


# --- safety -----------------------------------------------------------------------------


@transaction.atomic
def safety_flag_raise(
    *, actor: User, group: Group, about: Membership | None, note: str = ""
) -> SafetyFlag:
    """Alert the group's facilitators now (dashboard and email). ``about`` None = oneself."""
    raised_by = _current_membership(actor, group.pk)
    if raised_by is None:
        raise ModerationError("not_a_member", "You are not in this group.")
    about = about or raised_by
    if about.group_id != raised_by.group_id:
        raise ModerationError("not_in_group", "That person is not in your group.")
    flag = SafetyFlag.objects.create(
        group_id=raised_by.group_id, raised_by=raised_by, about=about, note=note.strip() or None
    )
    record_event(
        action=Action.SAFETY_FLAG_RAISED,
        actor=actor,
        subject=about.user,
        target=flag,
        group_id=raised_by.group_id,
        extra={"about_self": about.pk == raised_by.pk},
    )
    facilitators = list(
        User.objects.filter(
            memberships__group_id=raised_by.group_id,
            memberships__role=Role.FACILITATOR,
            memberships__status__in=[Status.ACTIVE, Status.MUTED],
        ).exclude(pk=raised_by.user_id)
    )
    # The dashboard of all their groups, never this group's address: an email (its
    # preview, a mail server's log) must not say which group someone is in.
    link = f"{settings.SITE_URL}{reverse('moderation:dashboard')}"
    email_people_on_commit(
        people=facilitators,
        subject="A safety concern needs you",
        body=f"A member raised a safety concern in one of your groups. Please look now:\n{link}\n",
    )
    return flag


@transaction.atomic
def safety_flag_handle(*, flag: SafetyFlag, actor: User, note: str = "") -> SafetyFlag:
    flag = SafetyFlag.objects.select_for_update(no_key=True).get(pk=flag.pk)
    facilitator = _require_facilitator(actor, flag.group_id)
    if flag.status != SafetyFlag.Status.OPEN:
        raise ModerationError("already_handled", "This concern is already marked as handled.")
    flag.status = SafetyFlag.Status.HANDLED
    flag.handled_at = timezone.now()
    flag.handled_by = facilitator
    flag.handled_note = note.strip() or None
    flag.save(update_fields=["status", "handled_at", "handled_by", "handled_note"])
    record_event(
        action=Action.SAFETY_FLAG_HANDLED, actor=actor, target=flag, group_id=flag.group_id
    )
    return flag


@dataclass(frozen=True)
class RevealedContact:
    phone: str | None
    emergency_contact: str | None


@transaction.atomic
def contact_reveal(
    *, membership: Membership, actor: User, reason: str, ip: str | None = None
) -> RevealedContact:
    """Break glass: show a member's phone and emergency contact to a facilitator.

    Needs a written reason; the member sees that it happened (not the reason's author's
    identity), and every admin is told.
    """
    facilitator = _require_facilitator(actor, membership.group_id)
    if len(reason.strip()) < 10:
        raise ModerationError(
            "reason_required", "Please write why you need these details (at least a sentence)."
        )
    if not Membership.objects.get(pk=membership.pk).is_current:
        raise ModerationError("not_a_member", "This person is no longer in the group.")
    user = User.objects.get(pk=membership.user_id)
    # The reason is kept (encrypted) for the group's facilitators and for admins auditing.
    reveal = ContactReveal.objects.create(
        group_id=membership.group_id,
        membership=membership,
        actor=facilitator,
        reason=reason.strip(),
    )
    record_event(
        action=Action.CONTACT_DETAILS_REVEALED,
        actor=actor,
        subject=user,
        target=reveal,
        group_id=membership.group_id,
        ip=ip,
    )
    # Admins are emailed by accounts.alerts once this event is committed.
    return RevealedContact(phone=user.phone, emergency_contact=user.emergency_contact)


# --- meeting room -----------------------------------------------------------------------


@transaction.atomic
def announcement_pin(*, meeting: Meeting, actor: User, text: str) -> Announcement:
    facilitator = _require_facilitator(actor, meeting.group_id)
    text = text.strip()
    if not text:
        raise ModerationError("empty_announcement", "The announcement is empty.")
    announcement = Announcement.objects.create(meeting=meeting, text=text[:500], author=facilitator)
    record_event(
        action=Action.ANNOUNCEMENT_PINNED,
        actor=actor,
        target=announcement,
        group_id=meeting.group_id,
    )
    send_room_announcement(meeting_id=meeting.pk, text=announcement.text)
    return announcement


# --- helpers ----------------------------------------------------------------------------


def _require_facilitator(actor: User, group_id: int) -> Membership:
    """The actor's facilitator place in the group: services re-check the role, whatever
    the page or socket checked before (a facilitator may have been demoted since)."""
    facilitator = facilitation_now(actor, group_id)
    if facilitator is None:
        raise ModerationError("not_facilitator", "Only this group's facilitators can do that.")
    return facilitator


def _current_membership(actor: User, group_id: int) -> Membership | None:
    return (
        Membership.objects.select_related("user", "group")
        .filter(user_id=actor.pk, group_id=group_id, status__in=CURRENT_STATUSES)
        .first()
    )


def _guideline(group_id: int, number: int) -> Guideline:
    guideline = Guideline.objects.filter(group_id=group_id, number=number).first()
    if guideline is None:
        raise ModerationError("unknown_guideline", "Please choose one of the group's guidelines.")
    return guideline
