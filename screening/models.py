from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from groups.models import Group, Membership
from supportgroups.crypto import EncryptedJSONField, EncryptedTextField


class Questionnaire(models.Model):
    """One version of a group's intake questions. Never edited once an application uses
    it: editing publishes a new version, so answers keep the questions they answered."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="questionnaires")
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "version"], name="unique_questionnaire_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.group} questionnaire v{self.version}"


class QuestionKind(models.TextChoices):
    SHORT_TEXT = "short_text", "Short answer"
    LONG_TEXT = "long_text", "Long answer"
    SINGLE_CHOICE = "single_choice", "One choice from a list"
    MULTIPLE_CHOICE = "multiple_choice", "Several choices from a list"
    YES_NO = "yes_no", "Yes or no"


CHOICE_KINDS = (QuestionKind.SINGLE_CHOICE, QuestionKind.MULTIPLE_CHOICE)
ANSWER_LIMITS = {QuestionKind.SHORT_TEXT: 200, QuestionKind.LONG_TEXT: 4000}


class Question(models.Model):
    questionnaire = models.ForeignKey(
        Questionnaire, on_delete=models.CASCADE, related_name="questions"
    )
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=QuestionKind.choices)
    text = models.CharField(max_length=300)
    help_text = models.CharField(max_length=500, blank=True)
    required = models.BooleanField(default=True)
    choices = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.text


class ApplicationStatus(models.TextChoices):
    DRAFT = "draft", "Draft — not sent yet"
    SUBMITTED = "submitted", "Sent — waiting for the facilitators"
    INFO_REQUESTED = "info_requested", "The facilitators asked you something"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Not offered a place"
    WAITLISTED = "waitlisted", "On the waiting list"
    WITHDRAWN = "withdrawn", "Withdrawn"


# The same states as the facilitators read them (the labels above speak to the applicant).
STATUS_FOR_REVIEWERS = {
    ApplicationStatus.DRAFT: "Draft — not sent yet",
    ApplicationStatus.SUBMITTED: "Waiting for a decision",
    ApplicationStatus.INFO_REQUESTED: "Waiting for the applicant's answer",
    ApplicationStatus.APPROVED: "Approved",
    ApplicationStatus.DECLINED: "Declined",
    ApplicationStatus.WAITLISTED: "On the waiting list",
    ApplicationStatus.WITHDRAWN: "Withdrawn by the applicant",
}

OPEN_STATUSES = (
    ApplicationStatus.DRAFT,
    ApplicationStatus.SUBMITTED,
    ApplicationStatus.INFO_REQUESTED,
    ApplicationStatus.WAITLISTED,
)


class Application(models.Model):
    """One person's request to join one group. The answers are the most sensitive data in
    the system: encrypted, shown only to the group's facilitators, every look recorded."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="applications")
    applicant = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="applications"
    )
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=20, choices=ApplicationStatus.choices, default=ApplicationStatus.DRAFT
    )
    answers = EncryptedJSONField(null=True, blank=True)
    info_request = EncryptedTextField(null=True, blank=True)
    info_response = EncryptedTextField(null=True, blank=True)
    message_to_applicant = EncryptedTextField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    waitlisted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # When the applicant last looked: newer updates are "news" for them.
    seen_by_applicant_at = models.DateTimeField(default=timezone.now)
    # Bumped by every transition: a form from a stale page carries an old number and is
    # refused instead of overwriting someone else's decision.
    revision = models.PositiveIntegerField(default=1)
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "applicant"],
                condition=Q(status__in=["draft", "submitted", "info_requested", "waitlisted"]),
                name="one_open_application_per_group",
            )
        ]
        indexes = [
            models.Index(fields=["group", "status", "submitted_at"], name="application_queue")
        ]

    def __str__(self) -> str:
        return f"application {self.pk} to {self.group}"

    @property
    def status_for_reviewers(self) -> str:
        return STATUS_FOR_REVIEWERS[self.status]

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def has_news(self) -> bool:
        return self.updated_at > self.seen_by_applicant_at


class ReviewerNote(models.Model):
    """Private to the group's facilitators (never the applicant), encrypted at rest."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(Membership, null=True, on_delete=models.SET_NULL, related_name="+")
    body = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"note {self.pk} on application {self.application_id}"
