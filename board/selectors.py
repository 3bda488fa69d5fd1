"""Who may read and write a group's board, and what its pages show.

The board's door is the meetings' door: ``groups.selectors.membership_refusal`` answers
for both, so a suspension, a removal or a new agreement closes them together.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from board.models import Post, Thread, ThreadRead
from groups.models import CURRENT_STATUSES, Membership, Role
from groups.selectors import membership_refusal, place_of_user, signed_current_agreement
from supportgroups.compiled_query import CompiledQuery

THREADS_PER_PAGE = 30
POSTS_PER_PAGE = 50
POST_NUMBER_MAX = 2**31 - 1  # (a PositiveIntegerField)


@dataclass(frozen=True)
class BoardEntry:
    membership: Membership | None
    # Why not (a stable code, words in board.services.refusal_text), or None.
    refusal: str | None

    @property
    def is_facilitator(self) -> bool:
        return self.membership is not None and self.membership.role == Role.FACILITATOR


def board_entry(user, slug: str) -> BoardEntry:  # noqa: ANN001
    """The person's place in the group named by ``slug`` and why they may not use its
    board now. A group that does not exist and one the person is not in look the same."""
    membership = place_of_user(user, slug)
    return BoardEntry(membership, membership_refusal(membership))


def board_entry_now(user, group_id: int) -> BoardEntry:  # noqa: ANN001
    """The services' re-check, from the database inside their transaction."""
    membership = (
        Membership.objects.select_related("group")
        .annotate(signed_current=signed_current_agreement())
        .filter(user_id=user.pk, group_id=group_id, status__in=CURRENT_STATUSES)
        .first()
    )
    return BoardEntry(membership, membership_refusal(membership))


@dataclass(frozen=True)
class ThreadPage:
    threads: list[Thread]
    # The keyset of the next (older) page, or None at the end.
    next_after: str | None


def _thread_key(thread: Thread) -> str:
    return f"{int(thread.pinned)}.{thread.last_post_at.isoformat()}.{thread.number}"


def parse_thread_key(value: str | None) -> tuple[bool, datetime, int] | None:
    """A keyset from a URL; anything malformed reads as the first page."""
    if not value:
        return None
    try:
        pinned, rest = value.split(".", 1)
        stamp, number = rest.rsplit(".", 1)
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or pinned not in ("0", "1"):
            return None
        return pinned == "1", when, int(number)
    except ValueError:
        return None


def _threads() -> QuerySet[Thread]:
    """Threads with whether their first post is hidden: a facilitator who hides the post
    that started a thread hides its title with it (the title is that post's headline)."""
    return Thread.objects.select_related("author").annotate(
        start_hidden=Exists(
            Post.objects.filter(thread=OuterRef("pk"), number=1, hidden_at__isnull=False)
        )
    )


def _threads_in_order(threads: QuerySet[Thread]) -> QuerySet[Thread]:
    return threads.order_by("-pinned", "-last_post_at", "-number")[: THREADS_PER_PAGE + 1]


# A board's first page and a thread's page, its posts and its reader's marker: compiled
# once per process (supportgroups/compiled_query.py), building them cost more than
# running them.
_FIRST_THREADS = CompiledQuery(
    lambda group_id: _threads_in_order(_threads().filter(group_id=group_id)), group_id=int
)


def board_threads(group_id: int, *, after: str | None = None) -> ThreadPage:
    """Pinned threads first, then by newest post; one query whatever the board's size."""
    key = parse_thread_key(after)
    if key is None:
        return _thread_page(_FIRST_THREADS.run(group_id=group_id))
    threads = _threads().filter(group_id=group_id)
    if key is not None:
        pinned, stamp, number = key
        older = Q(last_post_at__lt=stamp) | Q(last_post_at=stamp, number__lt=number)
        following = Q(pinned=pinned) & older
        if pinned:
            following |= Q(pinned=False)
        threads = threads.filter(following)
    return _thread_page(list(_threads_in_order(threads)))


def _thread_page(found: list[Thread]) -> ThreadPage:
    more = len(found) > THREADS_PER_PAGE
    found = found[:THREADS_PER_PAGE]
    return ThreadPage(found, _thread_key(found[-1]) if more else None)


def threads_by_number(group_id: int, numbers: list[int]) -> list[Thread]:
    """Those of these threads still on the board, in one query."""
    return list(_threads().filter(group_id=group_id, number__in=numbers).order_by("number"))


def thread_or_none(group_id: int, number: int) -> Thread | None:
    return _threads().filter(group_id=group_id, number=number).first()


def thread_or_404(group_id: int, number: int, *, reader: Membership | None = None) -> Thread:
    """The thread, and with a ``reader``, how far they had read it (``read_up_to``, None
    before their first visit), in the same query."""
    if reader is None:
        rows = _THREAD.run(group_id=group_id, number=number)
    else:
        rows = _THREAD_WITH_MARKER.run(group_id=group_id, number=number, reader_id=reader.pk)
    if not rows:
        raise Http404
    return rows[0]


def _thread(group_id: int, number: int) -> QuerySet[Thread]:
    return _threads().filter(group_id=group_id, number=number).order_by("pk")[:1]


def _thread_with_marker(group_id: int, number: int, reader_id: int) -> QuerySet[Thread]:
    marker = ThreadRead.objects.filter(thread=OuterRef("pk"), membership_id=reader_id)
    return (
        _threads()
        .annotate(read_up_to=Subquery(marker.values("read_up_to")[:1]))
        .filter(group_id=group_id, number=number)
        .order_by("pk")[:1]
    )


_THREAD = CompiledQuery(_thread, group_id=int, number=int)
_THREAD_WITH_MARKER = CompiledQuery(_thread_with_marker, group_id=int, number=int, reader_id=int)


def post_or_404(thread: Thread, number: int) -> Post:
    post = Post.objects.filter(thread=thread, number=number).select_related("author").first()
    if post is None:
        raise Http404
    return post


def own_post_or_404(thread: Thread, number: int, membership: Membership) -> Post:
    """The person's own post, not yet deleted; someone else's, a deleted one and one that
    does not exist all look the same."""
    post = (
        Post.objects.filter(
            thread=thread, number=number, author=membership, deleted_at__isnull=True
        )
        .select_related("author")
        .first()
    )
    if post is None:
        raise Http404
    return post


@dataclass(frozen=True)
class PostPage:
    posts: list[Post]
    next_after: int | None  # the number to continue after, or None at the end


def thread_posts(thread: Thread, *, after: int = 0) -> PostPage:
    """Oldest first, a page at a time after a post number (keyset)."""
    if after > POST_NUMBER_MAX:  # (no post has it; the driver would refuse the value)
        return PostPage([], None)
    found = _POSTS.run(thread_id=thread.pk, after=after)
    more = len(found) > POSTS_PER_PAGE
    found = found[:POSTS_PER_PAGE]
    return PostPage(found, found[-1].number if more else None)


def _posts(thread_id: int, after: int) -> QuerySet[Post]:
    return (
        Post.objects.filter(thread_id=thread_id, number__gt=after)
        .select_related("author")
        .order_by("number")[: POSTS_PER_PAGE + 1]
    )


_POSTS = CompiledQuery(_posts, thread_id=int, after=int)


def posts_of_user(user) -> QuerySet[Post]:  # noqa: ANN001
    """The person's own posts, for their export: with their text, or, for those they
    deleted, where they were and why the text is gone (``Post.removed_label``)."""
    return (
        Post.objects.filter(author__user=user)
        .select_related("thread__group")
        .order_by("thread__group__name", "thread__number", "number")
    )


def unread_counts(memberships: list[Membership]) -> dict[int, int]:
    """Membership id -> how many posts on that group's board its holder has not read yet
    (0 included):
    others' posts past their read marker of the thread that still say something (not
    hidden, deleted or removed). For one person's places (one per group); one query for
    all their groups whatever the boards' size. A place whose board is closed to its
    holder now (``membership_refusal``) is left out (no query when none is open).

    The query names the person, not each place: a list of ids grew the statement and the
    ORM's work to build it with every group (three ``IN`` lists of one id per group), so
    "My groups" cost more per row than its rows do. It counts the boards of the person's
    current places, and only the open ones' counts are kept."""
    open_places = {m.group_id: m.pk for m in memberships if membership_refusal(m) is None}
    if not open_places:
        return {}
    (user_id,) = {m.user_id for m in memberships}  # one person's places
    unread = {row["thread__group_id"]: row["unread"] for row in _UNREAD.run(user_id=user_id)}
    return {place: unread.get(group_id, 0) for group_id, place in open_places.items()}


def _unread_by_group(user_id: int) -> QuerySet:
    # One place per group, so within a thread "theirs" is the one marker of the person.
    read = ThreadRead.objects.filter(thread=OuterRef("thread"), membership__user_id=user_id).values(
        "read_up_to"
    )[:1]
    current_groups = Membership.objects.filter(user_id=user_id, status__in=CURRENT_STATUSES).values(
        "group_id"
    )
    return (
        Post.objects.filter(
            thread__group_id__in=Subquery(current_groups),
            body__isnull=False,
            hidden_at__isnull=True,
            deleted_at__isnull=True,
        )
        .exclude(author__user_id=user_id)
        .annotate(read=Coalesce(Subquery(read), 0))
        .filter(number__gt=F("read"))
        .values("thread__group_id")
        .annotate(unread=Count("pk"))
        .order_by()
    )


# On "My groups" (every row's count): compiled once per process (supportgroups/compiled_query.py).
_UNREAD = CompiledQuery(_unread_by_group, user_id=int)
