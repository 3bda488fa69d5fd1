from django.db import models
from django.utils import timezone

from groups.models import Group, Membership
from meetings.models import Meeting, Message
from supportgroups.crypto import EncryptedTextField


class Report(models.Model):
    """A member's report of a message. The message is copied (encrypted) into the report
    so it survives the room's retention until the report is resolved."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="reports")
    meeting = models.ForeignKey(Meeting, null=True, on_delete=models.SET_NULL, related_name="+")
    message = models.ForeignKey(
        Message, null=True, on_delete=models.SET_NULL, related_name="reports"
    )
    message_seq = models.BigIntegerField(null=True, blank=True)
    # Or a post on the group's board (then message and message_seq stay empty; the post's
    # text is copied into message_body the same way).
    post = models.ForeignKey(
        "board.Post", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    message_body = EncryptedTextField(null=True, blank=True)
    reported = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="reports_about"
    )
    reporter = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="reports_made"
    )
    guideline_number = models.PositiveIntegerField()
    guideline_text = models.CharField(max_length=500)
    note = EncryptedTextField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.CharField(max_length=30, blank=True)
    resolution_note = EncryptedTextField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["group", "status"], name="report_group_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "reporter"], name="one_report_per_message_and_reporter"
            ),
            models.UniqueConstraint(
                fields=["post", "reporter"], name="one_report_per_post_and_reporter"
            ),
        ]

    def __str__(self) -> str:
        return f"report {self.pk} in {self.group}"

    @property
    def resolution_label(self) -> str:
        if self.resolution == "none":
            return "no action needed"
        # One decision may have taken two steps ("hide_message+mute").
        steps = [s for s in self.resolution.split("+") if s in ActionKind.values]
        labels = [step_label(step, post=self.post_id is not None) for step in steps]
        return " and ".join([labels[0], *(label.lower() for label in labels[1:])]) if labels else ""


class ActionKind(models.TextChoices):
    WARN = "warn", "Warning"
    MUTE = "mute", "Muted"
    UNMUTE = "unmute", "Unmuted"
    SUSPEND = "suspend", "Suspended"
    REMOVE = "remove", "Removed from the group"
    REINSTATE = "reinstate", "Reinstated"
    HIDE_MESSAGE = "hide_message", "Message hidden"


def step_label(kind: str, *, post: bool) -> str:
    """A step in words; hiding names what was hidden (a board post is not a message)."""
    if kind == ActionKind.HIDE_MESSAGE and post:
        return "Board post hidden"
    return ActionKind(kind).label


def step_filter_label(kind: str) -> str:
    """A kind of step in words for the log's filter, which finds it whether it was about a
    message or a board post: the words of the log's rows ("Message hidden or board post
    hidden")."""
    labels = list(dict.fromkeys(step_label(kind, post=post) for post in (False, True)))
    return " or ".join([labels[0], *(label.lower() for label in labels[1:])])


class ModerationAction(models.Model):
    """One step a facilitator took about a member. The member sees it, with the rule and
    the reason; the group's facilitators see the log."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="moderation_actions")
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="moderation_actions"
    )
    kind = models.CharField(max_length=20, choices=ActionKind.choices)
    guideline_number = models.PositiveIntegerField(null=True, blank=True)
    guideline_text = models.CharField(max_length=500, blank=True)
    reason = EncryptedTextField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    actor = models.ForeignKey(Membership, null=True, on_delete=models.SET_NULL, related_name="+")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    post = models.ForeignKey(
        "board.Post", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    report = models.ForeignKey(
        Report, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["group", "-created_at"], name="modaction_group_created")]

    def __str__(self) -> str:
        return f"{self.label} ({self.membership})"

    @property
    def label(self) -> str:
        return step_label(self.kind, post=self.post_id is not None)


class SafetyFlag(models.Model):
    """Someone is worried about a member's safety (their own or another's)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        HANDLED = "handled", "Handled"

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="safety_flags")
    raised_by = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    about = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="safety_flags"
    )
    note = EncryptedTextField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handled_note = EncryptedTextField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["group", "status"], name="safetyflag_group_status")]

    def __str__(self) -> str:
        return f"safety flag {self.pk} in {self.group}"


class Announcement(models.Model):
    """A facilitator's message pinned at the top of a meeting room (at most 500 characters,
    kept by the service; encrypted at rest)."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="announcements")
    text = EncryptedTextField()
    author = models.ForeignKey(Membership, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"announcement in {self.meeting}"


class ContactReveal(models.Model):
    """A break-glass look at a member's phone and emergency contact, with its reason."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="contact_reveals")
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="contact_reveals"
    )
    actor = models.ForeignKey(Membership, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"contact reveal {self.pk} in {self.group}"
