"""Starting threads, replying, deleting one's own post, pinning/locking/closing threads,
the board's retention and what account deletion takes.

Each write re-checks the writer's place in the group (``board.selectors.board_entry_now``:
the meetings' rule), is committed, and only then tells open boards (numbers only).
Hiding a post, and every other moderation step, lives in moderation/services.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts.models import User
from audit.events import Action
from audit.services import record_event
from board.models import Post, Removal, Thread, ThreadRead
from board.selectors import board_entry_now
from groups.models import CURRENT_STATUSES, Group, Membership, Retention, Role
from groups.selectors import membership_may_write
from supportgroups.errors import ServiceError
from supportgroups.realtime import (
    send_board_post,
    send_board_post_changed,
    send_board_posts_changed,
    send_board_thread,
    send_board_thread_changed,
)
from supportgroups.zones import moment_words

TITLE_MAX_LENGTH = 120
BODY_MAX_LENGTH = 10_000
# At most this many posts (threads and replies) by one member in any window of this many
# seconds, counted from the stored posts themselves.
RATE_LIMIT_POSTS = 10
RATE_LIMIT_SECONDS = 300
RETENTION_DAYS = {Retention.DAYS_7: 7, Retention.DAYS_30: 30, Retention.DAYS_90: 90}


class BoardError(ServiceError):
    """A refused board action (its code is stable; its message is for the person)."""


_REFUSAL_TEXT = {
    "not_a_member": "You are not a member of this group.",
    "suspended": "You are suspended from this group for now: its board is closed to you.",
    "agreement_required": "Please sign the group's current agreement to use its board.",
    "muted": "A facilitator has muted you: you can read the board but not post.",
}


def refusal_text(code: str, membership: Membership | None = None) -> str:
    """The words for a refusal's code; with the membership, a suspension or a mute that
    has an end says until when."""
    if code == "suspended" and membership is not None and membership.suspended_until:
        when = moment_words(membership.suspended_until)
        return (
            f"You are suspended from this group until {when}: its board is closed to you "
            "until then."
        )
    if code == "muted" and membership is not None and membership.muted_until:
        when = moment_words(membership.muted_until)
        return (
            f"A facilitator has muted you until {when}: you can read the board but not post "
            "until then."
        )
    return _REFUSAL_TEXT.get(code, "You can't use this board now.")


def muted_text(membership: Membership) -> str:
    """What a muted member is told, with until when (as board/_muted.html says it)."""
    return refusal_text("muted", membership)


def _writer(actor: User, group_id: int) -> Membership:
    """The actor's place, if it lets them write on the board now (from the database)."""
    entry = board_entry_now(actor, group_id)
    if entry.refusal:
        raise BoardError(entry.refusal, refusal_text(entry.refusal, entry.membership))
    if not membership_may_write(entry.membership):
        raise BoardError("muted", muted_text(entry.membership))
    since = timezone.now() - timedelta(seconds=RATE_LIMIT_SECONDS)
    if Post.objects.filter(author=entry.membership, created_at__gte=since).count() >= (
        RATE_LIMIT_POSTS
    ):
        raise BoardError(
            "rate_limited",
            f"Please slow down: at most {RATE_LIMIT_POSTS} posts every "
            f"{RATE_LIMIT_SECONDS // 60} minutes.",
        )
    return entry.membership


@transaction.atomic
def thread_start(*, actor: User, group: Group, title: str, body: str) -> Thread:
    author = _writer(actor, group.pk)
    # Numbers are per group: take the next under a lock of the group's row.
    Group.objects.select_for_update(no_key=True).filter(pk=group.pk).first()
    number = (Thread.objects.filter(group=group).aggregate(top=Max("number"))["top"] or 0) + 1
    now = timezone.now()
    thread = Thread.objects.create(
        group=group,
        number=number,
        title=title.strip(),
        author=author,
        created_at=now,
        last_post_at=now,
        last_post_number=1,
    )
    Post.objects.create(thread=thread, number=1, author=author, body=body.strip(), created_at=now)
    # Who started a thread is recorded (by ids), never what it says.
    record_event(
        action=Action.BOARD_THREAD_STARTED,
        actor=actor,
        target=thread,
        group_id=group.pk,
        extra={"thread": number},
    )
    send_board_thread(group_id=group.pk, thread_number=number)
    return thread


@transaction.atomic
def post_reply(*, actor: User, thread: Thread, body: str) -> Post:
    # The thread's row lock orders replies and gives each the next number.
    thread = Thread.objects.select_for_update(no_key=True).get(pk=thread.pk)
    author = _writer(actor, thread.group_id)
    if thread.closed:
        raise BoardError("thread_closed", "This thread is closed: it takes no more replies.")
    if thread.locked and author.role != Role.FACILITATOR:
        raise BoardError("thread_locked", "A facilitator has locked this thread for now.")
    now = timezone.now()
    thread.last_post_number += 1
    thread.last_post_at = now
    thread.save(update_fields=["last_post_number", "last_post_at"])
    reply = Post.objects.create(
        thread=thread, number=thread.last_post_number, author=author, body=body.strip()
    )
    # Like chat messages, replies are not audit events: the post itself is the record,
    # and the audit log never holds what was said.
    send_board_post(group_id=thread.group_id, thread_number=thread.number, post_number=reply.number)
    return reply


@transaction.atomic
def post_delete(*, actor: User, post: Post) -> Post:
    """The author deletes their post: its text leaves the database, the post stays in its
    place ("[deleted by its author]") so replies keep their context."""
    post = (
        Post.objects.select_for_update(of=("self",), no_key=True)
        .select_related("thread", "author")
        .get(pk=post.pk)
    )
    if post.author is None or post.author.user_id != actor.pk:
        raise BoardError("not_author", "Only its author can delete a post.")
    if post.deleted_at is None:
        post.body = None
        post.removed = Removal.AUTHOR
        post.deleted_at = timezone.now()
        post.save(update_fields=["body", "removed", "deleted_at"])
        if post.number == 1:
            # The title is the first post's text too.
            post.thread.title = None
            post.thread.title_removed = Removal.AUTHOR
            post.thread.save(update_fields=["title", "title_removed"])
        record_event(
            action=Action.BOARD_POST_DELETED,
            actor=actor,
            target=post,
            group_id=post.thread.group_id,
            extra={"thread": post.thread.number, "post": post.number},
        )
        send_board_post_changed(
            group_id=post.thread.group_id,
            thread_number=post.thread.number,
            post_number=post.number,
        )
    return post


def thread_mark_read(*, actor: User, thread: Thread, up_to: int) -> None:
    """The person has been shown this thread up to post ``up_to`` (its page, or a reply
    arriving live while they looked): their read marker moves forward, never back, so
    opening an earlier page again does not make read posts new. Not audited (the
    person's own reading place, see ThreadRead); refused places are ignored, their pages
    and sockets refuse them anyway."""
    up_to = min(up_to, thread.last_post_number)
    # What the page's selector read with the thread (board.selectors.thread_or_404 with
    # the actor's place): a marker never moves back, so one that was far enough still is.
    known = getattr(thread, "read_up_to", None)
    if up_to <= 0 or (known is not None and known >= up_to):
        return
    mine = ThreadRead.objects.filter(
        thread=thread,
        membership__user=actor,
        membership__group_id=thread.group_id,
    )
    # Forward only, in one statement: two tabs can't move it back.
    if mine.filter(read_up_to__lt=up_to).update(read_up_to=up_to) or (
        known is not None or mine.exists()
    ):
        return
    with transaction.atomic():
        # The place's row is locked while the marker is written: a leave or removal
        # committing in between would run the database rule that deletes a place's
        # markers before this one existed and leave it behind. Locked, this waits for
        # that change and reads the place's status again (then finds it ended).
        membership = (
            Membership.objects.select_for_update(no_key=True)
            .filter(user=actor, group_id=thread.group_id, status__in=CURRENT_STATUSES)
            .first()
        )
        if membership is not None:
            ThreadRead.objects.get_or_create(
                membership=membership, thread=thread, defaults={"read_up_to": up_to}
            )


THREAD_STATES = ("pinned", "locked", "closed")


@transaction.atomic
def thread_set_state(*, actor: User, thread: Thread, state: str, value: bool) -> Thread:
    """A facilitator pins, locks or closes a thread (or undoes it)."""
    if state not in THREAD_STATES:
        raise BoardError("unknown_state", "Choose pin, lock or close.")
    thread = Thread.objects.select_for_update(no_key=True).get(pk=thread.pk)
    entry = board_entry_now(actor, thread.group_id)
    if entry.refusal or not entry.is_facilitator:
        raise BoardError("not_facilitator", "Only this group's facilitators can do that.")
    if getattr(thread, state) != value:
        setattr(thread, state, value)
        thread.save(update_fields=[state])
        record_event(
            action=Action.BOARD_THREAD_CHANGED,
            actor=actor,
            target=thread,
            group_id=thread.group_id,
            extra={"thread": thread.number, state: value},
        )
        send_board_thread_changed(group_id=thread.group_id, thread_number=thread.number)
    return thread


# --- retention and account deletion --------------------------------------------------------


@dataclass(frozen=True)
class BoardPurgeResult:
    groups: int
    posts_deleted: int
    threads_deleted: int


def posts_purge_expired(
    *, now: datetime | None = None, progress: Callable[[int, int, int], None] | None = None
) -> BoardPurgeResult:
    """Apply every group's retention to its board, one group per transaction (a large
    board does not hold one long transaction). ``progress(done, total, deleted)`` is
    told after each group. Safe to run as often as you like.

    7/30/90 days: posts older than that go. "Delete when the meeting ends": a post goes
    once a meeting of the group has ended after it was written, so the board holds only
    what has been said since the last meeting. A thread goes with its last post.
    """
    now = now or timezone.now()
    group_ids = list(
        Group.objects.filter(threads__isnull=False)
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    posts = threads = 0
    for done, group_id in enumerate(group_ids, start=1):
        gone_posts, gone_threads = _purge_group_board(group_id, now)
        posts += gone_posts
        threads += gone_threads
        if progress is not None:
            progress(done, len(group_ids), posts)
    return BoardPurgeResult(groups=len(group_ids), posts_deleted=posts, threads_deleted=threads)


@transaction.atomic
def _purge_group_board(group_id: int, now: datetime) -> tuple[int, int]:
    group = Group.objects.get(pk=group_id)
    if group.retention in RETENTION_DAYS:
        cutoff = now - timedelta(days=RETENTION_DAYS[group.retention])
    else:
        # The end of the group's latest ended meeting (read through the group's relation,
        # so the board does not import its sibling app).
        ended = group.meetings.filter(Q(closed_at__isnull=False) | Q(ends_at__lte=now))
        ends = [
            min(end, closed) if closed else end
            for end, closed in ended.values_list("ends_at", "closed_at")
        ]
        if not ends:
            return 0, 0
        cutoff = max(ends)
    expired = Post.objects.filter(thread__group_id=group_id, created_at__lt=cutoff)
    # Which posts go, by thread number, to tell open boards after commit (numbers only).
    gone: dict[int, list[int]] = {}
    for thread_number, post_number in expired.values_list("thread__number", "number"):
        gone.setdefault(thread_number, []).append(post_number)
    posts = expired.delete()[0]
    threads = Thread.objects.filter(group_id=group_id, posts__isnull=True).delete()[0]
    # The title is the first post's text too: it goes with that post even where newer
    # replies keep the thread.
    Thread.objects.filter(group_id=group_id, title__isnull=False).exclude(posts__number=1).update(
        title=None, title_removed=Removal.RETENTION
    )
    if posts:
        record_event(
            action=Action.BOARD_POSTS_PURGED,
            group_id=group_id,
            extra={"posts_deleted": posts, "threads_deleted": threads},
        )
    if gone:
        send_board_posts_changed(group_id=group_id, posts_by_thread=gone)
    return posts, threads


@transaction.atomic
def posts_remove_for_user(*, user: User) -> int:
    """When an account is deleted: its posts stay in place without their text ("[removed:
    the author's account was deleted]"; one its author had deleted keeps saying so), the
    titles of its threads go too, and open boards are told after commit."""
    threads = Thread.objects.filter(author__user=user)
    # Group -> thread -> its changed posts; a thread of theirs whose posts retention took
    # still changes on the list (its starter's name goes).
    changed: dict[int, dict[int, list[int]]] = {}
    for group_id, thread_number in threads.values_list("group_id", "number"):
        changed.setdefault(group_id, {}).setdefault(thread_number, [])
    threads.filter(title__isnull=False).update(title=None, title_removed=Removal.ACCOUNT_DELETED)
    threads.update(author=None)
    posts = Post.objects.filter(author__user=user)
    for group_id, thread_number, post_number in posts.values_list(
        "thread__group_id", "thread__number", "number"
    ):
        changed.setdefault(group_id, {}).setdefault(thread_number, []).append(post_number)
    posts.filter(body__isnull=False).update(body=None, removed=Removal.ACCOUNT_DELETED)
    count = posts.update(author=None)
    for group_id, posts_by_thread in sorted(changed.items()):
        send_board_posts_changed(group_id=group_id, posts_by_thread=posts_by_thread)
    return count
