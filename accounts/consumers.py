"""Websocket plumbing every signed-in socket shares, and the account socket itself."""

import json
import time
from collections.abc import Callable

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from accounts.models import session_public_id
from accounts.selectors import user_may_use_sockets, user_must_renew_credentials
from accounts.services import session_touch
from accounts.sessions import LAST_SEEN_KEY, STARTED_KEY, last_seen_resolution, session_expired
from supportgroups.realtime import user_group_name

# Close codes (4000-4999 are for applications): the client must not reconnect on these.
CLOSE_SIGNED_OUT = 4001
CLOSE_NOT_ALLOWED = 4003

# Why a socket was refused or its session ended, in words for the page to show.
SESSION_REFUSALS = {
    "signed_out": "You are signed out. Sign in again to continue.",
    "idle": "You were signed out after a while without activity, to keep your account safe.",
    "absolute": "You were signed out because this session had lasted a long time.",
    "two_factor_required": (
        "This session needs your second sign-in step first. Sign in again to continue."
    ),
    "credentials_renewal": (
        "Please choose a new password and set up two-factor authentication again first."
    ),
}


class DirectDispatchMixin:
    """Channels' own dispatch first runs close_old_connections() through sync_to_async
    before every event: a thread hop per chat message per receiver, queued behind every
    other socket's database work on the one shared sync thread. Our handlers never touch
    the database themselves (each database_sync_to_async call closes old connections
    before and after it runs), so events go straight to their handler.

    Channel-layer events go to every socket of a person (they share the user group), so a
    socket ignores the events it has no handler for: a new event is added with its sender
    (supportgroups/realtime.py) and a handler only in the consumers that act on it.
    """

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            if message["type"].startswith("websocket."):
                raise ValueError(f"No handler for message type {message['type']}")
            return
        await handler(message)


class AuthenticatedConsumer(DirectDispatchMixin, AsyncJsonWebsocketConsumer):
    """Lets in anyone who could open a page, then listens on the person's own group so
    signing out (anywhere) closes this socket within a second.

    A refused socket is accepted and then closed, after a ``refused`` frame that says why:
    Daphne turns a close before the accept into an HTTP 403 on the handshake, which a
    browser only sees as close code 1006 (and so would retry for ever, with no reason to
    show). Only the Origin check refuses before accepting: another site's page learns
    nothing.
    """

    user_group = None
    # When this socket last counted as activity of its session (time.monotonic()).
    activity_seen = 0.0
    # When it last counted as activity (a touch with active=True: "last seen" refreshed).
    activity_counted = float("-inf")
    # The session's "last seen" is known to be no earlier than this (time.time()), from the
    # touches of this socket; None: only what the session said when the socket opened.
    last_seen_at_least: float | None = None

    async def connect(self):
        refusal = await self._session_refusal()
        if refusal is None:
            refusal = await self.authorise()
        if refusal:
            await self.accept()
            await self.refuse(refusal)
            return
        # Listening before accepting: a sign-out from now on reaches this socket.
        self.user_group = user_group_name(self.scope["user"].pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.accept()
        await self.joined()

    async def _session_refusal(self) -> str | None:
        user = self.scope.get("user")
        session = self.scope.get("session")
        if user is None or session is None or not user.is_authenticated:
            return "signed_out"
        expired = session_expired(session)
        if expired:
            # The same as on a page: the session ends here, audited, its sockets told.
            await database_sync_to_async(session_touch)(session_key=session.session_key)
            return expired
        if not await database_sync_to_async(user_may_use_sockets)(user, session):
            if await database_sync_to_async(user_must_renew_credentials)(user):
                return "credentials_renewal"
            return "two_factor_required"
        return None

    async def authorise(self) -> str | None:
        """Subclasses add their own rule (e.g. membership of the meeting's group): the
        refusal's stable code, or None to let the person in."""
        return None

    async def joined(self) -> None:
        """Subclasses join their rooms here."""

    async def refuse(self, reason: str) -> None:
        await self.send_json(
            {"type": "refused", "reason": reason, "message": self.refusal_text(reason)}
        )
        await self.close(code=CLOSE_NOT_ALLOWED)

    def refusal_text(self, reason: str) -> str:
        return SESSION_REFUSALS.get(reason, "You can't be connected now.")

    async def disconnect(self, code):
        if self.user_group:
            await self.channel_layer.group_discard(self.user_group, self.channel_name)

    async def session_active(
        self,
        *,
        active: bool = True,
        held_by_caller: bool = False,
        along: Callable[[], object] | None = None,
    ) -> bool:
        """Count activity on this socket as activity of its session (same rules as pages);
        ``active=False`` only checks that the session has not timed out.

        ``along``: database work to do once the session is known to be on (a heartbeat's
        own write), in the same trip to the database thread as the check. That one thread
        runs all of a Daphne's database work in turn, chat sends included, so every trip
        there is one more that a send may find ahead of it.

        False when the session has ended: the socket is then told (``signed_out`` with
        the reason: "idle", "absolute", "signed_out") and closed. The session row is read
        at most every few seconds.

        ``held_by_caller``: the caller's own transaction checks and holds the session row
        (the chat send path: meetings.services.message_post), so a sign-out is caught
        there and this row is read only for the clock's rules, at most every
        ``last_seen_resolution()``: a session whose "last seen" was refreshed that
        recently cannot be idle, and its absolute end is known from its start. Reading it
        every few seconds was a second transaction for almost every chat message.
        """
        now = time.monotonic()
        if held_by_caller:
            counted = now - self.activity_counted
            if counted < last_seen_resolution() and not self._past_absolute_timeout():
                return True
        elif now - self.activity_seen < min(5.0, last_seen_resolution()):
            if along is not None:
                await database_sync_to_async(along)()
            return True
        # (Before the trip: the check runs after however long the trip queues, so the
        # "last seen" it leaves is at least this moment's, less the resolution.)
        checked_from = time.time()
        ended = await database_sync_to_async(self._session_touch)(active, along)
        if ended:
            await self.signed_out(ended)
            return False
        self.activity_seen = time.monotonic()
        if active:
            self.activity_counted = self.activity_seen
            # Written just now, or it was recent enough not to need writing.
            self.last_seen_at_least = checked_from - last_seen_resolution()
        return True

    def session_surely_on(self) -> bool:
        """What this socket has seen of its session rules out its idle and absolute
        timeouts now: its "last seen" only ever moves forward, and its start never moves.
        (Whether it was signed out meanwhile is another matter: see session_active's
        ``held_by_caller``.)"""
        session = self.scope["session"]
        known = max(session.get(LAST_SEEN_KEY) or 0.0, self.last_seen_at_least or 0.0)
        return (
            session_expired({STARTED_KEY: session.get(STARTED_KEY), LAST_SEEN_KEY: known}) is None
        )

    def _session_touch(self, active: bool, along: Callable[[], object] | None) -> str | None:
        ended = session_touch(session_key=self.scope["session"].session_key, active=active)
        if ended is None and along is not None:
            along()
        return ended

    def _past_absolute_timeout(self) -> bool:
        # The session's start never changes, so the socket's own copy of it is enough.
        started = self.scope["session"].get(STARTED_KEY)
        return started is not None and time.time() - started > settings.SESSION_ABSOLUTE_TIMEOUT

    async def signed_out(self, reason: str) -> None:
        await self.send_json({"type": "signed_out", "reason": reason})
        await self.close(code=CLOSE_SIGNED_OUT)

    async def account_closed(self, event):
        ended = event.get("sessions")
        own = self.scope["session"].session_key
        if ended is not None and (not own or session_public_id(own) not in ended):
            return
        await self.signed_out(event.get("reason", ""))


class AccountConsumer(AuthenticatedConsumer):
    """Open on every signed-in page: tells the tab when the person was signed out elsewhere,
    and passes on notices for them (``supportgroups.realtime.send_account_notice``)."""

    async def receive(self, text_data=None, bytes_data=None):
        # Bad frames get an error frame like everywhere else; they never kill the socket.
        if text_data is None:
            return await self.send_json(
                {"type": "error", "code": "invalid_frame", "message": "Send JSON text frames."}
            )
        try:
            content = json.loads(text_data)
        except ValueError:
            return await self.send_json(
                {"type": "error", "code": "invalid_json", "message": "That was not valid JSON."}
            )
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        await self.send_json(
            {
                "type": "error",
                "code": "unexpected_message",
                "message": "This socket does not accept messages.",
            }
        )

    async def account_notice(self, event):
        """Something to read on one of the person's own pages (the page shows it)."""
        await self.send_json({"type": "notice", "text": event["text"], "url": event["url"]})
