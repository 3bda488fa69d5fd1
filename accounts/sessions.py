"""Session engine that records each session's owner, device and last activity, and the
rules of a session's life (idle and absolute timeouts, what counts as activity).

Set as ``SESSION_ENGINE``; Channels' session middleware uses it too, so websockets see
exactly the sessions HTTP sees. The values come from the session data that
``accounts.middleware.SessionPolicyMiddleware`` (pages) and
``accounts.services.session_touch`` (sockets) keep, so saving needs no extra query.
"""

import logging
import time
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone

from supportgroups.compiled_query import CompiledQuery

STARTED_KEY = "_sg_started"
LAST_SEEN_KEY = "_sg_last_seen"
DEVICE_KEY = "_sg_device"


def _session_with_owner(session_key: str, now: datetime):  # noqa: ANN202
    from accounts.models import Session

    return Session.objects.select_related("user").filter(
        session_key=session_key, expire_date__gt=now
    )


# Read on every signed-in request: compiled once per process (supportgroups/compiled_query.py).
_SESSION_READ = CompiledQuery(_session_with_owner, session_key=str, now=datetime)


class SessionStore(DBStore):
    # The owner's user row, read with the session row (None before the session is loaded,
    # for a session without an owner, or one that was not found): the page's request then
    # takes its user from here instead of a second statement (accounts.middleware.
    # AuthenticationMiddleware, which checks it as Django's get_user does).
    loaded_user = None

    @classmethod
    def get_model_class(cls):
        from accounts.models import Session

        return Session

    def _get_session_from_db(self):
        # Django's, with the owner's row joined (a LEFT JOIN: the user is nullable).
        try:
            found = _SESSION_READ.run(session_key=self.session_key, now=timezone.now())
        except SuspiciousOperation as error:
            logger = logging.getLogger(f"django.security.{error.__class__.__name__}")
            logger.warning(str(error))
            found = []
        if not found:
            self._session_key = None
            return None
        (session,) = found  # (the key is the primary key)
        self.loaded_user = session.user
        return session

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        user_id = data.get("_auth_user_id")
        instance.user_id = int(user_id) if user_id else None
        now = timezone.now()
        instance.created_at = _timestamp(data.get(STARTED_KEY)) or now
        instance.last_seen = _timestamp(data.get(LAST_SEEN_KEY)) or now
        instance.device = (data.get(DEVICE_KEY) or "")[:80]
        return instance


def session_expired(session) -> str | None:  # noqa: ANN001 - a session or its data dict
    """Why this signed-in session must end now ("idle", "absolute"), or None."""
    now = time.time()
    started = session.get(STARTED_KEY)
    last_seen = session.get(LAST_SEEN_KEY, started)
    if started is None:
        return None
    if now - started > settings.SESSION_ABSOLUTE_TIMEOUT:
        return "absolute"
    if last_seen is not None and now - last_seen > settings.SESSION_IDLE_TIMEOUT:
        return "idle"
    return None


def last_seen_resolution() -> float:
    """How stale "last seen" may get before activity writes it again.

    At most a minute, so sessions are not written on every request or chat message; and
    never more than a tenth of the idle timeout, so that with the shortest timeout allowed
    (60 s) someone active every 50 s is not signed out by a "last seen" a minute old.
    """
    return min(60.0, settings.SESSION_IDLE_TIMEOUT / 10)


def session_needs_touch(session) -> bool:  # noqa: ANN001 - a session or its data dict
    return time.time() - (session.get(LAST_SEEN_KEY) or 0) > last_seen_resolution()


def _timestamp(value: float | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC)
