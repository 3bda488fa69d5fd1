"""What a facilitator's dashboard shows, in a fixed number of queries whatever the size."""

from dataclasses import dataclass, field

from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.utils import timezone

from groups.models import CURRENT_STATUSES, Group, Membership, Role
from groups.selectors import signed_current_agreement
from meetings.models import Meeting
from moderation.models import ActionKind, ModerationAction, Report, SafetyFlag
from screening.models import Application, ApplicationStatus


def facilitated_groups(user) -> QuerySet[Group]:  # noqa: ANN001
    return Group.objects.filter(
        memberships__user=user,
        memberships__role=Role.FACILITATOR,
        memberships__status__in=CURRENT_STATUSES,
    ).order_by("name")


@dataclass
class GroupSummary:
    group: Group
    open_reports: int = 0
    open_flags: int = 0
    waiting_applications: int = 0
    oldest_application_at: object = None
    unsigned_members: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def needs_attention(self) -> int:
        return self.open_reports + self.open_flags + self.waiting_applications


def group_summaries(groups: list[Group]) -> list[GroupSummary]:
    """Counts for the combined view: one query per kind, for all groups at once."""
    ids = [g.pk for g in groups]
    reports = dict(
        Report.objects.filter(group_id__in=ids, status=Report.Status.OPEN)
        .values_list("group_id")
        .annotate(n=Count("pk"))
    )
    flags = dict(
        SafetyFlag.objects.filter(group_id__in=ids, status=SafetyFlag.Status.OPEN)
        .values_list("group_id")
        .annotate(n=Count("pk"))
    )
    applications = {
        row["group_id"]: row
        for row in Application.objects.filter(group_id__in=ids, status=ApplicationStatus.SUBMITTED)
        .values("group_id")
        .annotate(n=Count("pk"), oldest=Min("submitted_at"))
    }
    unsigned = dict(
        members_with_signature_state(Group.objects.filter(pk__in=ids))
        .filter(signed_current=False)
        .values_list("group_id")
        .annotate(n=Count("pk"))
    )
    return [
        GroupSummary(
            group=g,
            open_reports=reports.get(g.pk, 0),
            open_flags=flags.get(g.pk, 0),
            waiting_applications=applications.get(g.pk, {}).get("n", 0),
            oldest_application_at=applications.get(g.pk, {}).get("oldest"),
            unsigned_members=unsigned.get(g.pk, 0),
        )
        for g in groups
    ]


def waiting_applications(group: Group) -> dict:
    """How many applications wait for a decision in one group, and since when."""
    return Application.objects.filter(group=group, status=ApplicationStatus.SUBMITTED).aggregate(
        count=Count("pk"), oldest=Min("submitted_at")
    )


def members_with_signature_state(groups) -> QuerySet[Membership]:  # noqa: ANN001
    return Membership.objects.filter(group__in=groups, status__in=CURRENT_STATUSES).annotate(
        signed_current=signed_current_agreement()
    )


def dashboard_members(group: Group) -> QuerySet[Membership]:
    """Member list: pseudonym, status, warnings, joined, last attended (no N+1)."""
    return (
        members_with_signature_state([group])
        .annotate(
            warnings=Count(
                "moderation_actions",
                filter=Q(moderation_actions__kind=ActionKind.WARN),
                distinct=True,
            ),
            last_attended=Max("attendance__last_seen_at"),
        )
        .order_by("pseudonym")
    )


# The dashboard's lists are read-only and can be long, so they carry the pseudonyms they
# show as plain columns instead of whole related memberships, and leave out the encrypted
# texts they do not show (each costs a decryption per row). Detail pages load everything.


def open_reports(group: Group) -> QuerySet[Report]:
    return (
        Report.objects.filter(group=group, status=Report.Status.OPEN)
        .defer("message_body", "note", "resolution_note")
        .annotate(
            reported_pseudonym=F("reported__pseudonym"),
            reporter_pseudonym=F("reporter__pseudonym"),
        )
    )


def open_flags(group: Group) -> QuerySet[SafetyFlag]:
    return (
        SafetyFlag.objects.filter(group=group, status=SafetyFlag.Status.OPEN)
        .defer("handled_note")
        .annotate(
            about_pseudonym=F("about__pseudonym"),
            raised_by_pseudonym=F("raised_by__pseudonym"),
        )
    )


def moderation_log(group: Group, *, limit: int = 30) -> QuerySet[ModerationAction]:
    return (
        ModerationAction.objects.filter(group=group)
        .defer("reason")
        .annotate(
            member_pseudonym=F("membership__pseudonym"),
            actor_pseudonym=F("actor__pseudonym"),
        )[:limit]
    )


def upcoming(group: Group, *, limit: int = 5) -> QuerySet[Meeting]:
    return Meeting.objects.filter(
        group=group, ends_at__gt=timezone.now(), closed_at__isnull=True
    ).order_by("starts_at")[:limit]


def actions_about_user(user) -> QuerySet[ModerationAction]:  # noqa: ANN001
    """Every step taken about this person, in every group they are in, with the reason."""
    return (
        ModerationAction.objects.filter(membership__user=user)
        .select_related("group", "membership")
        .order_by("-created_at")
    )


def seqs_reported_by(membership: Membership, meeting: Meeting) -> set[int]:
    """The messages of this meeting this member reported, so the room still shows
    "Reported" on them after a reload."""
    return set(
        Report.objects.filter(meeting=meeting, reporter=membership).values_list(
            "message_seq", flat=True
        )
    )


def latest_mute(membership: Membership) -> ModerationAction | None:
    """The step that muted this member (for the rule and reason the room shows them)."""
    return (
        ModerationAction.objects.filter(membership=membership, kind=ActionKind.MUTE)
        .order_by("-created_at")
        .first()
    )
