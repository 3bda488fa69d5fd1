"""What a facilitator's dashboard shows, in a fixed number of queries whatever the size."""

from dataclasses import dataclass, field

from django.db.models import Count, F, Min, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce

from groups.models import CURRENT_STATUSES, Group, Membership, Role
from groups.selectors import signed_current_agreement
from meetings.models import Attendance, Meeting
from meetings.selectors import next_meetings, upcoming  # noqa: F401 - the dashboard's (and tests')
from moderation.models import ActionKind, ModerationAction, Report, SafetyFlag
from screening.models import Application, ApplicationStatus
from supportgroups.compiled_query import CompiledQuery


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
    return Membership.objects.filter(group__in=groups, status__in=CURRENT_STATUSES).annotate(
        signed_current=signed_current_agreement()
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


def moderation_log(group: Group, *, limit: int | None = 30) -> QuerySet[ModerationAction]:
    log = (
        ModerationAction.objects.filter(group=group)
        .defer("reason")
        .annotate(
            member_pseudonym=F("membership__pseudonym"),
            actor_pseudonym=F("actor__pseudonym"),
        )
    )
    return log if limit is None else log[:limit]


# --- the dashboard's "newest few" and the two full lists, each in one query -------------------

# How many of each kind the dashboard shows before "see all".
NEWEST_FEW = 5
# Rows per page of the member list and the moderation log.
PAGE_SIZE = 50


def newest_reports(group: Group, *, limit: int | None = NEWEST_FEW) -> QuerySet[Report]:
    """Open reports of any kind that land in the group's queue, newest first."""
    return open_reports(group).order_by("-created_at", "-pk")[:limit]


def newest_flags(group: Group, *, limit: int | None = NEWEST_FEW) -> QuerySet[SafetyFlag]:
    return open_flags(group).order_by("-created_at", "-pk")[:limit]


def newest_applications(group: Group, *, limit: int | None = NEWEST_FEW) -> QuerySet[Application]:
    return (
        Application.objects.filter(group=group, status=ApplicationStatus.SUBMITTED)
        .only("pk", "group_id", "submitted_at")
        .order_by("-submitted_at", "-pk")[:limit]
    )


def newest_unsigned(group: Group, *, limit: int | None = NEWEST_FEW) -> QuerySet[Membership]:
    return (
        members_with_signature_state([group])
        .filter(signed_current=False)
        .only("pk", "pseudonym", "joined_at")
        .order_by("-joined_at", "-pk")[:limit]
    )


def _with_total(rows: QuerySet) -> QuerySet:
    """``rows`` (filtered, ordered, not yet sliced), each carrying ``total``: how many rows
    the filter matched before any LIMIT (``COUNT(*) OVER ()``). A "newest few" list then
    brings its own count, instead of a count query beside it."""
    return rows.annotate(total=Window(Count("pk")))


def _total(rows: list) -> int:
    return rows[0].total if rows else 0


def _newest_flags_with_total(group_id: int) -> QuerySet[SafetyFlag]:
    return _with_total(newest_flags(group_id, limit=None))[:NEWEST_FEW]


def _newest_reports_with_total(group_id: int) -> QuerySet[Report]:
    return _with_total(newest_reports(group_id, limit=None))[:NEWEST_FEW]


def _newest_applications_with_total(group_id: int) -> QuerySet[Application]:
    return _with_total(newest_applications(group_id, limit=None)).annotate(
        oldest=Window(Min("submitted_at"))
    )[:NEWEST_FEW]


def _newest_unsigned_with_total(group_id: int) -> QuerySet[Membership]:
    return _with_total(newest_unsigned(group_id, limit=None))[:NEWEST_FEW]


# The dashboard's statements, compiled once per process (supportgroups/compiled_query.py):
# building them cost more than running them.
_NEWEST_FLAGS = CompiledQuery(_newest_flags_with_total, group_id=int)
_NEWEST_REPORTS = CompiledQuery(_newest_reports_with_total, group_id=int)
_NEWEST_APPLICATIONS = CompiledQuery(_newest_applications_with_total, group_id=int)
_NEWEST_UNSIGNED = CompiledQuery(_newest_unsigned_with_total, group_id=int)


def needs_you_now(group: Group) -> tuple[GroupSummary, dict[str, list]]:
    """The "needs you now" page's counts and newest few of each kind: one query per kind,
    each list carrying its kind's count (``_with_total``)."""
    flags = _NEWEST_FLAGS.run(group_id=group.pk)
    reports = _NEWEST_REPORTS.run(group_id=group.pk)
    applications = _NEWEST_APPLICATIONS.run(group_id=group.pk)
    unsigned = _NEWEST_UNSIGNED.run(group_id=group.pk)
    counts = GroupSummary(
        group=group,
        open_reports=_total(reports),
        open_flags=_total(flags),
        waiting_applications=_total(applications),
        oldest_application_at=applications[0].oldest if applications else None,
        unsigned_members=_total(unsigned),
    )
    lists = {"flags": flags, "reports": reports, "applications": applications}
    return counts, {**lists, "unsigned": unsigned}


def member_page(
    group: Group, *, status: str = "", name: str = "", after: int | None = None
) -> list[Membership]:
    """One page of the member list in pseudonym order, ``PAGE_SIZE + 1`` rows (the extra
    row only says there is a next page). Keyset-paged: ``after`` is the last row's id, and
    the database finds its place from it, so page 100 costs what page 1 does."""
    if not (status or name or after is not None):
        return _FIRST_MEMBERS.run(group_id=group.pk)
    members = members_with_signature_state([group])
    if status:
        members = members.filter(status=status)
    if name:
        members = members.filter(pseudonym__icontains=name)
    if after is not None:
        last = Membership.objects.filter(pk=after, group=group).values("pseudonym")[:1]
        members = members.filter(
            Q(pseudonym__gt=Subquery(last)) | Q(pseudonym=Subquery(last), pk__gt=after)
        )
    return list(_member_rows(members))


def _member_rows(members: QuerySet[Membership]) -> QuerySet[Membership]:
    # Per-row subqueries rather than joins: only the page's rows are counted.
    warnings = (
        ModerationAction.objects.filter(membership=OuterRef("pk"), kind=ActionKind.WARN)
        .order_by()
        .values("membership")
        .annotate(n=Count("pk"))
        .values("n")
    )
    last_attended = (
        Attendance.objects.filter(membership=OuterRef("pk"))
        .order_by("-last_seen_at")
        .values("last_seen_at")[:1]
    )
    return members.annotate(
        warnings=Coalesce(Subquery(warnings), 0),
        last_attended=Subquery(last_attended),
    ).order_by("pseudonym", "pk")[: PAGE_SIZE + 1]


def log_page(
    group: Group, *, kind: str = "", member: int | None = None, before: int | None = None
) -> list[ModerationAction]:
    """One page of the moderation log, newest first, ``PAGE_SIZE + 1`` rows; keyset-paged
    on (created_at, id) from ``before``, the last row's id."""
    if not (kind or member is not None or before is not None):
        return _FIRST_LOG.run(group_id=group.pk)
    log = moderation_log(group, limit=None)
    if kind:
        log = log.filter(kind=kind)
    if member is not None:
        log = log.filter(membership_id=member)
    if before is not None:
        last = ModerationAction.objects.filter(pk=before, group=group).values("created_at")[:1]
        log = log.filter(
            Q(created_at__lt=Subquery(last)) | Q(created_at=Subquery(last), pk__lt=before)
        )
    return list(_log_rows(log))


def _log_rows(log: QuerySet[ModerationAction]) -> QuerySet[ModerationAction]:
    return log.order_by("-created_at", "-pk")[: PAGE_SIZE + 1]


# The member list's and the log's first pages (what a facilitator opens), compiled once
# per process (supportgroups/compiled_query.py); a filtered page is built as asked.
_FIRST_MEMBERS = CompiledQuery(
    lambda group_id: _member_rows(members_with_signature_state([group_id])), group_id=int
)
_FIRST_LOG = CompiledQuery(
    lambda group_id: _log_rows(moderation_log(group_id, limit=None)), group_id=int
)


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


def own_report_of_post(membership: Membership, post_id: int) -> Report | None:
    """The member's report of this board post, if they made one (a post is reported once
    per member): the report page says so instead of offering the form again."""
    return Report.objects.filter(reporter=membership, post_id=post_id).first()


def latest_mute(membership: Membership) -> ModerationAction | None:
    """The step that muted this member (for the rule and reason the room shows them)."""
    return (
        ModerationAction.objects.filter(membership=membership, kind=ActionKind.MUTE)
        .order_by("-created_at")
        .first()
    )
