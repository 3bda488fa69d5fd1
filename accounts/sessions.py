"""Session engine that records each session's owner, device and last activity.

Set as ``SESSION_ENGINE``; Channels' session middleware uses it too, so websockets see
exactly the sessions HTTP sees. The values come from the session data that
``accounts.middleware.SessionPolicyMiddleware`` keeps, so saving needs no extra query.
"""

from datetime import UTC, datetime

from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.utils import timezone

STARTED_KEY = "_sg_started"
LAST_SEEN_KEY = "_sg_last_seen"
DEVICE_KEY = "_sg_device"


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls):
        from accounts.models import Session

        return Session

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        user_id = data.get("_auth_user_id")
        instance.user_id = int(user_id) if user_id else None
        now = timezone.now()
        instance.created_at = _timestamp(data.get(STARTED_KEY)) or now
        instance.last_seen = _timestamp(data.get(LAST_SEEN_KEY)) or now
        instance.device = (data.get(DEVICE_KEY) or "")[:80]
        return instance


def _timestamp(value: float | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC)
