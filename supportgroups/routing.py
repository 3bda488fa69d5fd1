"""Websocket routes of every app, gathered in one place for asgi.py."""

from django.conf import settings
from django.urls import path

from accounts.consumers import AccountConsumer
from meetings.consumers import RoomConsumer

websocket_urlpatterns = [
    path("ws/account/", AccountConsumer.as_asgi()),
    path("ws/meetings/<int:meeting_id>/", RoomConsumer.as_asgi()),
]

if settings.BENCHMARK_ENDPOINTS:
    # The baseline of `make bench` (bench/echo.py): a bare consumer in a channel-layer
    # group. Off unless BENCHMARK_ENDPOINTS is set; never in production.
    from bench.echo import EchoConsumer

    websocket_urlpatterns.append(path("ws/bench/echo/<slug:room>/", EchoConsumer.as_asgi()))
