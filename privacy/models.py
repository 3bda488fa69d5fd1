"""Consent requests and the disclosures made outside the app (issue 23).

What is sensitive here (who the information goes to, why, the facilitator's summary, the
legal reference, what the member approved) is encrypted at rest; ids, kinds, dates and
the package's SHA-256 are not.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from groups.models import Group, Membership
from supportgroups.crypto import EncryptedJSONField, EncryptedTextField


class Item(models.TextChoices):
    """What a disclosure package may hold about a member, one kind each."""

    CONTACT_DETAILS = (
        "contact_details",
        "Contact details (recovery email, phone, emergency contact)",
    )
    SCREENING_ANSWERS = "screening_answers", "Answers to the group's intake questions"
    ATTENDANCE = "attendance", "Meetings attended"
    SUMMARY = "summary", "A written summary"


# The items that are about one group (the others are about the account).
GROUP_ITEMS = frozenset({Item.SCREENING_ANSWERS, Item.ATTENDANCE})


class ConsentStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the member"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Declined"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ConsentRequest(models.Model):
    """A facilitator asks a member of their group to agree to share named items with a
    named recipient, for a stated purpose, until a date.

    ``approved_items`` is the content the member read and approved (deleted when they
    withdraw): a package holds exactly that, never what the records say later.
    """

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="consent_requests")
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="consent_requests"
    )
    requested_by = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    items = models.JSONField(default=list)  # Item values, in Item order
    recipient = EncryptedTextField()
    purpose = EncryptedTextField()
    summary = EncryptedTextField(null=True, blank=True)
    valid_until = models.DateField(help_text="The last day the consent covers.")
    status = models.CharField(
        max_length=20, choices=ConsentStatus.choices, default=ConsentStatus.PENDING
    )
    approved_items = EncryptedJSONField(null=True, blank=True)
    approved_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["group", "status"], name="consent_group_status")]

    def __str__(self) -> str:
        return f"consent request {self.pk} in {self.group}"

    def is_expired(self, now=None) -> bool:  # noqa: ANN001
        return timezone.localdate(now or timezone.now()) > self.valid_until

    def is_usable(self, now=None) -> bool:  # noqa: ANN001
        return self.status == ConsentStatus.APPROVED and not self.is_expired(now)

    def item_labels(self) -> list[str]:
        return [Item(i).label for i in self.items]


class LegalBasis(models.TextChoices):
    COURT_ORDER = "court_order", "A court order"
    SAFEGUARDING = "safeguarding", "A safeguarding duty"
    LAW_ENFORCEMENT = "law_enforcement", "A law enforcement request"
    OTHER = "other", "Another legal obligation"


class DisclosureKind(models.TextChoices):
    CONSENTED = "consented", "With the member's consent"
    LEGAL = "legal", "Required by law"


class Disclosure(models.Model):
    """One package of a member's information that left the app: who made it, for whom,
    what it held (the item kinds) and why, and the SHA-256 of the file handed over.

    The file itself is not kept: its hash proves which file it was."""

    kind = models.CharField(max_length=20, choices=DisclosureKind.choices)
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="disclosures"
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="disclosures"
    )
    made_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Consented: the consent it was made under, and the facilitator's place.
    consent = models.ForeignKey(
        ConsentRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="packages"
    )
    made_by_membership = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    items = models.JSONField(default=list)
    recipient = EncryptedTextField()
    purpose = EncryptedTextField()
    # Legal disclosures only.
    legal_basis = models.CharField(max_length=20, choices=LegalBasis.choices, blank=True)
    reference = EncryptedTextField(null=True, blank=True)
    description = EncryptedTextField(null=True, blank=True)
    # While telling the member is restricted by law: the first day they may be told.
    restricted_until = models.DateField(null=True, blank=True)
    member_notified_at = models.DateTimeField(null=True, blank=True)
    package_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["subject", "-created_at"], name="disclosure_subject"),
            models.Index(
                fields=["restricted_until", "member_notified_at"], name="disclosure_restricted"
            ),
        ]

    def __str__(self) -> str:
        return f"disclosure {self.pk} ({self.kind})"

    def item_labels(self) -> list[str]:
        return [Item(i).label for i in self.items]

    def is_restricted(self, now=None) -> bool:  # noqa: ANN001
        """Whether the member may not yet be told (nor see it on any page)."""
        return self.restricted_until is not None and (
            timezone.localdate(now or timezone.now()) < self.restricted_until
        )
