import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from supportgroups.crypto import EncryptedTextField, blind_index


def _new_link_token() -> str:
    return secrets.token_urlsafe(16)


class Topic(models.TextChoices):
    MENTAL_HEALTH = "mental_health", "Mental health"
    ADDICTION = "addiction", "Addiction and recovery"
    CHRONIC_ILLNESS = "chronic_illness", "Chronic illness"
    GRIEF = "grief", "Grief and loss"
    SURVIVORS = "survivors", "Survivors"
    CARERS = "carers", "Carers"
    OTHER = "other", "Other"


class Retention(models.TextChoices):
    MEETING_END = "meeting_end", "Delete when the meeting ends"
    DAYS_7 = "7d", "Keep for 7 days"
    DAYS_30 = "30d", "Keep for 30 days"
    DAYS_90 = "90d", "Keep for 90 days"


class Group(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    topic = models.CharField(max_length=30, choices=Topic.choices)
    description = models.TextField(help_text="Public: shown in the directory.")
    eligibility = models.TextField(help_text="Public: who this group is for.")
    meeting_rhythm = models.CharField(
        max_length=200, help_text="Public: e.g. “Tuesdays, 7–8:30 pm”."
    )
    # Whose clock the rhythm is on: "7 pm" means nothing to a reader in another zone.
    # Shown with the rhythm (and converted to the reader's zone where a meeting is dated).
    meeting_time_zone = models.CharField(
        "Time zone of the meeting times",
        max_length=64,
        default="UTC",
        help_text="The zone the rhythm's times are in, e.g. Europe/London.",
    )
    listed = models.BooleanField(
        default=True,
        help_text="Listed groups appear in the public directory. Unlisted ones are reached "
        "only through their private link.",
    )
    # The private link of an unlisted group; changing it invalidates links already shared.
    # Encrypted (its facilitators are shown it to share it), and found by its blind index:
    # a copy of the database opens no unlisted group. Both are set by set_link_token().
    link_token = EncryptedTextField()
    link_token_index = models.CharField(max_length=64, unique=True)
    capacity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most members at once; empty for no limit."
    )
    show_member_count = models.BooleanField(
        default=False, help_text="Show how many members the group has on its public page."
    )
    retention = models.CharField(
        max_length=20,
        choices=Retention.choices,
        default=Retention.MEETING_END,
        help_text="How long chat messages are kept.",
    )
    crisis_resources = models.TextField(
        help_text="Shown in every meeting: who to contact in a crisis."
    )
    reapply_cooldown_days = models.PositiveIntegerField(
        default=30, help_text="Days after a declined application before the person may apply again."
    )
    e2ee_meetings = models.BooleanField(
        "End-to-end encrypted meetings",
        default=True,
        help_text="Only the people in a meeting can read it: not the facilitators afterwards, "
        "not the people who run this site. A change applies from the next meeting.",
    )
    requires_screening = models.BooleanField(
        default=True,
        help_text="People apply and are screened. Without screening, facilitators invite people.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The latest published agreement, kept by agreement_publish (the same transaction).
    # Each membership keeps the version it last signed, so "has this member signed the
    # current agreement?" is a comparison of two columns: it is asked for every chat
    # message and every member listed on a dashboard.
    current_agreement = models.ForeignKey(
        "AgreementVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_link_token(self, token: str | None = None) -> None:
        """A new private link (random unless given), with its blind index."""
        self.link_token = token or _new_link_token()
        self.link_token_index = link_token_index(self.link_token)


def link_token_index(token: str) -> str:
    return blind_index(token, purpose="group-link")


class Guideline(models.Model):
    """One numbered rule, so moderation can cite "rule 3"."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="guidelines")
    number = models.PositiveIntegerField()
    text = models.CharField(max_length=500)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["group", "number"], name="unique_guideline_number")
        ]

    def __str__(self) -> str:
        return f"{self.number}. {self.text}"


class AgreementVersion(models.Model):
    """A published confidentiality agreement. Never edited: a change is a new version."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="agreements")
    version = models.PositiveIntegerField()
    text = models.TextField()
    summary = models.CharField(max_length=300, blank=True)
    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["group", "version"], name="unique_agreement_version")
        ]

    def __str__(self) -> str:
        return f"{self.group} agreement v{self.version}"


class Role(models.TextChoices):
    MEMBER = "member", "Member"
    FACILITATOR = "facilitator", "Facilitator"


class Status(models.TextChoices):
    PENDING_AGREEMENT = "pending_agreement", "Waiting for you to choose a name and sign"
    ACTIVE = "active", "Active"
    MUTED = "muted", "Muted"
    SUSPENDED = "suspended", "Suspended"
    REMOVED = "removed", "Removed"
    LEFT = "left", "Left"


# Statuses in which a person still belongs to the group (and holds a place).
CURRENT_STATUSES = (Status.PENDING_AGREEMENT, Status.ACTIVE, Status.MUTED, Status.SUSPENDED)


class Membership(models.Model):
    """A person's place in one group, under a pseudonym chosen for that group only.

    Its table carries a database trigger (board/migrations/0003: a place whose status
    ends loses its board read markers). SQLite drops a table's triggers when a migration
    rebuilds it (most AlterField/RemoveField there): a migration that changes this table
    must create the trigger again after it (tests/board/test_board_removals.py and
    tests/supportgroups/test_embedded_default.py check it is there)."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING_AGREEMENT
    )
    pseudonym = models.CharField(max_length=30, blank=True)
    # Case-, accent- and confusable-folded pseudonym: unique within the group.
    pseudonym_key = models.CharField(max_length=60, blank=True)
    pseudonym_changed_at = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(default=timezone.now)
    muted_until = models.DateTimeField(null=True, blank=True)
    suspended_until = models.DateTimeField(null=True, blank=True)
    # Kept by agreement_sign; the Signature rows stay the record of every signing.
    signed_agreement = models.ForeignKey(
        AgreementVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "user"], name="one_membership_per_group"),
            models.UniqueConstraint(
                fields=["group", "pseudonym_key"],
                condition=~Q(pseudonym_key=""),
                name="unique_pseudonym_in_group",
            ),
        ]
        indexes = [models.Index(fields=["group", "status"], name="membership_group_status")]

    def __str__(self) -> str:
        return self.pseudonym or f"membership {self.pk}"

    def effective_status(self, now=None) -> str:  # noqa: ANN001
        """The status with lapsed mutes and suspensions already lifted: a mute "until 3pm"
        ends at 3pm even before the housekeeping job records it."""
        now = now or timezone.now()
        if self.status == Status.MUTED and self.muted_until and self.muted_until <= now:
            return Status.ACTIVE
        if self.status == Status.SUSPENDED and self.suspended_until and self.suspended_until <= now:
            return Status.ACTIVE
        return self.status

    @property
    def effective_status_label(self) -> str:
        """The status as shown: a mute whose time is up reads "Active" at once."""
        return Status(self.effective_status()).label

    @property
    def is_current(self) -> bool:
        return self.status in CURRENT_STATUSES

    @property
    def is_facilitator(self) -> bool:
        return self.role == Role.FACILITATOR and self.is_current


class Signature(models.Model):
    """Who signed which agreement version, when, by typing their pseudonym."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="signatures")
    agreement = models.ForeignKey(
        AgreementVersion, on_delete=models.PROTECT, related_name="signatures"
    )
    typed_name = models.CharField(max_length=30)
    guidelines_acknowledged = models.BooleanField()
    signed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["membership", "agreement"], name="one_signature_per_version"
            )
        ]

    def __str__(self) -> str:
        return f"signature of v{self.agreement.version} by {self.typed_name}"


class Invitation(models.Model):
    """A single-use link a facilitator or admin shares with someone to give them a place."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    note = models.CharField(
        max_length=100,
        blank=True,
        help_text="Private reminder for facilitators, e.g. “from the clinic referral”. "
        "Don't write names.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Deliberately not linked to the membership it created: the note must not become a
    # way to tell who is behind a pseudonym.
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"invitation {self.pk} to {self.group}"

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()
