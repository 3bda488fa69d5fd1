"""Who may see which application: one helper per rule. Refusals are 404s."""

import hmac

from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from groups.models import CURRENT_STATUSES, Group, Membership
from groups.selectors import facilitation_for_user_or_404
from screening.models import OPEN_STATUSES, Application, ApplicationStatus, Questionnaire
from supportgroups.compiled_query import CompiledQuery


def group_for_applying_or_404(user, slug: str, link_token: str = "") -> Group:  # noqa: ANN001
    """Listed groups, unlisted ones through their private link, or any group the person
    already has an application to. Groups that welcome people by invitation only (no
    screening) take no applications."""
    group = Group.objects.filter(slug=slug).first()
    if group is None:
        raise Http404
    if user.is_authenticated and Application.objects.filter(group=group, applicant=user).exists():
        return group
    if not group.requires_screening:
        raise Http404
    if group.listed or (link_token and hmac.compare_digest(link_token, group.link_token)):
        return group
    raise Http404


def open_application(group: Group, user) -> Application | None:  # noqa: ANN001
    return Application.objects.filter(group=group, applicant=user, status__in=OPEN_STATUSES).first()


def _place_taken() -> Exists:
    """Has the applicant already chosen a name in the group (so an approval needs nothing
    more from them)?"""
    return Exists(
        Membership.objects.filter(
            user=OuterRef("applicant"), group=OuterRef("group"), status__in=CURRENT_STATUSES
        ).exclude(pseudonym="")
    )


def applications_of_user(user) -> QuerySet[Application]:  # noqa: ANN001
    return (
        Application.objects.filter(applicant=user)
        .select_related("group")
        .annotate(place_taken=_place_taken())
        .order_by("-updated_at")
    )


def application_for_applicant_or_404(user, application_id: int) -> Application:  # noqa: ANN001
    application = (
        Application.objects.select_related("group", "questionnaire")
        .annotate(place_taken=_place_taken())
        .filter(pk=application_id, applicant=user)
        .first()
    )
    if application is None:
        raise Http404
    return application


def applications_with_news_fact() -> Coalesce:
    """How many of the person's applications changed since they last looked (in-app
    news; ``Application.has_news``), as an expression about a user row (OuterRef "pk"),
    for the navigation's facts (accounts/facts.py): a subquery, not a query of its own."""
    news = (
        Application.objects.filter(
            applicant=OuterRef("pk"), updated_at__gt=F("seen_by_applicant_at")
        )
        .order_by()
        .values("applicant")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(news, output_field=IntegerField()), 0)


def application_for_facilitator_or_404(
    user,
    slug: str,
    application_id: int,  # noqa: ANN001
) -> tuple[Application, Membership]:
    facilitator = facilitation_for_user_or_404(user, slug)
    application = (
        Application.objects.select_related("group", "questionnaire", "applicant")
        .filter(pk=application_id, group=facilitator.group)
        .exclude(status=ApplicationStatus.DRAFT)
        # Never sent (e.g. a withdrawn draft): it stays the applicant's alone.
        .filter(submitted_at__isnull=False)
        .first()
    )
    if application is None:
        raise Http404
    return application, facilitator


# Applications per page of the review queue.
QUEUE_PAGE_SIZE = 50


def review_queue(group: Group, status: str, *, after: int | None = None) -> list[Application]:
    """Oldest first: the person who has waited longest comes first. One page,
    ``QUEUE_PAGE_SIZE + 1`` rows (the extra one says there is a next page), keyset-paged
    after the application ``after`` (as fast on the last page as on the first). Each row
    carries ``waiting_since`` and only the columns the list shows: the answers and
    messages stay encrypted (a decryption per row for nothing)."""
    if after is None and status in _FIRST_PAGES:
        return _FIRST_PAGES[status].run(group_id=group.pk)
    return list(_queue(group, status, after=after))


def _queue(group: Group | int, status: str, *, after: int | None) -> QuerySet[Application]:
    queryset = (
        Application.objects.filter(group=group, submitted_at__isnull=False)
        .exclude(status=ApplicationStatus.DRAFT)
        .only("pk", "group_id", "status", "created_at", "submitted_at", "waitlisted_at")
    )
    if status:
        queryset = queryset.filter(status=status)
    since = (
        Coalesce("waitlisted_at", "submitted_at")
        if status == ApplicationStatus.WAITLISTED
        else F("submitted_at")
    )
    queryset = queryset.annotate(waiting_since=since)
    if after is not None:
        last = queryset.filter(pk=after).values("waiting_since")
        queryset = queryset.filter(
            Q(waiting_since__gt=Subquery(last)) | Q(waiting_since=Subquery(last), pk__gt=after)
        )
    return queryset.order_by("waiting_since", "pk")[: QUEUE_PAGE_SIZE + 1]


def _first_page(status: str) -> CompiledQuery[Application]:
    return CompiledQuery(lambda group_id: _queue(group_id, status, after=None), group_id=int)


# Each status's first page (what a facilitator opens), compiled once per process
# (supportgroups/compiled_query.py): the status is part of the statement.
_FIRST_PAGES = {status: _first_page(status) for status in ("", *ApplicationStatus.values)}


def current_questionnaire(group: Group) -> Questionnaire | None:
    """The group's latest stored questionnaire; None until its first application or its
    facilitators' first edit (pages then show ``services.default_questions()``)."""
    return group.questionnaires.order_by("-version").first()
