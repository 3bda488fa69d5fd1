import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Session
from groups.models import Group, Membership
from meetings.e2ee import safety_code
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
    # End-to-end encrypted (meetings/E2EE.md): taken from the group's setting when the room
    # first opens to someone (None until then), and never changed after, so a change of
    # the setting applies from the next meeting.
    e2ee = models.BooleanField(null=True, blank=True)

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

    @property
    def is_e2ee(self) -> bool:
        """Fixed once the room has opened; before that, what the group's setting says now."""
        return self.e2ee if self.e2ee is not None else self.group.e2ee_meetings


class Message(models.Model):
    """A chat message, committed with its seq before anyone is told about it."""

    # Every index is written once per message sent, so none is kept twice: the meeting's
    # and the author's lookups use the indexes below that lead with them, and the device's
    # and the hider's index hold only the messages that have one.
    meeting = models.ForeignKey(
        Meeting, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    seq = models.BigIntegerField()
    client_id = models.CharField(max_length=64)
    # Null once the author's account is deleted: the message then shows as "[removed]".
    author = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="messages", db_index=False
    )
    body = EncryptedTextField(null=True)
    created_at = models.DateTimeField(default=timezone.now)
    # End-to-end encrypted messages (body None): what the sender's browser made, stored as
    # given (meetings/E2EE.md). The server can read none of it but checks the signature.
    sender_device = models.ForeignKey(
        "Device", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    epoch = models.PositiveIntegerField(null=True, blank=True)
    index = models.BigIntegerField(null=True, blank=True)
    iv = models.BinaryField(null=True, blank=True)
    ciphertext = models.BinaryField(null=True, blank=True)
    signature = models.BinaryField(null=True, blank=True)
    commitment = models.BinaryField(null=True, blank=True)
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_by = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
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
        indexes = [
            models.Index(fields=["author", "created_at"], name="message_author_recent"),
            models.Index(
                fields=["sender_device"],
                condition=models.Q(sender_device__isnull=False),
                name="message_sender_device",
            ),
            models.Index(
                fields=["hidden_by"],
                condition=models.Q(hidden_by__isnull=False),
                name="message_hidden_by",
            ),
        ]

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
    # The socket's E2EE device (E2EE rooms, once known): who must hold each sender's key.
    device = models.ForeignKey(
        "Device", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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


def new_device_id() -> str:
    """22 characters of base64url from 16 random bytes: opaque, never reused."""
    return secrets.token_urlsafe(16)


class Device(models.Model):
    """One browser session's public keys for one membership (so keys never link a
    person's pseudonyms across groups). Retired when replaced (``retired_at``) or when its
    session ends (the session row is deleted: ``session`` becomes null)."""

    id = models.CharField(primary_key=True, max_length=22, default=new_device_id)
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="devices")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="e2ee_devices"
    )
    # Raw uncompressed P-256 points (65 bytes, 0x04 first).
    ecdh = models.BinaryField()
    ecdsa = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "membership"],
                condition=models.Q(retired_at__isnull=True, session__isnull=False),
                name="one_live_device_per_session_and_membership",
            )
        ]

    def __str__(self) -> str:
        return f"device {self.pk}"

    @property
    def is_live(self) -> bool:
        return self.retired_at is None and self.session_id is not None

    @property
    def safety_code(self) -> str:
        """What the room shows next to its pseudonym, for comparing face to face."""
        return safety_code(ecdsa_public=self.ecdsa, ecdh_public=self.ecdh)


class RoomDevice(models.Model):
    """A device admitted to a meeting's room, and the room's last seq at that moment:
    messages up to it were sent before the device came."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="room_devices")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="rooms")
    joined_after_seq = models.BigIntegerField()
    first_admitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meeting", "device"], name="one_room_device")
        ]

    def __str__(self) -> str:
        return f"{self.device_id} in {self.meeting_id}"


class SenderEpoch(models.Model):
    """A device's sending chain in one meeting: each epoch a new random chain key."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    epoch = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meeting", "device", "epoch"], name="one_sender_epoch")
        ]

    def __str__(self) -> str:
        return f"epoch {self.epoch} of {self.device_id} in {self.meeting_id}"


class KeyShare(models.Model):
    """A sender's chain key (from ``first_index`` on) wrapped for one recipient device.
    The recipient's session cascades: ending a session deletes the keys addressed to it."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="key_shares")
    sender_device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    epoch = models.PositiveIntegerField()
    first_index = models.BigIntegerField()
    recipient_device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="key_shares"
    )
    recipient_session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="+")
    wrapped = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["recipient_device", "meeting", "id"], name="keyshare_recipient"),
            models.Index(
                fields=["meeting", "sender_device", "epoch"], name="keyshare_sender_epoch"
            ),
        ]

    def __str__(self) -> str:
        return f"key share {self.pk}"
