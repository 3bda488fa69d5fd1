"""Every change to groups, memberships, guidelines and agreements.

Each function is one transaction that writes its audit event; socket notifications go
out only after commit.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from audit.events import Action
from audit.services import record_event
from groups.models import (
    CURRENT_STATUSES,
    AgreementVersion,
    Group,
    Guideline,
    Invitation,
    Membership,
    Role,
    Signature,
    Status,
)
from groups.pseudonyms import clean_pseudonym, pseudonym_key
from groups.selectors import (
    current_agreement,
    group_has_room,
    user_is_admin_now,
    user_may_manage_group_now,
)
from supportgroups.errors import ServiceError
from supportgroups.realtime import send_agreement_changed, send_membership_changed

PSEUDONYM_CHANGE_INTERVAL = timedelta(days=1)
INVITATION_LIFETIME = timedelta(days=14)

GROUP_FIELDS = (
    "name",
    "topic",
    "description",
    "eligibility",
    "meeting_rhythm",
    "meeting_time_zone",
    "listed",
    "capacity",
    "show_member_count",
    "retention",
    "crisis_resources",
    "reapply_cooldown_days",
    "requires_screening",
    "e2ee_meetings",
)


class GroupError(ServiceError):
    """A refused change to a group or a place in it."""


# --- groups -----------------------------------------------------------------------------


@transaction.atomic
def group_create(
    *,
    actor: User,
    guidelines: list[str],
    agreement_text: str,
    agreement_summary: str = "",
    **fields: Any,
) -> Group:
    _require_admin(actor)
    group = Group(**{name: fields[name] for name in GROUP_FIELDS if name in fields})
    group.slug = _unique_slug(group.name)
    group.set_link_token()
    group.save()
    record_event(
        action=Action.GROUP_CREATED,
        actor=actor,
        target=group,
        group_id=group.pk,
        extra={"e2ee_meetings": group.e2ee_meetings},
    )
    guidelines_replace(group=group, actor=actor, rules=guidelines)
    agreement_publish(group=group, actor=actor, text=agreement_text, summary=agreement_summary)
    return group


@transaction.atomic
def group_update(*, group: Group, actor: User, **fields: Any) -> Group:
    _require_manager(actor, group.pk)
    changed = [
        name for name in GROUP_FIELDS if name in fields and getattr(group, name) != fields[name]
    ]
    for name in changed:
        setattr(group, name, fields[name])
    if changed:
        group.save(update_fields=changed)
        record_event(
            action=Action.GROUP_EDITED,
            actor=actor,
            target=group,
            group_id=group.pk,
            extra={"fields": changed},
        )
    if "e2ee_meetings" in changed:
        _e2ee_meetings_changed(group, actor=actor)
    return group


@transaction.atomic
def group_e2ee_meetings_set(*, group: Group, actor: User, enabled: bool) -> Group:
    """Turn end-to-end encrypted meetings on or off for the group: it applies from the
    next meeting (a meeting takes the setting when its room first opens)."""
    return group_update(group=group, actor=actor, e2ee_meetings=enabled)


def _e2ee_meetings_changed(group: Group, *, actor: User) -> None:
    record_event(
        action=Action.E2EE_MEETINGS_CHANGED,
        actor=actor,
        target=group,
        group_id=group.pk,
        extra={"e2ee_meetings": group.e2ee_meetings},
    )


@transaction.atomic
def group_link_reset(*, group: Group, actor: User) -> Group:
    """A new private link; the old one stops working."""
    _require_manager(actor, group.pk)
    group.set_link_token()
    group.save(update_fields=["link_token", "link_token_index"])
    record_event(
        action=Action.GROUP_EDITED,
        actor=actor,
        target=group,
        group_id=group.pk,
        extra={"fields": ["link_token"]},
    )
    return group


@transaction.atomic
def guidelines_replace(*, group: Group, actor: User, rules: list[str]) -> list[Guideline]:
    _require_manager(actor, group.pk)
    rules = [rule.strip() for rule in rules if rule.strip()]
    if not rules:
        raise GroupError("no_guidelines", "A group needs at least one guideline.")
    group.guidelines.all().delete()
    created = Guideline.objects.bulk_create(
        Guideline(group=group, number=number, text=text)
        for number, text in enumerate(rules, start=1)
    )
    record_event(
        action=Action.GROUP_EDITED,
        actor=actor,
        target=group,
        group_id=group.pk,
        extra={"fields": ["guidelines"], "rules": len(created)},
    )
    return created


@transaction.atomic
def agreement_publish(
    *, group: Group, actor: User, text: str, summary: str = ""
) -> AgreementVersion:
    """A new version; every member signs it again before their next meeting."""
    _require_manager(actor, group.pk)
    if not text.strip():
        raise GroupError("empty_agreement", "The agreement can't be empty.")
    # Lock the group row so two facilitators publishing at once get versions n and n+1.
    Group.objects.select_for_update(no_key=True).filter(pk=group.pk).first()
    latest = group.agreements.order_by("-version").first()
    agreement = AgreementVersion.objects.create(
        group=group,
        version=(latest.version + 1) if latest else 1,
        text=text.strip(),
        summary=summary.strip(),
        published_by=actor,
    )
    Group.objects.filter(pk=group.pk).update(current_agreement=agreement)
    group.current_agreement = agreement
    record_event(
        action=Action.AGREEMENT_PUBLISHED,
        actor=actor,
        target=agreement,
        group_id=group.pk,
        extra={"version": agreement.version},
    )
    if latest is not None:
        # Members in a meeting must stop and re-sign (the meetings consumer listens).
        for user_id in group.memberships.filter(status__in=CURRENT_STATUSES).values_list(
            "user_id", flat=True
        ):
            send_agreement_changed(user_id=user_id, group_id=group.pk)
    return agreement


# --- facilitators -----------------------------------------------------------------------


@transaction.atomic
def facilitator_appoint(*, group: Group, actor: User, user: User) -> Membership:
    """Make someone a facilitator (admins only). They choose their pseudonym like anyone."""
    _require_admin(actor)
    membership, created = Membership.objects.select_for_update(no_key=True).get_or_create(
        group=group, user=user, defaults={"role": Role.FACILITATOR}
    )
    if not created:
        membership.role = Role.FACILITATOR
        if membership.status in (Status.LEFT, Status.REMOVED):
            membership.status = Status.PENDING_AGREEMENT
        membership.save(update_fields=["role", "status"])
    record_event(
        action=Action.FACILITATOR_APPOINTED,
        actor=actor,
        subject=user,
        target=membership,
        group_id=group.pk,
    )
    return membership


@transaction.atomic
def facilitator_remove(*, membership: Membership, actor: User) -> Membership:
    _require_admin(actor)
    membership.role = Role.MEMBER
    membership.save(update_fields=["role"])
    record_event(
        action=Action.FACILITATOR_REMOVED,
        actor=actor,
        subject=membership.user,
        target=membership,
        group_id=membership.group_id,
    )
    _notify_membership_changed(membership)
    return membership


# --- memberships ------------------------------------------------------------------------


@transaction.atomic
def membership_create(*, group: Group, user: User, actor: User | None, reason: str) -> Membership:
    """Give someone a place (screening approval or an accepted invitation).

    They then choose a pseudonym and sign the agreement. A former member gets their old
    row back, so one person never holds two places in a group.
    """
    # Lock the group row so two people taking the last place at once can't both get it.
    Group.objects.select_for_update(no_key=True).filter(pk=group.pk).first()
    existing = Membership.objects.filter(group=group, user=user).first()
    if existing is not None and existing.is_current:
        raise GroupError("already_member", "You already have a place in this group.")
    if not group_has_room(group):
        raise GroupError(
            "group_full",
            "This group is full at the moment. Please ask its facilitators when a place opens.",
        )
    membership, created = Membership.objects.select_for_update(no_key=True).get_or_create(
        group=group, user=user
    )
    if not created:
        membership.status = Status.PENDING_AGREEMENT
        membership.joined_at = timezone.now()
        membership.save(update_fields=["status", "joined_at"])
    record_event(
        action=Action.MEMBERSHIP_CREATED,
        actor=actor or user,
        subject=user,
        target=membership,
        group_id=group.pk,
        extra={"via": reason},
    )
    return membership


@transaction.atomic
def membership_take_place(
    *, actor: User, group: Group, pseudonym: str, typed_name: str, guidelines_acknowledged: bool
) -> Membership:
    """The first step inside a group: choose a pseudonym and sign the current agreement."""
    membership = _own_membership(actor, group)
    if not membership.pseudonym:
        _set_pseudonym(membership, pseudonym)
    _agreement_sign(
        membership=membership,
        typed_name=typed_name,
        guidelines_acknowledged=guidelines_acknowledged,
    )
    return membership


@transaction.atomic
def agreement_sign(
    *, actor: User, group: Group, typed_name: str, guidelines_acknowledged: bool
) -> Signature:
    """The member signs their group's current agreement (a new version, or coming back)."""
    return _agreement_sign(
        membership=_own_membership(actor, group),
        typed_name=typed_name,
        guidelines_acknowledged=guidelines_acknowledged,
    )


def _agreement_sign(
    *, membership: Membership, typed_name: str, guidelines_acknowledged: bool
) -> Signature:
    agreement = current_agreement(membership.group)
    if agreement is None:
        raise GroupError("no_agreement", "This group has no agreement to sign yet.")
    if not guidelines_acknowledged:
        raise GroupError(
            "guidelines_not_acknowledged",
            "Please confirm you have read the guidelines.",
            field="guidelines_acknowledged",
        )
    if pseudonym_key(typed_name) != membership.pseudonym_key or not membership.pseudonym:
        raise GroupError(
            "typed_name_mismatch",
            "Please type your name in this group exactly as chosen.",
            field="typed_name",
        )
    signature, created = Signature.objects.get_or_create(
        membership=membership,
        agreement=agreement,
        defaults={"typed_name": typed_name.strip(), "guidelines_acknowledged": True},
    )
    # A returning member's old signature of this version still stands, but their coming
    # back to it is a signing like any other.
    returning = membership.status == Status.PENDING_AGREEMENT
    changed = []
    if returning:
        membership.status = Status.ACTIVE
        changed.append("status")
    if membership.signed_agreement_id != agreement.pk:
        membership.signed_agreement = agreement
        changed.append("signed_agreement")
    if changed:
        membership.save(update_fields=changed)
    if created or returning:
        record_event(
            action=Action.AGREEMENT_SIGNED,
            actor=membership.user,
            subject=membership.user,
            target=signature,
            group_id=membership.group_id,
            extra={"version": agreement.version},
        )
    return signature


@transaction.atomic
def pseudonym_change(*, actor: User, group: Group, pseudonym: str) -> Membership:
    membership = _own_membership(actor, group)
    if membership.pseudonym_changed_at and (
        timezone.now() - membership.pseudonym_changed_at < PSEUDONYM_CHANGE_INTERVAL
    ):
        raise GroupError(
            "pseudonym_changed_recently",
            "You can change your name in a group once a day.",
            field="pseudonym",
        )
    old_pseudonym = membership.pseudonym
    _set_pseudonym(membership, pseudonym, is_change=True)
    # Other members see the new spelling even when only its case or accents changed.
    if membership.pseudonym != old_pseudonym:
        record_event(
            action=Action.PSEUDONYM_CHANGED,
            actor=membership.user,
            subject=membership.user,
            target=membership,
            group_id=membership.group_id,
        )
        _notify_membership_changed(membership)
    return membership


@transaction.atomic
def membership_leave(*, actor: User, group: Group) -> Membership:
    membership = _own_membership(actor, group)
    if not membership.is_current:
        raise GroupError("not_a_member", "You are not in this group.")
    membership.status = Status.LEFT
    membership.role = Role.MEMBER
    membership.save(update_fields=["status", "role"])
    record_event(
        action=Action.MEMBER_LEFT,
        actor=membership.user,
        subject=membership.user,
        target=membership,
        group_id=membership.group_id,
    )
    _notify_membership_changed(membership)
    return membership


@transaction.atomic
def membership_identity_view(*, actor: User, membership: Membership, ip: str | None) -> None:
    """An admin looks at the account behind a pseudonym (the Membership page of the Django
    admin, the one place that shows both). The member sees it in "Who has seen my data"."""
    _require_admin(actor)
    record_event(
        action=Action.MEMBERSHIP_IDENTITY_VIEWED,
        actor=actor,
        subject=membership.user,
        target=membership,
        group_id=membership.group_id,
        ip=ip,
    )


# --- invitations ------------------------------------------------------------------------


@transaction.atomic
def invitation_create(*, group: Group, actor: User, note: str = "") -> tuple[Invitation, str]:
    """Returns the invitation and its token, which is shown once and stored only hashed."""
    _require_manager(actor, group.pk)
    token = secrets.token_urlsafe(24)
    invitation = Invitation.objects.create(
        group=group,
        token_hash=_token_hash(token),
        note=note.strip(),
        created_by=actor,
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    record_event(
        action=Action.MEMBERSHIP_CHANGED,
        actor=actor,
        target=invitation,
        group_id=group.pk,
        extra={"invitation": "created"},
    )
    return invitation, token


def invitation_by_token(token: str) -> Invitation | None:
    return Invitation.objects.select_related("group").filter(token_hash=_token_hash(token)).first()


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = (
        Invitation.objects.select_for_update(no_key=True)
        .filter(token_hash=_token_hash(token))
        .first()
    )
    if invitation is None or not invitation.is_usable:
        raise GroupError(
            "invitation_unusable", "This invitation has expired or has already been used."
        )
    membership = membership_create(
        group=invitation.group, user=user, actor=None, reason="invitation"
    )
    invitation.used_at = timezone.now()
    invitation.save(update_fields=["used_at"])
    return membership


# --- helpers ----------------------------------------------------------------------------


def _set_pseudonym(membership: Membership, pseudonym: str, *, is_change: bool = False) -> None:
    try:
        cleaned = clean_pseudonym(pseudonym, login_handle=membership.user.username)
    except ValidationError as error:
        raise GroupError("invalid_pseudonym", error.messages[0], field="pseudonym") from None
    key = pseudonym_key(cleaned)
    taken = Membership.objects.filter(group_id=membership.group_id, pseudonym_key=key).exclude(
        pk=membership.pk
    )
    if taken.exists():
        raise GroupError(
            "pseudonym_taken",
            "Someone in this group already uses that name, "
            "or one that looks the same. Please choose another.",
            field="pseudonym",
        )
    membership.pseudonym = cleaned
    membership.pseudonym_key = key
    if is_change:
        membership.pseudonym_changed_at = timezone.now()
    try:
        with transaction.atomic():
            membership.save(update_fields=["pseudonym", "pseudonym_key", "pseudonym_changed_at"])
    except IntegrityError:
        raise GroupError(
            "pseudonym_taken",
            "Someone has just taken that name. Please choose another.",
            field="pseudonym",
        ) from None


def _notify_membership_changed(membership: Membership) -> None:
    send_membership_changed(user_id=membership.user_id, group_id=membership.group_id)


def _own_membership(actor: User, group: Group) -> Membership:
    """The actor's own place in the group, locked: a member acts on their own place only."""
    membership = (
        Membership.objects.select_for_update(of=("self",), no_key=True)
        .select_related("group", "user")
        .filter(user=actor, group=group)
        .first()
    )
    if membership is None:
        raise GroupError("not_a_member", "You are not in this group.")
    return membership


def _require_manager(actor: User, group_id: int) -> None:
    """Services re-check the role, whatever the page checked when it loaded."""
    if not user_may_manage_group_now(actor, group_id):
        raise GroupError("not_facilitator", "Only this group's facilitators can do that.")


def _require_admin(actor: User) -> None:
    if not user_is_admin_now(actor):
        raise GroupError("not_admin", "Only site admins can do that.")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "group"
    slug, counter = base, 2
    while Group.objects.filter(slug=slug).exists():
        slug, counter = f"{base}-{counter}", counter + 1
    return slug
