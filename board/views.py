"""The board's pages: plain forms that work without JavaScript (static/js/board.js only
adds what others write while the page is open)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from board import selectors, services
from board.forms import ReplyForm, ThreadForm, ThreadStateForm
from board.selectors import BoardEntry
from groups.selectors import membership_may_write


class _Refused(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def _entry(request: HttpRequest, slug: str) -> BoardEntry:
    """The page's door, the same as the room's (groups.selectors.membership_refusal)."""
    entry = selectors.board_entry(request.user, slug)
    if entry.refusal == "not_a_member":
        raise Http404
    if entry.refusal == "agreement_required":
        messages.info(request, "Please sign the group's current agreement to use its board.")
        raise _Refused(
            redirect(
                "groups:sign" if entry.membership.pseudonym else "groups:take_place", slug=slug
            )
        )
    if entry.refusal:
        raise _Refused(
            render(
                request,
                "board/closed.html",
                {
                    "group": entry.membership.group,
                    "membership": entry.membership,
                    "refusal": entry.refusal,
                    "text": services.refusal_text(entry.refusal, entry.membership),
                },
                status=403,
            )
        )
    return entry


def _board_page(view):  # noqa: ANN001, ANN202
    """Signed in, through the board's door; the view gets the entry."""

    @login_required
    def wrapped(request: HttpRequest, slug: str, **kwargs) -> HttpResponse:
        try:
            entry = _entry(request, slug)
        except _Refused as refused:
            return refused.response
        return view(request, entry, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@_board_page
def index(request: HttpRequest, entry: BoardEntry) -> HttpResponse:
    group = entry.membership.group
    page = selectors.board_threads(group.pk, after=request.GET.get("after"))
    return render(
        request,
        "board/index.html",
        {
            "group": group,
            "membership": entry.membership,
            "page": page,
            "first_page": not request.GET.get("after"),
            "may_write": membership_may_write(entry.membership),
        },
    )


@_board_page
@require_http_methods(["GET", "POST"])
def new_thread(request: HttpRequest, entry: BoardEntry) -> HttpResponse:
    group = entry.membership.group
    form = ThreadForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            thread = services.thread_start(
                actor=request.user,
                group=group,
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
            )
        except services.BoardError as error:
            form.add_error(None, error.message)
        else:
            return redirect("board:thread", slug=group.slug, number=thread.number)
    return render(
        request,
        "board/new_thread.html",
        {
            "group": group,
            "membership": entry.membership,
            "form": form,
            # A muted member is told until when, and offered no form (posting is refused
            # by the service anyway).
            "may_write": membership_may_write(entry.membership),
        },
    )


def _thread_page(request, entry, number, *, reply_form=None):  # noqa: ANN001, ANN202
    group = entry.membership.group
    thread = selectors.thread_or_404(group.pk, number, reader=entry.membership)
    try:
        after = max(0, int(request.GET.get("after", 0)))
    except ValueError:
        after = 0
    page = selectors.thread_posts(thread, after=after)
    if page.posts:
        services.thread_mark_read(actor=request.user, thread=thread, up_to=page.posts[-1].number)
    return render(
        request,
        "board/thread.html",
        {
            "group": group,
            "membership": entry.membership,
            "is_facilitator": entry.is_facilitator,
            "thread": thread,
            "page": page,
            "after": after,
            "form": reply_form or ReplyForm(),
            "may_write": membership_may_write(entry.membership),
            "may_reply": not thread.closed and (not thread.locked or entry.is_facilitator),
        },
    )


@_board_page
def thread(request: HttpRequest, entry: BoardEntry, number: int) -> HttpResponse:
    return _thread_page(request, entry, number)


@_board_page
@require_POST
def reply(request: HttpRequest, entry: BoardEntry, number: int) -> HttpResponse:
    group = entry.membership.group
    found = selectors.thread_or_404(group.pk, number)
    form = ReplyForm(request.POST)
    if form.is_valid():
        try:
            posted = services.post_reply(
                actor=request.user, thread=found, body=form.cleaned_data["body"]
            )
        except services.BoardError as error:
            form.add_error(None, error.message)
        else:
            return redirect(
                f"{request.path.removesuffix('reply/')}?after="
                f"{max(0, posted.number - selectors.POSTS_PER_PAGE)}#post-{posted.number}"
            )
    return _thread_page(request, entry, number, reply_form=form)


@_board_page
@require_POST
def thread_state(request: HttpRequest, entry: BoardEntry, number: int) -> HttpResponse:
    if not entry.is_facilitator:
        raise Http404
    group = entry.membership.group
    found = selectors.thread_or_404(group.pk, number)
    form = ThreadStateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose pin, lock or close.")
    else:
        try:
            services.thread_set_state(
                actor=request.user,
                thread=found,
                state=form.cleaned_data["state"],
                value=form.cleaned_data["value"],
            )
        except services.BoardError as error:
            messages.error(request, error.message)
    return redirect("board:thread", slug=group.slug, number=number)


@_board_page
@require_http_methods(["GET", "POST"])
def delete_post(request: HttpRequest, entry: BoardEntry, number: int, post_number: int):
    group = entry.membership.group
    found = selectors.thread_or_404(group.pk, number)
    post = selectors.own_post_or_404(found, post_number, entry.membership)
    if request.method == "POST":
        try:
            services.post_delete(actor=request.user, post=post)
        except services.BoardError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Your post is deleted; its text is gone from our database.")
        return redirect("board:thread", slug=group.slug, number=number)
    return render(
        request, "board/delete_post.html", {"group": group, "thread": found, "post": post}
    )
