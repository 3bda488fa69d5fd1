"""The board's live updates: a reader's open board or thread page hears of new threads,
replies and changes without a reload. Writing stays the plain forms of board/views.py.

Routes (supportgroups/routing.py): ``ws/groups/<slug>/board/`` for the list of threads,
``ws/groups/<slug>/board/<number>/`` for one thread. The door is the board pages' door
(``board.selectors.board_entry``: the meetings' rule); the channel-layer events carry
numbers only (supportgroups/realtime.py), so on every event this socket first looks
again at its reader's place and session, then reads what changed from the database and
sends it rendered by the page's own templates (one markup, with or without JavaScript).

Frames to the browser (JSON, each with a ``type``):
- ``hello {pseudonym, may_post, heartbeat_seconds}``: once, when let in.
- ``thread {thread, pinned, html}``: on the list: a thread started or replied to (it
  moves to the top of the first page); ``html`` is its list item.
- ``thread_updated {thread, pinned, html}``: on the list: a thread's item changed where
  it stands (a post hidden, deleted by its author, emptied with its author's account or
  taken by the group's retention); the page replaces it in place, its order unchanged.
- ``post {thread, post, html}``: on a thread's page: a reply to it.
- ``post_changed {thread, post, html, title, removed}``: on a thread's page: a post
  hidden, deleted by its author or emptied with its author's account (``title``: the
  thread's, which goes with its first post; ``removed``: why its text is gone, a
  ``board.models.Removal`` code, or None).
- ``posts_removed {thread, posts, title}``: on a thread's page: posts the group's
  retention deleted (their numbers).
- ``thread_removed {thread}``: on the list: a thread the group's retention emptied.
- ``thread_changed {thread, title, state, may_reply, no_reply}``: on a thread's page:
  pinned, locked, closed or reopened (``title`` and ``state`` are the heading's text and
  the line under it, as HTML; ``no_reply`` why it takes no replies, locked or closed).
- ``status {may_post, message, notice}``: the reader was muted, or may post again
  (``notice``: while muted, the page's muted notice as HTML, its time to show locally).
- ``closed {reason, message}`` then close 4005: suspended, removed, left, a new
  agreement to sign, the thread gone; ``signed_out {reason}`` then close 4001.
- ``pong``; ``error {code, message}`` for a bad frame (the socket stays open).

Frames from the browser: ``ping {visible}`` (a heartbeat: it only checks that the
session has not timed out; reading is not activity that keeps a session alive) and
``read {post}`` on a thread's page (a reply that arrived live was on screen: the read
marker moves, for the unread counts).
"""

from __future__ import annotations

import asyncio
import json

from channels.db import database_sync_to_async
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.consumers import AuthenticatedConsumer
from board import selectors, services
from board.models import Post, Thread
from board.selectors import BoardEntry
from groups.models import Membership
from groups.selectors import membership_may_write
from supportgroups.realtime import board_group_name

CLOSE_MEMBERSHIP_CHANGED = 4005
MAX_FRAME_BYTES = 1024
UNMUTED_TEXT = "You can post on the board again."


class BoardConsumer(AuthenticatedConsumer):
    membership: Membership
    may_post: bool = False
    thread_number: int | None = None
    board_group: str | None = None
    unmuter: asyncio.Task | None = None
    read_sent = 0  # the highest post this socket said was read

    async def authorise(self) -> str | None:
        kwargs = self.scope["url_route"]["kwargs"]
        return await database_sync_to_async(self._enter)(kwargs["slug"], kwargs.get("number"))

    def _enter(self, slug: str, number: int | None) -> str | None:
        entry = selectors.board_entry(self.scope["user"], slug)
        if entry.refusal:
            return entry.refusal
        if (
            number is not None
            and selectors.thread_or_none(entry.membership.group_id, number) is None
        ):
            return "no_such_thread"
        self.membership, self.thread_number = entry.membership, number
        self.may_post = membership_may_write(entry.membership)
        return None

    def refusal_text(self, reason: str) -> str:
        if reason == "no_such_thread":
            return "This thread is not on the board (any more)."
        if reason in ("not_a_member", "suspended", "agreement_required", "muted"):
            return services.refusal_text(reason)
        return super().refusal_text(reason)

    async def joined(self) -> None:
        self.board_group = board_group_name(self.membership.group_id)
        await self.channel_layer.group_add(self.board_group, self.channel_name)
        await self.send_json(
            {
                "type": "hello",
                "pseudonym": self.membership.pseudonym,
                "may_post": self.may_post,
                "heartbeat_seconds": settings.CHAT_HEARTBEAT_SECONDS,
            }
        )
        self._watch_mute_end()

    def _watch_mute_end(self) -> None:
        """A mute "for 10 minutes" lifts itself: look again the moment it ends (as the
        room does), so the page offers its forms again without a reload."""
        if self.unmuter:
            self.unmuter.cancel()
            self.unmuter = None
        until = self.membership.muted_until
        if not self.may_post and until is not None:
            delay = max((until - timezone.now()).total_seconds(), 0) + 0.5
            self.unmuter = asyncio.create_task(self._recheck_after(delay))

    async def _recheck_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.group_membership_changed({"group": self.membership.group_id})

    async def disconnect(self, code):
        if self.unmuter:
            self.unmuter.cancel()
        if self.board_group:
            await self.channel_layer.group_discard(self.board_group, self.channel_name)
        await super().disconnect(code)

    # --- frames from the browser ----------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            return await self.error("invalid_frame", "Send JSON text frames.")
        if len(text_data.encode(errors="surrogatepass")) > MAX_FRAME_BYTES:
            return await self.error("frame_too_large", "That frame is too large.")
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):
            return await self.error("invalid_json", "That was not valid JSON.")
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return await self.error("invalid_frame", "Each frame must be an object with a type.")
        if frame["type"] == "ping":
            if await self.session_active(active=False):
                await self.send_json({"type": "pong"})
        elif frame["type"] == "read" and self.thread_number is not None:
            post = frame.get("post")
            if not isinstance(post, int) or isinstance(post, bool) or not 0 < post < 2**31:
                return await self.error("invalid_post", "Name a post by its number.")
            # A marker only moves forward: an older or repeated one costs no query (so a
            # page that floods them does not load the database).
            if post > self.read_sent and await self.session_active(active=False):
                # What the marker became (at most the thread's last post): a number past
                # the end must not stop the real ones that follow.
                self.read_sent = await database_sync_to_async(self._mark_read)(post)
        else:
            await self.error("unknown_type", f"Unknown frame type {frame['type'][:40]!r}.")

    def _mark_read(self, post: int) -> int:
        thread = selectors.thread_or_none(self.membership.group_id, self.thread_number)
        if thread is None:
            return self.read_sent
        services.thread_mark_read(actor=self.scope["user"], thread=thread, up_to=post)
        return max(self.read_sent, min(post, thread.last_post_number))

    async def error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    # --- events from the channel layer ---------------------------------------------------------

    async def board_thread(self, event: dict) -> None:
        await self._tell(event["thread"], None, "thread")

    async def board_post(self, event: dict) -> None:
        await self._tell(event["thread"], event["post"], "post")

    async def board_post_changed(self, event: dict) -> None:
        await self._tell(event["thread"], event["post"], "post_changed")

    async def board_thread_changed(self, event: dict) -> None:
        await self._tell(event["thread"], None, "thread_changed")

    async def board_posts_changed(self, event: dict) -> None:
        """Posts of several threads at once (account deletion, retention): one event per
        group, so each socket checks its reader and reads the database once."""
        changes = {thread: posts for thread, posts in event["threads"]}
        if self.thread_number is not None and self.thread_number not in changes:
            return
        if not await self.session_active(active=False):
            return
        if self.thread_number is None:
            read = database_sync_to_async(self._list_frames)(list(changes))
        else:
            read = database_sync_to_async(self._post_frames)(changes[self.thread_number])
        refusal, frames = await read
        if refusal:
            return await self._leave(refusal)
        for frame in frames:
            await self.send_json(frame)

    def _list_frames(self, numbers: list[int]) -> tuple[str | None, list[dict]]:
        """The list's items of these threads, to replace in place (``thread_updated``: a
        post losing its text moves no thread, the newest post stays the newest), and
        ``thread_removed`` for those the group's retention emptied. One query."""
        entry = selectors.board_entry_now(self.scope["user"], self.membership.group_id)
        if entry.refusal:
            return entry.refusal, []
        self.membership = entry.membership
        threads = selectors.threads_by_number(self.membership.group_id, numbers)
        frames = [self._thread_frame("thread_updated", thread) for thread in threads]
        gone = sorted(set(numbers) - {thread.number for thread in threads})
        frames += [{"type": "thread_removed", "thread": number} for number in gone]
        return None, frames

    def _thread_frame(self, kind: str, thread: Thread) -> dict:
        context = {"group": self.membership.group, "membership": self.membership, "thread": thread}
        return {
            "type": kind,
            "thread": thread.number,
            "pinned": thread.pinned,
            "html": render_to_string("board/_thread.html", context),
        }

    def _post_frames(self, numbers: list[int]) -> tuple[str | None, list[dict]]:
        entry = selectors.board_entry_now(self.scope["user"], self.membership.group_id)
        if entry.refusal:
            return entry.refusal, []
        self.membership = entry.membership
        thread = selectors.thread_or_none(self.membership.group_id, self.thread_number)
        if thread is None:
            return "no_such_thread", []
        context = {"group": self.membership.group, "membership": self.membership, "thread": thread}
        title = render_to_string("board/_title.html", context)
        posts = list(
            Post.objects.filter(thread=thread, number__in=numbers)
            .select_related("author")
            .order_by("number")
        )
        frames = [self._post_changed_frame(context, post, title) for post in posts]
        gone = sorted(set(numbers) - {post.number for post in posts})
        if gone:
            frames.append(
                {"type": "posts_removed", "thread": thread.number, "posts": gone, "title": title}
            )
        return None, frames

    @staticmethod
    def _post_changed_frame(context: dict, post: Post, title: str) -> dict:
        return {
            "type": "post_changed",
            "thread": context["thread"].number,
            "post": post.number,
            "html": render_to_string("board/_post.html", {**context, "post": post}),
            "title": title,
            "removed": post.removed or None,
        }

    async def _tell(self, thread_number: int, post_number: int | None, kind: str) -> None:
        """Look again at the reader (their place, their session), then send what changed
        as the page shows it; nothing about a post reaches a reader who may no longer see
        it, even when the notice of their removal was lost on the way."""
        on_list = self.thread_number is None
        if not on_list and thread_number != self.thread_number:
            return
        if on_list and kind == "post":
            kind = "thread"  # a reply: the thread moves up, with its count and last time
        elif on_list and kind == "post_changed":
            kind = "thread_updated"  # its title may change, its place does not
        if not await self.session_active(active=False):
            return
        refusal, frame = await database_sync_to_async(self._frame)(thread_number, post_number, kind)
        if refusal:
            return await self._leave(refusal)
        if frame is not None:
            await self.send_json(frame)

    def _frame(
        self, thread_number: int, post_number: int | None, kind: str
    ) -> tuple[str | None, dict | None]:
        entry = selectors.board_entry_now(self.scope["user"], self.membership.group_id)
        if entry.refusal:
            return entry.refusal, None
        self.membership = entry.membership
        thread = selectors.thread_or_none(self.membership.group_id, thread_number)
        if thread is None:
            if self.thread_number is None:
                # The list drops a thread the group's retention emptied.
                return None, {"type": "thread_removed", "thread": thread_number}
            return "no_such_thread", None
        if kind in ("thread", "thread_updated"):
            return None, self._thread_frame(kind, thread)
        context = {"group": self.membership.group, "membership": self.membership, "thread": thread}
        if kind == "thread_changed":
            return None, {
                "type": "thread_changed",
                "thread": thread.number,
                "title": render_to_string("board/_title.html", context),
                "state": render_to_string("board/_thread_state.html", context),
                "may_reply": self._may_reply(thread, entry),
                # Why not, as the page says it (locked or closed).
                "no_reply": render_to_string("board/_no_reply.html", context).strip(),
            }
        post = (
            Post.objects.filter(thread=thread, number=post_number).select_related("author").first()
        )
        if post is None:
            return None, None
        if kind == "post_changed":
            # Hiding or deleting the first post takes the thread's title with it.
            title = render_to_string("board/_title.html", context)
            return None, self._post_changed_frame(context, post, title)
        html = render_to_string("board/_post.html", {**context, "post": post})
        return None, {"type": kind, "thread": thread.number, "post": post.number, "html": html}

    @staticmethod
    def _may_reply(thread: Thread, entry: BoardEntry) -> bool:
        return not thread.closed and (not thread.locked or entry.is_facilitator)

    async def _leave(self, refusal: str) -> None:
        await self.send_json(
            {"type": "closed", "reason": refusal, "message": self.refusal_text(refusal)}
        )
        await self.close(code=CLOSE_MEMBERSHIP_CHANGED)

    async def group_membership_changed(self, event: dict) -> None:
        """Muted, suspended, removed, left, renamed: look again and act at once."""
        if event.get("group") != self.membership.group_id:
            return
        refusal, may_post = await database_sync_to_async(self._recheck)()
        if refusal:
            return await self._leave(refusal)
        if may_post != self.may_post:
            self.may_post = may_post
            await self.send_json(
                {
                    "type": "status",
                    "may_post": may_post,
                    "message": UNMUTED_TEXT if may_post else services.muted_text(self.membership),
                    # The page's own notice, whose <time data-local> the page shows in the
                    # reader's zone (``message`` says it in the server's).
                    "notice": None
                    if may_post
                    else render_to_string("board/_muted.html", {"membership": self.membership}),
                }
            )
        self._watch_mute_end()

    def _recheck(self) -> tuple[str | None, bool]:
        entry = selectors.board_entry_now(self.scope["user"], self.membership.group_id)
        if entry.refusal:
            return entry.refusal, False
        self.membership = entry.membership
        return None, membership_may_write(entry.membership)

    async def group_agreement_changed(self, event: dict) -> None:
        if event.get("group") != self.membership.group_id:
            return
        await self._leave("agreement_required")
