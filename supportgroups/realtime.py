"""Broadcasting to live sockets, only after the change is committed.

The channel layer is a delivery hint (at most once); the database is the truth. So a
broadcast is queued with ``transaction.on_commit`` and never describes a change that
was rolled back.
"""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def user_group_name(user_id: int) -> str:
    """Every socket of a user joins this group, so account changes reach all of them."""
    return f"user.{user_id}"


def broadcast_on_commit(group: str, message: dict[str, Any]) -> None:
    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # noqa: BLE001
            # Only a hint: the change is committed, and clients resume from the database.
            logger.warning("broadcast to %s failed", group, exc_info=True)

    transaction.on_commit(send)


def close_user_sockets_on_commit(
    user_id: int, *, reason: str, session_ids: list[str] | None = None
) -> None:
    """Tell this user's open sockets to close (logout, sign-out everywhere, ...).

    ``session_ids`` (public ids of ended sessions) limits it to sockets opened by those
    sessions; None means every socket of the person.
    """
    broadcast_on_commit(
        user_group_name(user_id),
        {"type": "account.closed", "reason": reason, "sessions": session_ids},
    )
