from django.conf import settings
from django.db import models

from audit.events import Action
from supportgroups.crypto import EncryptedTextField

GENESIS_HASH = "0" * 64


class Event(models.Model):
    """One row of the append-only, hash-chained access log.

    Written only by ``audit.services.record_event``. ``hash`` is an HMAC (AUDIT_KEY) over
    ``prev_hash`` and this row's canonical content, so altering, removing or reordering
    rows breaks the chain (``manage.py verify_audit_log``). In PostgreSQL a trigger
    refuses UPDATE and DELETE outright. Rows hold ids and actions, never message text,
    answers or secrets.
    """

    seq = models.BigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False, db_index=True)
    # No database constraints: the log must outlive the people and groups it names.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        help_text="Who did it (empty for the system).",
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        help_text="Whose data or account it concerns; shown to that person.",
    )
    action = models.PositiveIntegerField(choices=[(a.value, a.label) for a in Action])
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    group_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # Only admins may read where a request came from: stored encrypted, searchable
    # through its blind index.
    ip = EncryptedTextField(null=True, blank=True)
    ip_index = models.CharField(max_length=64, blank=True, db_index=True)
    extra = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["actor", "-seq"], name="audit_event_actor_seq"),
            models.Index(fields=["subject", "-seq"], name="audit_event_subject_seq"),
            models.Index(fields=["action", "-seq"], name="audit_event_action_seq"),
            models.Index(fields=["group_id", "-seq"], name="audit_event_group_seq"),
            models.Index(fields=["ip_index", "-seq"], name="audit_event_ip_seq"),
            models.Index(
                fields=["target_type", "target_id", "-seq"], name="audit_event_target_seq"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action_enum.label}"

    @property
    def action_enum(self) -> Action:
        return Action(self.action)


class ChainCheckpoint(models.Model):
    """The result of one verification of the whole chain (``verify_audit_log``), so the
    console can say "verified up to row N at time T" without walking the log itself."""

    checked_at = models.DateTimeField()
    verified_rows = models.BigIntegerField()
    last_seq = models.BigIntegerField(null=True)
    last_hash = models.CharField(max_length=64, blank=True)
    ok = models.BooleanField()
    broken_seq = models.BigIntegerField(null=True)
    problem = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-checked_at"]

    def __str__(self) -> str:
        return f"chain check {self.checked_at:%Y-%m-%d %H:%M} ({'ok' if self.ok else 'broken'})"
