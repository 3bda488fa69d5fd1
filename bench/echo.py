"""The baseline every chat figure is divided by: a bare consumer in a channel-layer group.

Routed at ``ws/bench/echo/<room>/`` only when ``BENCHMARK_ENDPOINTS`` is true (never in
production). It goes through the same ASGI stack as the meeting room (Daphne, the
origin check, session and user lookup, the Redis channel layer), joins one group per
room and hands every ``send`` frame to that group, which writes it to each socket in the
room. No database, no authorisation beyond "signed in", no sequence numbers: what is left
is the cost of the transport itself, so ``room p99 / echo p99`` is what the app adds. It
dispatches events as the app's consumers do (DirectDispatchMixin), so the baseline does not
carry a per-event thread hop that the rooms no longer pay.
"""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.consumers import DirectDispatchMixin

CLOSE_NOT_ALLOWED = 4003


class EchoConsumer(DirectDispatchMixin, AsyncJsonWebsocketConsumer):
    group_name: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        self.group_name = f"bench-echo.{self.scope['url_route']['kwargs']['room']}"
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict) or content.get("type") != "send":
            return
        await self.channel_layer.group_send(
            self.group_name,
            {
                "type": "echo.message",
                "client_id": content.get("client_id"),
                "body": content.get("body"),
            },
        )

    async def echo_message(self, event):
        await self.send_json(
            {"type": "message", "client_id": event["client_id"], "body": event["body"]}
        )
