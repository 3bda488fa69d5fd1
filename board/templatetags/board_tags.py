"""The board's line on "My groups" (groups/mine.html), without the groups app knowing
the board: the template asks this filter, which counts every group at once. And what a
post's row (board/_post.html) draws per post, cheaply: a thread's page draws 50."""

import functools

from django import template
from django.urls import get_script_prefix, reverse
from django.utils.dates import MONTHS_3
from django.utils.html import format_html
from django.utils.timezone import template_localtime

from board.selectors import unread_counts

register = template.Library()


@register.filter
def with_board_unread(memberships):  # noqa: ANN001, ANN201
    """The person's places, each with ``board_unread``: how many posts on that group's
    board they have not read, or None where the board is closed to them now. One query
    for all the groups, whatever their number and size."""
    places = list(memberships)
    counts = unread_counts(places)
    for place in places:
        place.board_unread = counts.get(place.pk)
    return places


# --- a post's row, drawn 50 times on a thread's page ------------------------------------
# The page and the live frames (board/consumers.py) share board/_post.html, so these take
# what both contexts hold (group, thread, post) and nothing more.

# The moderators' and the author's links of a post, by the kind the tag is asked for.
_POST_URL_NAMES = {
    "delete": "board:delete_post",
    "report": "moderation:report_post",
    "hide": "moderation:hide_post",
}
_POST_NUMBER_MARK = 987_654_321


@functools.lru_cache(maxsize=1024)
def _post_url_parts(script_prefix: str, kind: str, slug: str, thread: int) -> tuple[str, str]:
    """What a post's link of ``kind`` is made of around its number: one reverse() per
    thread and kind, then each post's link is two strings joined (not personal: the
    group's slug and the thread's number)."""
    url = reverse(_POST_URL_NAMES[kind], args=[slug, thread, _POST_NUMBER_MARK])
    # The post's number is the address's last number (a slug may hold the mark too).
    before, after = url.rsplit(str(_POST_NUMBER_MARK), 1)
    return before, after


@register.simple_tag(takes_context=True)
def post_url(context, kind: str) -> str:  # noqa: ANN001
    """``{% post_url "delete" %}``: the address ``{% url %}`` gives for the context's post
    (``board:delete_post``, ``moderation:report_post``, ``moderation:hide_post``)."""
    before, after = _post_url_parts(
        get_script_prefix(), kind, context["group"].slug, context["thread"].number
    )
    return f"{before}{context['post'].number}{after}"


@functools.lru_cache(maxsize=1024)
def _board_path(script_prefix: str, slug: str) -> str:
    return reverse("board:index", args=[slug])


@register.simple_tag(takes_context=True)
def thread_url(context) -> str:  # noqa: ANN001
    """``{% thread_url %}``: the address ``{% url 'board:thread' group.slug thread.number %}``
    gives for the context's thread, from one reverse() per board (a board's page lists 50
    threads, board/_thread.html)."""
    return f"{_board_path(get_script_prefix(), context['group'].slug)}{context['thread'].number}/"


@register.filter
def post_time(value):  # noqa: ANN001, ANN201
    """A post's or a thread's time as the board shows it,
    ``<time datetime="…" data-local>j M Y, H:i e</time>`` in the current time zone:
    what ``|date:'c'`` and ``|date:"j M Y, H:i e"`` give (English month names: USE_I18N
    is off), for a quarter of their cost (tests/board/test_post_row.py compares them)."""
    local = template_localtime(value)
    text = (
        f"{local.day} {_MONTHS[local.month]} {local.year:04d}, "
        f"{local.hour:02d}:{local.minute:02d} {local.tzname() or ''}"
    )
    return format_html('<time datetime="{}" data-local>{}</time>', local.isoformat(), text)


post_time.expects_localtime = False  # converted above (it needs the zone's name too)
_MONTHS = {n: name.title() for n, name in MONTHS_3.items()}
