"""What a facilitator's dashboard shows, in a fixed number of queries whatever the size."""

from dataclasses import dataclass, field

from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from groups.models import CURRENT_STATUSES, AgreementVersion, Group, Membership, Role, Signature
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


def members_with_signature_state(groups) -> QuerySet[Membership]:  # noqa: ANN001
    latest = AgreementVersion.objects.filter(group=OuterRef(OuterRef("group"))).order_by("-version")
    return Membership.objects.filter(group__in=groups, status__in=CURRENT_STATUSES).annotate(
        signed_current=Exists(
            Signature.objects.filter(membership=OuterRef("pk"), agreement=latest.values("pk")[:1])
        )
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


def open_reports(group: Group) -> QuerySet[Report]:
    return Report.objects.filter(group=group, status=Report.Status.OPEN).select_related(
        "reporter", "reported"
    )


def open_flags(group: Group) -> QuerySet[SafetyFlag]:
    return SafetyFlag.objects.filter(group=group, status=SafetyFlag.Status.OPEN).select_related(
        "raised_by", "about"
    )


def moderation_log(group: Group, *, limit: int = 30) -> QuerySet[ModerationAction]:
    return ModerationAction.objects.filter(group=group).select_related("membership", "actor")[
        :limit
    ]


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
