"""Websocket routes of every app, gathered in one place for asgi.py."""

from django.urls import path

from accounts.consumers import AccountConsumer
from meetings.consumers import RoomConsumer

websocket_urlpatterns = [
    path("ws/account/", AccountConsumer.as_asgi()),
    path("ws/meetings/<int:meeting_id>/", RoomConsumer.as_asgi()),
]
