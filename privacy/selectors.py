"""What a member reads about their own data, from every app; and who may read which
consent request or disclosure (one helper per rule)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.selectors import events_about_user
from audit.describe import (
    describe_for_admin,
    describe_for_subject,
    distinct_looks,
    runs_of_the_same,
)
from audit.models import Event
from groups.models import Group, Membership
from moderation.models import ContactReveal
from privacy.models import ConsentRequest, ConsentStatus, Disclosure, DisclosureKind


def who_has_seen_my_data(user: User, *, limit: int = 200) -> dict:
    """The person's own events in plain language, looks at their data first, and every
    disclosure of their information (the accounting).

    The events name groups the person applied to or belongs to: fine to show them."""
    events = list(events_about_user(user)[:limit])
    names = dict(
        Group.objects.filter(pk__in={e.group_id for e in events if e.group_id}).values_list(
            "pk", "name"
        )
    )
    described = [describe_for_subject(event, viewer=user, group_names=names) for event in events]
    return {
        # A facilitator's reloads while reviewing are one look, not one per page load.
        "access": runs_of_the_same(distinct_looks([d for d in described if d.is_access])),
        "account_activity": runs_of_the_same([d for d in described if not d.is_access]),
        "disclosures": accounting_for_member(user),
    }


# --- the accounting of disclosures ----------------------------------------------------------


@dataclass(frozen=True)
class AccountingLine:
    """One disclosure of a person's information, in plain words."""

    when: datetime
    kind: str  # "consented", "legal", "break_glass"
    who: str
    to_whom: str
    what: str
    why: str
    sha256: str = ""


def disclosures_visible_to_member(user: User, *, now: datetime | None = None) -> QuerySet:
    """The person's disclosures, except a legal one they may not be told of yet."""
    today = timezone.localdate(now or timezone.now())
    return (
        Disclosure.objects.filter(subject=user)
        .filter(Q(restricted_until__isnull=True) | Q(restricted_until__lte=today))
        .select_related("group", "made_by_membership")
    )


def accounting_for_member(user: User, *, now: datetime | None = None) -> list[AccountingLine]:
    """Every disclosure the person may know of, newest first: packages made with their
    consent, those the law required (once any restriction has ended), and break-glass
    looks at their contact details."""
    lines = [_disclosure_line(d) for d in disclosures_visible_to_member(user, now=now)]
    reveals = ContactReveal.objects.filter(membership__user=user).select_related("group")
    lines += [
        AccountingLine(
            when=r.created_at,
            kind="break_glass",
            # By role only, as the look has always been shown: who broke the glass is for
            # the group's facilitators and the admins auditing it.
            who=f"A facilitator of {r.group.name}",
            to_whom="themselves, on their screen (an emergency “break-glass” look)",
            what="Your phone number and emergency contact",
            why=r.reason,
        )
        for r in reveals
    ]
    return sorted(lines, key=lambda line: line.when, reverse=True)


def _disclosure_line(d: Disclosure) -> AccountingLine:
    what = "; ".join(d.item_labels())
    if d.kind == DisclosureKind.LEGAL:
        return AccountingLine(
            when=d.created_at,
            kind="legal",
            who="An administrator of this site",
            to_whom=d.recipient,
            what=f"{what}. {d.description}" if d.description else what,
            why=f"Required by law — {d.purpose} (reference: {d.reference})",
            sha256=d.package_sha256,
        )
    return AccountingLine(
        when=d.created_at,
        kind="consented",
        who=_facilitator_words(d.made_by_membership, d.group),
        to_whom=d.recipient,
        what=what,
        why=f"With your consent: {d.purpose}",
        sha256=d.package_sha256,
    )


def _facilitator_words(membership: Membership | None, group: Group | None) -> str:
    name = membership.pseudonym if membership and membership.pseudonym else "A facilitator"
    return f"{name}, a facilitator of {group.name}" if group else name


# --- consent requests: the member's side ----------------------------------------------------


def consents_for_member(user: User) -> QuerySet[ConsentRequest]:
    return (
        ConsentRequest.objects.filter(membership__user=user)
        .select_related("group", "requested_by")
        .order_by("-created_at")
    )


def pending_consent_count(user: User) -> int:
    return consents_for_member(user).filter(status=ConsentStatus.PENDING).count()


def consent_for_member_or_404(user: User, consent_id: int) -> ConsentRequest:
    consent = (
        consents_for_member(user).select_related("membership__user").filter(pk=consent_id).first()
    )
    if consent is None:
        raise Http404
    return consent


# --- consent requests: the facilitator's side -----------------------------------------------


def consents_of_group(facilitator: Membership) -> QuerySet[ConsentRequest]:
    return (
        ConsentRequest.objects.filter(group_id=facilitator.group_id)
        .select_related("membership", "requested_by")
        .order_by("-created_at")
    )


def consent_for_facilitator_or_404(facilitator: Membership, consent_id: int) -> ConsentRequest:
    consent = consents_of_group(facilitator).filter(pk=consent_id).first()
    if consent is None:
        raise Http404
    return consent


def packages_of_group(facilitator: Membership) -> QuerySet[Disclosure]:
    """The packages made under the group's consents (legal disclosures are the admins')."""
    return Disclosure.objects.filter(
        group_id=facilitator.group_id, kind=DisclosureKind.CONSENTED
    ).select_related("consent", "made_by_membership")


# --- the admins' side -----------------------------------------------------------------------


def legal_disclosures() -> QuerySet[Disclosure]:
    return Disclosure.objects.filter(kind=DisclosureKind.LEGAL).select_related(
        "subject", "group", "made_by"
    )


def access_review(user: User) -> dict:
    """Everything an admin reviews about one person's information leaving the app: every
    disclosure (restricted ones too, marked), every consent request, every break-glass look."""
    return {
        "disclosures": Disclosure.objects.filter(subject=user).select_related(
            "group", "made_by", "made_by_membership"
        ),
        "consents": ConsentRequest.objects.filter(membership__user=user).select_related(
            "group", "requested_by__user"
        ),
        "reveals": ContactReveal.objects.filter(membership__user=user).select_related(
            "group", "actor__user"
        ),
    }


def disclosure_events_about(user: User, *, actions) -> QuerySet[Event]:  # noqa: ANN001
    """The log's events of ``actions`` about the person, and those about their disclosures
    (a restricted legal disclosure's event names no subject until the member is told)."""
    disclosure_ids = [
        str(pk) for pk in Disclosure.objects.filter(subject=user).values_list("pk", flat=True)
    ]
    return Event.objects.filter(
        Q(subject_id=user.pk) | Q(target_type="privacy.disclosure", target_id__in=disclosure_ids),
        action__in=[int(a) for a in actions],
    ).order_by("-seq")


def described_for_admin(events) -> list[tuple[Event, str]]:  # noqa: ANN001
    """Events with the console's plain-language line (names loaded in two queries)."""
    events = list(events)
    user_ids = {e.actor_id for e in events} | {e.subject_id for e in events}
    handles = dict(User.objects.filter(pk__in=user_ids - {None}).values_list("pk", "username"))
    groups = dict(
        Group.objects.filter(pk__in={e.group_id for e in events if e.group_id}).values_list(
            "pk", "name"
        )
    )
    return [(e, describe_for_admin(e, handles=handles, groups=groups)) for e in events]
