import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from groups.models import Group, Membership
from supportgroups.crypto import EncryptedTextField


class Recurrence(models.TextChoices):
    NONE = "none", "Once"
    WEEKLY = "weekly", "Every week"
    FORTNIGHTLY = "fortnightly", "Every two weeks"


class Meeting(models.Model):
    """One occurrence of a group's meeting: its room is open from a little before the
    start (or when a facilitator opens it early) until the end (or when closed)."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="meetings")
    title = models.CharField(max_length=120)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # Occurrences scheduled together share a series id, so a series can be cancelled.
    series = models.UUIDField(default=uuid.uuid4, db_index=True)
    recurrence = models.CharField(
        max_length=20, choices=Recurrence.choices, default=Recurrence.NONE
    )
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The seq of the newest message; the next message gets last_seq + 1 under a row lock.
    last_seq = models.BigIntegerField(default=0)
    # When the room's messages were wiped under "delete when the meeting ends".
    messages_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["group", "starts_at"], name="meeting_group_start")]

    def __str__(self) -> str:
        return f"{self.title} ({self.starts_at:%Y-%m-%d %H:%M})"

    @property
    def opens_at(self):
        """When the room opens: a little before the start, or earlier if opened by hand."""
        scheduled = self.starts_at - timedelta(minutes=settings.MEETING_OPEN_LEAD_MINUTES)
        return min(self.opened_at, scheduled) if self.opened_at else scheduled

    def is_open(self, now=None) -> bool:  # noqa: ANN001
        now = now or timezone.now()
        return self.closed_at is None and self.opens_at <= now < self.ends_at

    def has_ended(self, now=None) -> bool:  # noqa: ANN001
        now = now or timezone.now()
        return self.closed_at is not None or now >= self.ends_at


class Message(models.Model):
    """A chat message, committed with its seq before anyone is told about it."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    client_id = models.CharField(max_length=64)
    # Null once the author's account is deleted: the message then shows as "[removed]".
    author = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="messages"
    )
    body = EncryptedTextField(null=True)
    created_at = models.DateTimeField(default=timezone.now)
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["meeting", "seq"], name="unique_message_seq"),
            models.UniqueConstraint(
                fields=["meeting", "client_id"], name="unique_message_client_id"
            ),
        ]
        # The per-member send rate counts the sender's last few seconds of messages.
        indexes = [models.Index(fields=["author", "created_at"], name="message_author_recent")]

    def __str__(self) -> str:
        return f"message {self.seq} in meeting {self.meeting_id}"


class Attendance(models.Model):
    """Who came to a meeting (by membership), for facilitators; never what they said."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="attendance")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="attendance")
    first_joined_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["meeting", "membership"], name="one_attendance_per_meeting"
            )
        ]

    def __str__(self) -> str:
        return f"attendance {self.membership_id} at {self.meeting_id}"


class Presence(models.Model):
    """An open socket in a room. Shared by every Daphne process through the database;
    a row not refreshed by the client's heartbeat for a while no longer counts."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="presence")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["meeting", "seen_at"], name="presence_meeting_seen")]

    def __str__(self) -> str:
        return f"presence {self.membership_id} in {self.meeting_id}"


class MeetingHold(models.Model):
    """A group's meetings on hold (a security incident): while a hold is not lifted, no
    room of the group opens and open ones are closed. Several holds may cover one group
    (two incidents); its meetings resume when the last is lifted."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="meeting_holds")
    held_at = models.DateTimeField(default=timezone.now)
    held_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["group"],
                condition=models.Q(lifted_at__isnull=True),
                name="meeting_hold_in_force",
            )
        ]

    def __str__(self) -> str:
        return f"hold {self.pk} of group {self.group_id}"
