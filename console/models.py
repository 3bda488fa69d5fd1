"""Security incidents (a breach response) and the notices they send to members."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from groups.models import Group
from meetings.models import MeetingHold
from supportgroups.crypto import EncryptedTextField

# What had been done when a notice was sent, in the order it is told (console.notices).
NOTICE_STEP_WORDS = {
    "signed_out": "We signed people out on every device, so anyone who got in is out again.",
    "credentials_renewed": (
        "We asked the people who run groups to choose new passwords and set up "
        "two-factor authentication again."
    ),
    "meetings_on_hold": "We paused some meetings while we check what happened.",
    "keys_rotated": "We replaced the keys that protect the information stored here.",
}

# GDPR article 33: the supervisory authority is told within 72 hours of becoming aware.
REGULATOR_DEADLINE = timedelta(hours=72)


class Incident(models.Model):
    """A suspected or confirmed breach an admin is responding to.

    What happened is sensitive (it may name an account or an address): encrypted at rest.
    Every step taken is an audit event whose target is the incident; its timeline is
    read from the log."""

    title = EncryptedTextField()
    description = EncryptedTextField()
    detected_at = models.DateTimeField()
    opened_at = models.DateTimeField(default=timezone.now)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    affected_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    affected_groups = models.ManyToManyField(Group, blank=True, related_name="+")
    meeting_holds = models.ManyToManyField(MeetingHold, blank=True, related_name="+")
    regulator_notified_at = models.DateTimeField(null=True, blank=True)
    regulator_reference = EncryptedTextField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"incident {self.pk}"

    @property
    def regulator_deadline(self):
        return self.detected_at + REGULATOR_DEADLINE


class KeyRotation(models.Model):
    """A re-encryption of every encrypted column with the first key, run from an
    incident's page one batch per request (so it survives a closed tab, a restart or a
    second Daphne: the position is here, and rows already done are skipped)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="rotations")
    started_at = models.DateTimeField(default=timezone.now)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    total_rows = models.PositiveBigIntegerField(default=0)
    rows_seen = models.PositiveBigIntegerField(default=0)
    rows_changed = models.PositiveBigIntegerField(default=0)
    # Where the next batch starts: a model label and the last primary key done there.
    position_model = models.CharField(max_length=100, blank=True)
    position_pk = models.JSONField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"key rotation {self.pk}"


class SecurityNotice(models.Model):
    """An incident's notice to one person, shown on every page until they mark it read.
    Its words are the app's own (console/templates), never an admin's free text, so a
    notice can never name a group."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notices")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="security_notices"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # What had been done when it was sent (codes of NOTICE_STEP_WORDS), so
    # the notice reads the same later.
    steps = models.JSONField(default=list)
    emailed = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "user"], name="one_notice_per_incident")
        ]
        indexes = [
            models.Index(
                fields=["user"], condition=models.Q(read_at__isnull=True), name="notice_unread"
            )
        ]

    def __str__(self) -> str:
        return f"security notice {self.pk}"

    @property
    def step_words(self) -> list[str]:
        return [NOTICE_STEP_WORDS[code] for code in self.steps if code in NOTICE_STEP_WORDS]
