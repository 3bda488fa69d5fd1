"""A group's board: threads and replies between meetings, under each member's pseudonym.

Threads are numbered per group and posts per thread, so nothing in a URL or a page counts
across groups (a site-wide id would say how busy other groups are and order one person's
posts in two groups against each other).
"""

from django.db import models
from django.utils import timezone

from groups.models import Group, Membership
from supportgroups.crypto import EncryptedTextField


class Removal(models.TextChoices):
    """Why a post's text (or a thread's title, the first post's text) is gone, stored
    when it goes: each page, frame and export says the honest reason, never a guess."""

    AUTHOR = "author", "[deleted by its author]"
    RETENTION = "retention", "[removed under the group's retention period]"
    ACCOUNT_DELETED = "account_deleted", "[removed: the author's account was deleted]"


def removal_label(reason: str) -> str:
    return Removal(reason).label if reason in Removal.values else "[removed]"


class Thread(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="threads")
    number = models.PositiveIntegerField()
    # Null once its text is gone with the first post's (its author deleted it, the
    # group's retention took it, or the author's account was deleted): why, in
    # ``title_removed``.
    title = EncryptedTextField(null=True)
    title_removed = models.CharField(max_length=16, choices=Removal.choices, blank=True)
    author = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="threads_started"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The newest post's time: the board lists threads by it (keyset: last_post_at, number).
    last_post_at = models.DateTimeField(default=timezone.now)
    last_post_number = models.PositiveIntegerField(default=0)
    pinned = models.BooleanField(default=False)
    # Locked: nobody replies for now (e.g. to let things cool down); closed: the
    # conversation has ended. Both keep it readable.
    locked = models.BooleanField(default=False)
    closed = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "number"], name="unique_thread_number")
        ]
        indexes = [
            models.Index(
                fields=["group", "-pinned", "-last_post_at", "-number"], name="thread_board_order"
            )
        ]

    def __str__(self) -> str:
        return f"thread {self.number} of group {self.group_id}"

    @property
    def open_for_replies(self) -> bool:
        return not (self.locked or self.closed)

    @property
    def title_removed_label(self) -> str:
        return removal_label(self.title_removed)


class Post(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    number = models.PositiveIntegerField()
    # Null once the author's account is deleted: the author then shows as "[removed]".
    author = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="board_posts"
    )
    # Null once deleted by its author or with their account: the text is gone, and
    # ``removed`` says why. (The group's retention deletes the whole post.) A post that
    # was reported has its text copied into the report (moderation Report.message_body),
    # kept there as evidence until the report is resolved, as a reported chat message's
    # is: the facilitators decide on what was said even if its author deletes it.
    body = EncryptedTextField(null=True)
    removed = models.CharField(max_length=16, choices=Removal.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When its author deleted it.
    deleted_at = models.DateTimeField(null=True, blank=True)
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["thread", "number"], name="unique_post_number")
        ]
        indexes = [models.Index(fields=["created_at"], name="board_post_created")]

    def __str__(self) -> str:
        return f"post {self.number} of thread {self.thread_id}"

    @property
    def removed_label(self) -> str | None:
        """What shows in place of its text, once the text is gone (else None)."""
        return removal_label(self.removed) if self.body is None else None


class ThreadRead(models.Model):
    """How far one member has read one thread: the highest post number shown to them (on
    its page, or arriving live while they looked), for the unread counts on "My groups".

    Not audited and holds no time: it is the person's own place in their reading, like
    presence in a room, and the only thing it could tell anyone is what it is for.
    """

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="board_reads")
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="reads")
    read_up_to = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "thread"], name="one_read_per_thread")
        ]

    def __str__(self) -> str:
        return f"{self.membership_id} read thread {self.thread_id} to {self.read_up_to}"
