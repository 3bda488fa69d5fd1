"""Websocket routes of every app, gathered in one place for asgi.py.

The composition root: it may import from every layer (the layers contract exempts it),
so the meeting room is served with moderation's frames added.
"""

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.urls import path, re_path

from accounts.consumers import AccountConsumer
from board.consumers import BoardConsumer
from moderation.consumers import ModeratedRoomConsumer


class NoSuchSocket(AsyncWebsocketConsumer):
    """Any other path (``/ws/meetings/-1/``, ``/ws/nothing/``): refused quietly, before
    accepting (an HTTP 403), instead of the router's error, a 500 and a traceback in the
    log for every anonymous attempt."""

    async def connect(self):
        await self.close()


websocket_urlpatterns = [
    path("ws/account/", AccountConsumer.as_asgi()),
    path("ws/meetings/<int:meeting_id>/", ModeratedRoomConsumer.as_asgi()),
    # A group's board (the list of threads) and one of its threads, as on the pages.
    path("ws/groups/<slug:slug>/board/", BoardConsumer.as_asgi()),
    path("ws/groups/<slug:slug>/board/<int:number>/", BoardConsumer.as_asgi()),
]

if settings.BENCHMARK_ENDPOINTS:
    # The baseline of `make bench` (bench/echo.py): a bare consumer in a channel-layer
    # group. Off unless BENCHMARK_ENDPOINTS is set; never in production.
    from bench.echo import EchoConsumer

    websocket_urlpatterns.append(path("ws/bench/echo/<slug:room>/", EchoConsumer.as_asgi()))

# Last: everything no route above takes.
websocket_urlpatterns.append(re_path(r"", NoSuchSocket.as_asgi()))
