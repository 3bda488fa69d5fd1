"""Websocket plumbing every signed-in socket shares, and the account socket itself."""

import json

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.middleware import session_expired
from accounts.models import session_public_id
from accounts.selectors import user_may_use_sockets
from supportgroups.realtime import user_group_name

# Close codes (4000-4999 are for applications): the client must not reconnect on these.
CLOSE_NOT_ALLOWED = 4003
CLOSE_SIGNED_OUT = 4001


class DirectDispatchMixin:
    """Channels' own dispatch first runs close_old_connections() through sync_to_async
    before every event: a thread hop per chat message per receiver, queued behind every
    other socket's database work on the one shared sync thread. Our handlers never touch
    the database themselves (each database_sync_to_async call closes old connections
    before and after it runs), so events go straight to their handler."""

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


class AuthenticatedConsumer(DirectDispatchMixin, AsyncJsonWebsocketConsumer):
    """Refuses, before accepting, anyone who could not open a page; then listens on the
    person's own group so signing out (anywhere) closes this socket within a second."""

    user_group = None

    async def connect(self):
        user = self.scope.get("user")
        session = self.scope.get("session")
        allowed = (
            user is not None
            and session is not None
            and session_expired(session) is None
            and await database_sync_to_async(user_may_use_sockets)(user, session)
        )
        if not allowed or not await self.authorise():
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        self.user_group = user_group_name(user.pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.accept()
        await self.joined()

    async def authorise(self) -> bool:
        """Subclasses add their own rule (e.g. membership of the meeting's group)."""
        return True

    async def joined(self) -> None:
        """Subclasses join their rooms here."""

    async def disconnect(self, code):
        if self.user_group:
            await self.channel_layer.group_discard(self.user_group, self.channel_name)

    # Group events reach every socket of the person (they share the user group); only
    # meeting rooms act on them.
    async def group_membership_changed(self, event):
        pass

    async def group_agreement_changed(self, event):
        pass

    async def account_closed(self, event):
        ended = event.get("sessions")
        own = self.scope["session"].session_key
        if ended is not None and (not own or session_public_id(own) not in ended):
            return
        await self.send_json({"type": "signed_out", "reason": event.get("reason", "")})
        await self.close(code=CLOSE_SIGNED_OUT)


class AccountConsumer(AuthenticatedConsumer):
    """Open on every signed-in page: tells the tab when the person was signed out elsewhere."""

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
