"""What a member does about their own data (export it, delete their account), and
consent requests and disclosures outside the app.

These sit above every domain app, so each may ask all of them; the identity part of a
deletion is still done by ``accounts.services``.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.models import BackupCodeDevice, Session, TOTPDevice, User
from accounts.selectors import events_about_user
from audit.events import Action
from audit.services import record_event, request_ip
from board.services import posts_remove_for_user
from groups.models import Group, Membership
from groups.selectors import facilitation_now, user_is_admin_now
from meetings.services import messages_remove_for_user
from privacy.exports import user_data_from_apps
from privacy.models import (
    GROUP_ITEMS,
    ConsentRequest,
    ConsentStatus,
    Disclosure,
    DisclosureKind,
    Item,
    LegalBasis,
)
from privacy.packages import content_sha256, item_content, package_file, package_sha256
from privacy.selectors import accounting_for_member
from screening.models import Application
from supportgroups.errors import ServiceError
from supportgroups.exports import export_with_parts
from supportgroups.mail import email_body, email_people_on_commit
from supportgroups.realtime import send_account_notice


@transaction.atomic
def account_export(*, user: User, request: HttpRequest) -> dict[str, Any]:
    """Everything stored about this person, decrypted, as one JSON-ready document."""
    record_event(action=Action.DATA_EXPORTED, actor=user, subject=user, ip=request_ip(request))
    export = {
        "exported_at": timezone.now().isoformat(),
        "account": {
            "login_handle": user.username,
            "recovery_email": user.recovery_email,
            "recovery_email_verified": user.recovery_email_verified,
            "phone": user.phone,
            "emergency_contact": user.emergency_contact,
            "joined": user.date_joined.isoformat(),
            "last_login": user.last_login.isoformat() if user.last_login else None,
            "is_admin": user.is_staff,
            # Set by an admin responding to a security incident, until done.
            "must_choose_a_new_password": user.password_renewal_required,
            "must_set_up_two_factor_again": user.two_factor_renewal_required,
        },
        "two_factor": {
            "authenticator_app": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
            "backup_codes_left": sum(
                d.remaining for d in BackupCodeDevice.objects.filter(user=user)
            ),
        },
        "sessions": [
            {
                "device": s.device,
                "started": s.created_at.isoformat(),
                "last_seen": s.last_seen.isoformat(),
                "expires": s.expire_date.isoformat(),
            }
            for s in Session.objects.filter(user=user, expire_date__gt=timezone.now())
        ],
        "events_about_you": [
            {
                "when": e.created_at.isoformat(),
                "what": e.action_enum.label,
                "by_you": e.actor_id == user.pk,
            }
            for e in events_about_user(user)
        ],
        **user_data_from_apps(user),
        # The accounting of disclosures, as "Who has seen my data" shows it.
        "information_shared_outside_this_site": [
            {
                "when": line.when.isoformat(),
                "kind": line.kind,
                "who": line.who,
                "to_whom": line.to_whom,
                "what": line.what,
                "why": line.why,
                "file_sha256": line.sha256 or None,
            }
            for line in accounting_for_member(user)
        ],
    }
    # With the parts from the apps beside this one in the layers (the security notices).
    return export_with_parts(export, user)


@transaction.atomic
def account_delete(*, user: User, request: HttpRequest) -> None:
    """Delete the person's account, in one transaction: their messages and board posts stay
    in place as "[removed]" without their text, then the account goes (audited, sessions
    ended, sockets closed on commit); memberships, applications and the rest go with it."""
    # Their sessions first: a chat send of theirs committing after their messages were
    # emptied would keep its text. Held, it commits before, or is refused after.
    account_services.sessions_of_user_hold(user=user)
    messages_remove_for_user(user=user)
    posts_remove_for_user(user=user)
    account_services.account_remove(user=user, request=request)


# --- consent requests and disclosures (issue 23) ------------------------------------------


class PrivacyError(ServiceError):
    """A refused consent request, answer, package or disclosure."""


# The longest a consent may last, and a legal restriction on telling the member.
MAX_CONSENT_DAYS = 366
MAX_RESTRICTION_DAYS = 5 * 366

# What the member's notices say: never a group, a recipient or what was shared (a notice
# may be read over a shoulder; an email in a shared inbox).
NOTICE_CONSENT_REQUESTED = (
    "You have been asked for your consent to share some of your information. "
    "Read exactly what, and answer, in your privacy centre."
)
NOTICE_CONSENT_ANSWERED = "A member answered your request for consent to share information."
NOTICE_SHARED = (
    "Some of your information was shared outside this site. "
    "Read who shared what, with whom and why, in your privacy centre."
)


@transaction.atomic
def consent_request(
    *,
    actor: User,
    membership: Membership,
    items: list[str],
    recipient: str,
    purpose: str,
    summary: str | None,
    valid_until: date,
    ip: str | None = None,
) -> ConsentRequest:
    """A facilitator asks a member of their group for consent to share named items."""
    facilitator = _require_facilitator(actor, membership.group_id)
    membership = Membership.objects.select_related("user", "group").get(pk=membership.pk)
    if not membership.is_current:
        raise PrivacyError("not_a_member", "This person is no longer in the group.")
    if membership.pk == facilitator.pk:
        raise PrivacyError("own_place", "You can't ask yourself for consent.", field="items")
    items = _valid_items(items, summary=summary)
    recipient, purpose = (recipient or "").strip(), (purpose or "").strip()
    if not recipient:
        raise PrivacyError("recipient_required", "Say who would receive it.", field="recipient")
    if not purpose:
        raise PrivacyError("purpose_required", "Say what it is for.", field="purpose")
    today = timezone.localdate()
    if not today <= valid_until <= today + timedelta(days=MAX_CONSENT_DAYS):
        raise PrivacyError(
            "bad_date",
            f"Choose a date from today to {MAX_CONSENT_DAYS} days from now.",
            field="valid_until",
        )
    consent = ConsentRequest.objects.create(
        group=membership.group,
        membership=membership,
        requested_by=facilitator,
        items=items,
        recipient=recipient,
        purpose=purpose,
        summary=(summary or "").strip() or None if Item.SUMMARY in items else None,
        valid_until=valid_until,
    )
    record_event(
        action=Action.CONSENT_REQUESTED,
        actor=actor,
        subject=membership.user,
        target=consent,
        group_id=membership.group_id,
        ip=ip,
        extra={"items": items, "valid_until": valid_until.isoformat()},
    )
    _tell(
        membership.user,
        NOTICE_CONSENT_REQUESTED,
        page="account_consents",
        email="privacy/email/consent_requested.txt",
    )
    return consent


def consent_preview(consent: ConsentRequest) -> dict[str, Any]:
    """What a package under this consent would hold, read now (for the member to read
    before answering). Once approved, the approved content is what counts."""
    if consent.status == ConsentStatus.APPROVED and consent.approved_items is not None:
        return consent.approved_items
    return item_content(
        user=consent.membership.user,
        group=consent.group,
        items=consent.items,
        summary=consent.summary,
    )


@transaction.atomic
def consent_approve(
    *, actor: User, consent: ConsentRequest, shown_sha256: str, ip: str | None = None
) -> ConsentRequest:
    """The member agrees to share exactly what they read (``shown_sha256`` is the
    fingerprint of the preview their page showed: if the records changed since, they read
    it again first)."""
    consent = _own_consent_locked(actor, consent)
    if consent.status != ConsentStatus.PENDING:
        raise PrivacyError("already_answered", "You have already answered this request.")
    if consent.is_expired():
        raise PrivacyError(
            "consent_expired", "This request has expired: the date it was for has passed."
        )
    content = consent_preview(consent)
    fingerprint = content_sha256(content)
    if fingerprint != shown_sha256:
        raise PrivacyError(
            "content_changed",
            "What would be shared has changed since you opened this page. "
            "Please read it again before you answer.",
        )
    consent.status = ConsentStatus.APPROVED
    consent.approved_items = content
    consent.approved_sha256 = fingerprint
    consent.decided_at = timezone.now()
    consent.save(update_fields=["status", "approved_items", "approved_sha256", "decided_at"])
    record_event(
        action=Action.CONSENT_APPROVED,
        actor=actor,
        subject=actor,
        target=consent,
        group_id=consent.group_id,
        ip=ip,
        extra={"items": consent.items, "content_sha256": fingerprint},
    )
    _tell_requester(consent)
    return consent


@transaction.atomic
def consent_decline(
    *, actor: User, consent: ConsentRequest, ip: str | None = None
) -> ConsentRequest:
    consent = _own_consent_locked(actor, consent)
    if consent.status != ConsentStatus.PENDING:
        raise PrivacyError("already_answered", "You have already answered this request.")
    consent.status = ConsentStatus.DECLINED
    consent.decided_at = timezone.now()
    consent.save(update_fields=["status", "decided_at"])
    record_event(
        action=Action.CONSENT_DECLINED,
        actor=actor,
        subject=actor,
        target=consent,
        group_id=consent.group_id,
        ip=ip,
    )
    _tell_requester(consent)
    return consent


@transaction.atomic
def consent_withdraw(
    *, actor: User, consent: ConsentRequest, ip: str | None = None
) -> ConsentRequest:
    """The member takes their consent back: no package can be made under it from now on,
    and the copy of what they approved is deleted. (A package already handed over is
    not undone; it stays in the accounting.)"""
    consent = _own_consent_locked(actor, consent)
    if consent.status != ConsentStatus.APPROVED:
        raise PrivacyError("not_approved", "Only a consent you gave can be withdrawn.")
    consent.status = ConsentStatus.WITHDRAWN
    consent.withdrawn_at = timezone.now()
    consent.approved_items = None
    consent.save(update_fields=["status", "withdrawn_at", "approved_items"])
    record_event(
        action=Action.CONSENT_WITHDRAWN,
        actor=actor,
        subject=actor,
        target=consent,
        group_id=consent.group_id,
        ip=ip,
    )
    _tell_requester(consent)
    return consent


@dataclass(frozen=True)
class Package:
    disclosure: Disclosure
    data: bytes

    @property
    def filename(self) -> str:
        return f"disclosure-{self.disclosure.pk}.json"


@transaction.atomic
def consent_package_produce(
    *, actor: User, consent: ConsentRequest, ip: str | None = None
) -> Package:
    """The facilitator makes the file to hand over: exactly what the member approved,
    only while the consent is approved, unexpired and not withdrawn. Its SHA-256 is kept
    on the disclosure and in the audit event; the member is told."""
    consent = ConsentRequest.objects.select_for_update(no_key=True).get(pk=consent.pk)
    facilitator = _require_facilitator(actor, consent.group_id)
    if consent.status == ConsentStatus.WITHDRAWN:
        raise PrivacyError("consent_withdrawn", "The member has withdrawn this consent.")
    if consent.status != ConsentStatus.APPROVED:
        raise PrivacyError("no_consent", "The member has not given this consent.")
    if consent.is_expired():
        raise PrivacyError("consent_expired", "This consent has expired.")
    membership = Membership.objects.select_related("user", "group").get(pk=consent.membership_id)
    now = timezone.now()
    data = package_file(
        header={
            "kind": "Shared with the member's consent",
            "group": membership.group.name,
            "about": membership.pseudonym,
            "shared_by": facilitator.pseudonym,
            "recipient": consent.recipient,
            "purpose": consent.purpose,
            "consent_given_on": consent.decided_at.isoformat(),
            "consent_valid_until": consent.valid_until.isoformat(),
            "produced_at": now.isoformat(),
        },
        content=consent.approved_items,
    )
    disclosure = Disclosure.objects.create(
        kind=DisclosureKind.CONSENTED,
        subject=membership.user,
        group=membership.group,
        made_by=actor,
        made_by_membership=facilitator,
        consent=consent,
        items=consent.items,
        recipient=consent.recipient,
        purpose=consent.purpose,
        member_notified_at=now,
        package_sha256=package_sha256(data),
        created_at=now,
    )
    record_event(
        action=Action.DISCLOSURE_PACKAGE_PRODUCED,
        actor=actor,
        subject=membership.user,
        target=disclosure,
        group_id=membership.group_id,
        ip=ip,
        extra={"sha256": disclosure.package_sha256, "items": consent.items, "consent": consent.pk},
    )
    _tell(membership.user, NOTICE_SHARED, page="account_activity")
    return Package(disclosure=disclosure, data=data)


@transaction.atomic
def legal_disclosure_make(
    *,
    actor: User,
    subject: User,
    group: Group | None,
    items: list[str],
    legal_basis: str,
    basis_other: str,
    reference: str,
    recipient: str,
    description: str,
    summary: str | None,
    restricted_until: date | None,
    ip: str | None = None,
) -> Package:
    """An admin records a disclosure the law requires (the form asked for their password
    again) and makes its file. The member is told at once, unless the law restricts telling
    them: then ``disclosure_notices_send_due`` tells them on ``restricted_until``, and until
    then nothing they can read shows it (its audit event names no subject; the disclosure
    row names them, for the admins' access review)."""
    if not user_is_admin_now(actor):
        raise PrivacyError("not_admin", "Only administrators can record a legal disclosure.")
    if legal_basis not in LegalBasis.values:
        raise PrivacyError("bad_basis", "Choose the legal basis.", field="legal_basis")
    basis_other = (basis_other or "").strip()
    if legal_basis == LegalBasis.OTHER and not basis_other:
        raise PrivacyError("basis_required", "Describe the legal obligation.", field="basis_other")
    reference, recipient = (reference or "").strip(), (recipient or "").strip()
    description = (description or "").strip()
    for field, value, message in (
        ("reference", reference, "Give the reference (e.g. the order's number)."),
        ("recipient", recipient, "Say who receives it."),
        ("description", description, "Say what is disclosed."),
    ):
        if not value:
            raise PrivacyError(f"{field}_required", message, field=field)
    items = _valid_items(items, summary=summary)
    if group is None and GROUP_ITEMS & set(items):
        raise PrivacyError(
            "group_required", "Choose the group whose records these are.", field="group"
        )
    if group is not None and not _has_records_in(subject, group):
        raise PrivacyError(
            "not_in_group", "This person has no place or application in that group.", field="group"
        )
    today = timezone.localdate()
    if restricted_until is not None and not (
        today < restricted_until <= today + timedelta(days=MAX_RESTRICTION_DAYS)
    ):
        raise PrivacyError(
            "bad_date",
            f"The restriction must end after today and within {MAX_RESTRICTION_DAYS} days.",
            field="restricted_until",
        )
    basis_label = LegalBasis(legal_basis).label
    purpose = f"{basis_label}: {basis_other}" if basis_other else basis_label
    now = timezone.now()
    content = item_content(
        user=subject, group=group, items=items, summary=(summary or "").strip() or None
    )
    data = package_file(
        header={
            "kind": "Required by law",
            "legal_basis": purpose,
            "reference": reference,
            "recipient": recipient,
            "what_is_disclosed": description,
            "group": group.name if group else None,
            "about_account": subject.username,
            "produced_at": now.isoformat(),
        },
        content=content,
    )
    disclosure = Disclosure.objects.create(
        kind=DisclosureKind.LEGAL,
        subject=subject,
        group=group,
        made_by=actor,
        items=items,
        recipient=recipient,
        purpose=purpose,
        legal_basis=legal_basis,
        reference=reference,
        description=description,
        restricted_until=restricted_until,
        package_sha256=package_sha256(data),
        created_at=now,
    )
    record_event(
        action=Action.LEGAL_DISCLOSURE_MADE,
        actor=actor,
        subject=None if restricted_until else subject,
        target=disclosure,
        group_id=group.pk if group else None,
        ip=ip,
        extra={
            "sha256": disclosure.package_sha256,
            "items": items,
            "basis": legal_basis,
            "restricted_until": restricted_until.isoformat() if restricted_until else None,
        },
    )
    if restricted_until is None:
        _notify_of_disclosure(disclosure, now=now)
    return Package(disclosure=disclosure, data=data)


@dataclass(frozen=True)
class NoticesResult:
    sent: int


@transaction.atomic
def disclosure_notices_send_due(*, now: datetime | None = None) -> NoticesResult:
    """Tell members about legal disclosures whose restriction has ended (the scheduler
    runs this; running it again sends nothing twice)."""
    now = now or timezone.now()
    due = list(
        Disclosure.objects.select_for_update(skip_locked=True)
        .select_related("subject")
        .filter(
            kind=DisclosureKind.LEGAL,
            member_notified_at__isnull=True,
            restricted_until__lte=timezone.localdate(now),
        )
        .order_by("pk")
    )
    for disclosure in due:
        _notify_of_disclosure(disclosure, now=now)
    return NoticesResult(sent=len(due))


# --- helpers ------------------------------------------------------------------------------


def _notify_of_disclosure(disclosure: Disclosure, *, now: datetime) -> None:
    disclosure.member_notified_at = now
    disclosure.save(update_fields=["member_notified_at"])
    record_event(
        action=Action.DISCLOSURE_MEMBER_NOTIFIED,
        subject=disclosure.subject,
        target=disclosure,
        group_id=disclosure.group_id,
    )
    _tell(
        disclosure.subject,
        NOTICE_SHARED,
        page="account_activity",
        email="privacy/email/disclosed.txt",
    )


def _tell(user: User, text: str, *, page: str, email: str | None = None) -> None:
    """A notice on the person's open pages (linking to ``page``, a URL name) and, with
    ``email``, to their confirmed recovery email (in words that name no group and nothing
    shared)."""
    send_account_notice(user_id=user.pk, text=text, url=reverse(page))
    if email:
        email_people_on_commit(
            people=[user], subject="About your information", body=email_body(email)
        )


def _tell_requester(consent: ConsentRequest) -> None:
    if consent.requested_by_id:
        requester = Membership.objects.get(pk=consent.requested_by_id)
        send_account_notice(
            user_id=requester.user_id,
            text=NOTICE_CONSENT_ANSWERED,
            url=reverse("disclosures:group_consents", args=[consent.group.slug]),
        )


def _require_facilitator(actor: User, group_id: int) -> Membership:
    facilitator = facilitation_now(actor, group_id)
    if facilitator is None:
        raise PrivacyError("not_facilitator", "Only this group's facilitators can do that.")
    return facilitator


def _own_consent_locked(actor: User, consent: ConsentRequest) -> ConsentRequest:
    consent = (
        ConsentRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("membership__user", "group")
        .get(pk=consent.pk)
    )
    if consent.membership.user_id != actor.pk:
        raise PrivacyError("not_yours", "This request is not about you.")
    return consent


def _valid_items(items: list[str], *, summary: str | None) -> list[str]:
    chosen = set(items or [])
    if not chosen:
        raise PrivacyError("items_required", "Choose what would be shared.", field="items")
    if not chosen <= set(Item.values):
        raise PrivacyError("bad_item", "Choose from the list.", field="items")
    if Item.SUMMARY in chosen and not (summary or "").strip():
        raise PrivacyError("summary_required", "Write the summary.", field="summary")
    return [item for item in Item.values if item in chosen]


def _has_records_in(user: User, group: Group) -> bool:
    return (
        Membership.objects.filter(user=user, group=group).exists()
        or Application.objects.filter(applicant=user, group=group).exists()
    )
