"""Who may see and do what in a group: one named helper per rule.

A person who may not see a group gets a 404, never a 403: a 403 would confirm that an
unlisted group (or someone's membership) exists.
"""

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
)
from django.http import Http404

from accounts.models import User
from groups.models import (
    CURRENT_STATUSES,
    AgreementVersion,
    Group,
    Guideline,
    Membership,
    Role,
    Status,
    link_token_index,
)
from supportgroups.compiled_query import CompiledQuery


def _facilitations(user) -> QuerySet[Membership]:  # noqa: ANN001 - a user or OuterRef
    return Membership.objects.filter(user=user, role=Role.FACILITATOR, status__in=CURRENT_STATUSES)


def user_facilitates_any_group(user) -> bool:  # noqa: ANN001
    # Asked twice on some pages (the 2FA middleware, then a view), so it is kept on the
    # user object, which lives for one request (as Django keeps permissions).
    if not hasattr(user, "_facilitates_any_group"):
        user._facilitates_any_group = _facilitations(user).exists()
    return user._facilitates_any_group


def facilitates_any_group_fact() -> Exists:
    """``user_facilitates_any_group`` as an expression about a user row (OuterRef "pk"),
    for the navigation's facts (accounts/facts.py) and the 2FA check's (accounts/roles.py)."""
    return Exists(_facilitations(OuterRef("pk")))


def listed_groups(*, topic: str = "", query: str = "") -> QuerySet[Group]:
    groups = Group.objects.filter(listed=True).prefetch_related("guidelines")
    if topic:
        groups = groups.filter(topic=topic)
    if query:
        groups = groups.filter(
            Q(name__icontains=query)
            | Q(description__icontains=query)
            | Q(eligibility__icontains=query)
        )
    # Explicit: Meta.ordering is not applied to a query with an aggregate (GROUP BY).
    return groups.annotate(
        member_count=Count("memberships", filter=Q(memberships__status__in=CURRENT_STATUSES))
    ).order_by("name", "pk")


def public_group_or_404(slug: str) -> Group:
    """A listed group's public page."""
    try:
        return Group.objects.get(slug=slug, listed=True)
    except Group.DoesNotExist:
        raise Http404 from None


def group_by_link_or_404(token: str) -> Group:
    """Any group, through its private link (how unlisted groups are reached)."""
    try:
        return Group.objects.get(link_token_index=link_token_index(token))
    except Group.DoesNotExist:
        raise Http404 from None


def membership_for_user_or_404(user, slug: str) -> Membership:  # noqa: ANN001
    """The person's own current place in the group named by ``slug``, with whether they
    signed the current agreement (as of loading it)."""
    membership = place_of_user(user, slug)
    if membership is None:
        raise Http404
    return membership


def _place(user_id: int, slug: str) -> QuerySet[Membership]:
    return (
        Membership.objects.select_related("group")
        .annotate(signed_current=signed_current_agreement())
        .filter(user_id=user_id, group__slug=slug, status__in=CURRENT_STATUSES)
        .order_by("pk")[:1]
    )


# Read on every page of a group (its home, board, facilitator pages): compiled once per
# process (supportgroups/compiled_query.py), building it cost more than running it.
_PLACE = CompiledQuery(_place, user_id=int, slug=str)


def place_of_user(user, slug: str) -> Membership | None:  # noqa: ANN001
    """The person's current place in the group named by ``slug``, with whether they
    signed its current agreement, or None (also for a visitor not signed in)."""
    if not user.is_authenticated:
        return None
    rows = _PLACE.run(user_id=user.pk, slug=slug)
    return rows[0] if rows else None


class PlaceNotTaken(Exception):
    """The person has a place in the group but has not yet chosen their name in it or
    signed its current agreement, so nothing private in the group is shown to them.

    Raised by the selectors of facilitators' pages; ``groups.middleware`` answers it by
    sending the person to that step, with a message saying why.
    """

    def __init__(self, membership: Membership, step: str) -> None:
        super().__init__(step)
        self.membership = membership
        self.step = step


def membership_step_missing(membership: Membership) -> str | None:
    """The gate every place in a group passes before anything private in it, members and
    facilitators alike: ``"take_place"`` (choose a name, and sign), ``"sign"`` (the current
    agreement, e.g. a new version), or None when through.

    A group with no agreement yet has nothing to sign, and nobody can have joined it.
    """
    if membership.group.current_agreement_id is None:
        return None
    if not membership.pseudonym:
        return "take_place"
    if membership.status == Status.PENDING_AGREEMENT or not membership_has_signed_current(
        membership
    ):
        return "sign"
    return None


def require_place_taken(membership: Membership) -> Membership:
    step = membership_step_missing(membership)
    if step is not None:
        raise PlaceNotTaken(membership, step)
    return membership


def facilitation_for_user_or_404(user, slug: str) -> Membership:  # noqa: ANN001
    """The person's facilitator membership of the group (2FA is enforced by middleware),
    once they have chosen their name and signed the current agreement (PlaceNotTaken)."""
    membership = membership_for_user_or_404(user, slug)
    if membership.role != Role.FACILITATOR:
        raise Http404
    return require_place_taken(membership)


def group_for_manager_or_404(user, slug: str) -> tuple[Group, Membership | None]:  # noqa: ANN001
    """Facilitators of the group (through the same gate as every place: PlaceNotTaken)
    and site admins may manage it."""
    if not user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("group")
        .annotate(signed_current=signed_current_agreement())
        .filter(user=user, group__slug=slug, status__in=CURRENT_STATUSES, role=Role.FACILITATOR)
        .first()
    )
    if membership is not None:
        return require_place_taken(membership).group, membership
    if user.is_staff:
        try:
            return Group.objects.get(slug=slug), None
        except Group.DoesNotExist:
            raise Http404 from None
    raise Http404


# --- the services' role re-checks --------------------------------------------------------
# A page checked the role when it loaded; by the time its form is posted the person may
# have been demoted. Services ask again with these, from the database, inside their
# transaction.


def facilitation_now(user, group_id: int) -> Membership | None:  # noqa: ANN001
    """The person's current facilitator place in the group, as stored now."""
    return Membership.objects.filter(
        user_id=user.pk, group_id=group_id, role=Role.FACILITATOR, status__in=CURRENT_STATUSES
    ).first()


def user_is_admin_now(user) -> bool:  # noqa: ANN001
    """Whether the account is an active site admin, as stored now."""
    return User.objects.filter(pk=user.pk, is_staff=True, is_active=True).exists()


def user_may_manage_group_now(user, group_id: int) -> bool:  # noqa: ANN001
    """Facilitators of the group and site admins (as group_for_manager_or_404)."""
    return facilitation_now(user, group_id) is not None or user_is_admin_now(user)


def current_agreement(group: Group) -> AgreementVersion | None:
    # Read from the database, not group.current_agreement: a Group object in memory may
    # predate the latest version (agreement_publish keeps both the same).
    return group.agreements.order_by("-version").first()


def _signed_current_condition(through: str = "") -> Q:
    return Q(
        **{
            f"{through}signed_agreement__isnull": False,
            f"{through}signed_agreement": F(f"{through}group__current_agreement"),
        }
    )


def signed_current_agreement(*, through: str = "") -> ExpressionWrapper:
    """For annotating memberships: has this membership signed its group's latest agreement?

    ``Membership.objects.annotate(signed_current=signed_current_agreement())`` answers it
    for a whole list in the same query (and membership_has_signed_current then reads it).
    Both sides are kept by the agreement services; no agreement means nothing to sign.
    ``through``: the path to the membership when annotating rows that point to one (e.g.
    ``"membership__"`` for a meeting device).
    """
    return ExpressionWrapper(_signed_current_condition(through), output_field=BooleanField())


def membership_has_signed_current(membership: Membership) -> bool:
    if hasattr(membership, "signed_current"):  # loaded with signed_current_agreement()
        return membership.signed_current
    # Asked of the database: the objects in memory may predate a signing or a new version.
    return Membership.objects.filter(_signed_current_condition(), pk=membership.pk).exists()


def membership_may_enter_meetings(membership: Membership) -> bool:
    """Active (or muted: they may read) members who chose a pseudonym and signed the
    current agreement. Suspended, removed and departed members may not."""
    return (
        membership.effective_status() in (Status.ACTIVE, Status.MUTED)
        and bool(membership.pseudonym)
        and membership_has_signed_current(membership)
    )


def membership_refusal(membership: Membership | None) -> str | None:
    """Why this place does not let its holder into the group's private spaces today (its
    meetings and its board), as a stable code, or None. The one rule both ask:
    ``"not_a_member"``, ``"suspended"`` or ``"agreement_required"``."""
    if membership is None or not membership.is_current:
        return "not_a_member"
    if membership.effective_status() == Status.SUSPENDED:
        return "suspended"
    if not membership_may_enter_meetings(membership):
        return "agreement_required"
    return None


def membership_may_write(membership: Membership) -> bool:
    """Whether a member who may enter may also speak: muted members read only."""
    return membership.effective_status() == Status.ACTIVE


def memberships_of_user(user) -> QuerySet[Membership]:  # noqa: ANN001
    """ "My groups": each membership with whether the current agreement is signed. The
    group's long texts and its invitation token (encrypted: a decryption per row) are
    left unread: the lists of someone's groups show none of them."""
    return (
        Membership.objects.filter(user=user, status__in=CURRENT_STATUSES)
        .select_related("group")
        .defer(*(f"group__{name}" for name in GROUP_FIELDS_NOT_LISTED))
        .annotate(signed_current=signed_current_agreement())
        .order_by("group__name")
    )


# "My groups" reads it on every visit: compiled once per process.
_MEMBERSHIPS_OF_USER = CompiledQuery(lambda user_id: memberships_of_user(user_id), user_id=int)


def memberships_of_user_list(user) -> list[Membership]:  # noqa: ANN001
    """``list(memberships_of_user(user))``, from SQL compiled once."""
    return _MEMBERSHIPS_OF_USER.run(user_id=user.pk)


_GUIDELINES = CompiledQuery(
    lambda group_id: Guideline.objects.filter(group_id=group_id).order_by("number"), group_id=int
)


def guidelines_of(group: Group) -> list[Guideline]:
    """``group.guidelines.all()`` (by number), from SQL compiled once: on the group's home
    and every page that shows its rules."""
    return _GUIDELINES.run(group_id=group.pk)


# What a list of a person's groups does not show (memberships_of_user).
GROUP_FIELDS_NOT_LISTED = ("description", "eligibility", "crisis_resources", "link_token")


def group_members(group: Group) -> QuerySet[Membership]:
    """The people in a group as its facilitators see them: pseudonyms, never identities."""
    return (
        Membership.objects.filter(group=group, status__in=CURRENT_STATUSES)
        .annotate(signed_current=signed_current_agreement())
        .order_by("pseudonym")
    )


def group_has_room(group: Group) -> bool:
    if group.capacity is None:
        return True
    taken = group.memberships.filter(status__in=CURRENT_STATUSES, role=Role.MEMBER).count()
    return taken < group.capacity
