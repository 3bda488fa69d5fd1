"""Reading the log for the admins' security signals, with the accounts it names; and
the security incidents, their people, counts and deadline."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import BackupCodeDevice, TOTPDevice, User
from accounts.selectors import user_requires_two_factor
from audit.events import Action
from audit.models import Event
from board.models import Post
from console.models import Incident, SecurityNotice
from groups.models import CURRENT_STATUSES, Membership, Role
from meetings.models import Message
from screening.models import Application


@dataclass(frozen=True)
class Signals:
    failed_logins: int
    failed_by_ip: list[tuple[str, int]]  # (ip blind index, count)
    failed_by_account: list[tuple[int, int]]  # (user id, count)
    rate_limit_hits: int
    rate_limits_by_ip: list[tuple[str, int]]
    throttled_accounts: list[tuple[int, int]]  # (user id, refused sign-ins)
    throttled_by_ip: list[tuple[str, int]]
    locked_devices: int
    two_factor_disabled: list[Event]
    appointments: list[Event]
    reveals: list[Event]
    since: datetime


def security_signals(*, now: datetime | None = None, hours: int = 24) -> Signals:
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    # Bounded on both sides, so asking about an earlier moment ignores what came after it.
    recent = Event.objects.filter(created_at__gte=since, created_at__lte=now)
    failed = recent.filter(action=Action.LOGIN_FAILED)
    limited = recent.filter(action=Action.RATE_LIMIT_HIT)
    throttled = recent.filter(action=Action.LOGIN_THROTTLED)
    locked = sum(
        model.objects.filter(throttling_failure_count__gte=3).count()
        for model in (TOTPDevice, BackupCodeDevice)
    )
    return Signals(
        failed_logins=failed.count(),
        failed_by_ip=_top(failed.exclude(ip_index=""), "ip_index"),
        failed_by_account=_top(failed.exclude(subject_id=None), "subject_id"),
        rate_limit_hits=limited.count(),
        rate_limits_by_ip=_top(limited.exclude(ip_index=""), "ip_index"),
        throttled_accounts=_top(throttled.exclude(subject_id=None), "subject_id"),
        throttled_by_ip=_top(throttled.exclude(ip_index=""), "ip_index"),
        locked_devices=locked,
        two_factor_disabled=list(
            recent.filter(action=Action.TWO_FACTOR_DISABLED).order_by("-seq")[:20]
        ),
        appointments=list(
            recent.filter(
                action__in=[Action.FACILITATOR_APPOINTED, Action.ADMIN_APPOINTED]
            ).order_by("-seq")[:20]
        ),
        reveals=list(recent.filter(action=Action.CONTACT_DETAILS_REVEALED).order_by("-seq")[:20]),
        since=since,
    )


def recent_events_about(user: User, action: Action, *, now: datetime, hours: int = 24) -> int:
    """How many events of this kind concerned the person in the hours before ``now``
    (what a security signal counted)."""
    return Event.objects.filter(
        action=action,
        subject_id=user.pk,
        created_at__gte=now - timedelta(hours=hours),
        created_at__lte=now,
    ).count()


def _top(events: QuerySet[Event], field: str, limit: int = 10) -> list[tuple]:
    return list(events.values_list(field).annotate(n=Count("pk")).order_by("-n")[:limit])


# --- incidents -------------------------------------------------------------------------


def incidents_list() -> QuerySet[Incident]:
    return Incident.objects.select_related("opened_by").order_by("-opened_at")


def incident_or_404(incident_id: int) -> Incident:
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        raise Http404
    return incident


def incident_group_ids(incident: Incident) -> list[int]:
    """The affected groups, and the groups an affected account facilitates: whoever holds
    a facilitator's account could read what that group's members shared with it."""
    facilitated = Membership.objects.filter(
        user__in=incident.affected_users.all(),
        role=Role.FACILITATOR,
        status__in=CURRENT_STATUSES,
    ).values_list("group_id", flat=True)
    return sorted(set(incident.affected_groups.values_list("pk", flat=True)) | set(facilitated))


def incident_members(incident: Incident) -> list[User]:
    """Everyone the incident affects: the affected accounts and the current members of
    the affected groups and of the groups an affected account facilitates, each once,
    active accounts only."""
    group_ids = incident_group_ids(incident)
    in_groups = Membership.objects.filter(
        group_id__in=group_ids, status__in=CURRENT_STATUSES
    ).values("user_id")
    return list(
        User.objects.filter(
            Q(pk__in=incident.affected_users.values("pk")) | Q(pk__in=in_groups),
            is_active=True,
        ).order_by("pk")
    )


def incident_staff(incident: Incident, *, actor: User | None = None) -> list[User]:
    """The affected accounts that hold a role needing a second factor (admins and
    facilitators): whom a credential renewal applies to (never the acting admin)."""
    staff = [
        user
        for user in incident.affected_users.filter(is_active=True).order_by("pk")
        if user_requires_two_factor(user)
    ]
    return [user for user in staff if actor is None or user.pk != actor.pk]


def incident_events(incident: Incident) -> QuerySet[Event]:
    return Event.objects.filter(target_type=Incident._meta.label_lower, target_id=str(incident.pk))


# The incident's own steps (the per-person events of each step are counted, not listed).
TIMELINE_ACTIONS = (
    Action.INCIDENT_OPENED,
    Action.INCIDENT_SESSIONS_ENDED,
    Action.INCIDENT_CREDENTIALS_RENEWAL_REQUIRED,
    Action.INCIDENT_MEETINGS_HELD,
    Action.INCIDENT_MEETINGS_HOLD_LIFTED,
    Action.INCIDENT_KEY_ROTATION_STARTED,
    Action.ENCRYPTION_KEYS_ROTATED,
    Action.INCIDENT_MEMBERS_NOTIFIED,
    Action.INCIDENT_REPORT_EXPORTED,
    Action.INCIDENT_REGULATOR_NOTIFIED,
    Action.INCIDENT_CLOSED,
)


def incident_timeline(incident: Incident) -> list[Event]:
    """The incident's steps, oldest first."""
    return list(
        incident_events(incident)
        .filter(action__in=[int(a) for a in TIMELINE_ACTIONS])
        .order_by("seq")
    )


@dataclass(frozen=True)
class Deadline:
    due: datetime
    met: bool | None  # None: the regulator has not been told yet
    left: timedelta  # negative once overdue

    @property
    def overdue(self) -> bool:
        return self.met is None and self.left < timedelta(0)

    @property
    def left_text(self) -> str:
        """ "61 h 12 min" (how long is left, or how long overdue)."""
        minutes = int(abs(self.left).total_seconds() // 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes} min"


def incident_deadline(incident: Incident, *, now: datetime | None = None) -> Deadline:
    now = now or timezone.now()
    due = incident.regulator_deadline
    met = None
    if incident.regulator_notified_at is not None:
        met = incident.regulator_notified_at <= due
    return Deadline(due=due, met=met, left=due - now)


@dataclass(frozen=True)
class IncidentCounts:
    """What a regulator asks: how many people and records are affected (counts only)."""

    people: int
    accounts_named: int
    staff_accounts: int
    groups: int
    with_recovery_email: int
    with_phone: int
    with_emergency_contact: int
    memberships: int
    applications: int
    chat_messages: int
    board_posts: int
    notices_sent: int
    notices_emailed: int
    notices_read: int

    @property
    def records(self) -> int:
        return (
            self.with_recovery_email
            + self.with_phone
            + self.with_emergency_contact
            + self.memberships
            + self.applications
            + self.chat_messages
            + self.board_posts
        )


def incident_counts(incident: Incident) -> IncidentCounts:
    people = incident_members(incident)
    person_ids = [p.pk for p in people]
    group_ids = incident_group_ids(incident)
    accounts = User.objects.filter(pk__in=person_ids)
    notices = incident.notices.all()
    return IncidentCounts(
        people=len(people),
        accounts_named=incident.affected_users.count(),
        staff_accounts=len(incident_staff(incident)),
        groups=len(group_ids),
        with_recovery_email=accounts.filter(recovery_email__isnull=False).count(),
        with_phone=accounts.filter(phone__isnull=False).count(),
        with_emergency_contact=accounts.filter(emergency_contact__isnull=False).count(),
        memberships=Membership.objects.filter(group_id__in=group_ids).count(),
        applications=Application.objects.filter(group_id__in=group_ids).count(),
        chat_messages=Message.objects.filter(meeting__group_id__in=group_ids).count(),
        board_posts=Post.objects.filter(thread__group_id__in=group_ids).count(),
        notices_sent=notices.count(),
        notices_emailed=notices.filter(emailed=True).count(),
        notices_read=notices.filter(read_at__isnull=False).count(),
    )


def unread_security_notices_fact() -> Exists:
    """Whether the person has unread security notices, as an expression about a user row
    (OuterRef "pk"), for the page's facts (accounts/facts.py): most pages then read no
    notices at all."""
    return Exists(SecurityNotice.objects.filter(user=OuterRef("pk"), read_at__isnull=True))


def unread_security_notices(user: User) -> list[SecurityNotice]:
    return list(
        SecurityNotice.objects.filter(user=user, read_at__isnull=True)
        .select_related("incident")
        .order_by("created_at")
    )
