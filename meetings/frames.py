"""The meeting room's frames: what a browser may send and what it is sent.

The protocol's one source of truth, next to meetings/PROTOCOL.md (keep the two in step).
Reading a frame here only checks its shape (types, sizes, ranges) and answers a bad one
with a ``FrameError`` carrying the stable code of the ``error`` frame; whether the person
may do it is for the selectors and services. Building a frame here is the only place its
keys are written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

# seq and after_seq are PostgreSQL bigints; a larger number can never name a message.
MAX_SEQ = 2**63 - 1
MAX_NOTE_LENGTH = 1000
MAX_ANNOUNCEMENT_LENGTH = 500
# "Show earlier messages" asks for this many at a time, at most HISTORY_MAX_LIMIT.
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 100
# Matched with fullmatch: "$" would also accept a trailing newline.
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MODERATION_ACTIONS = ("hide", "mute", "unmute", "remove")


class FrameError(Exception):
    """A frame refused for its shape: becomes an ``error`` frame; the socket stays open."""

    def __init__(self, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


# --- from the browser -----------------------------------------------------------------------


def parse(text_data: str | None, bytes_data: bytes | None) -> dict:
    """One received websocket message as a frame: a JSON object with a string ``type``."""
    if bytes_data is not None or text_data is None:
        raise FrameError("invalid_frame", "Send JSON text frames.")
    if len(text_data.encode(errors="surrogatepass")) > settings.CHAT_MAX_FRAME_BYTES:
        raise FrameError("frame_too_large", "That frame is too large.")
    try:
        frame = json.loads(text_data)
        # A lone surrogate ("\ud800") is valid JSON but not Unicode that can be stored
        # or sent on (UnicodeEncodeError is a ValueError); deep nesting can't be parsed.
        json.dumps(frame, ensure_ascii=False).encode()
    except (ValueError, RecursionError):
        raise FrameError("invalid_json", "That was not valid JSON.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("invalid_frame", "Each frame must be an object with a type.")
    return frame


def unknown_type(frame: dict) -> FrameError:
    return FrameError("unknown_type", f"Unknown frame type {frame['type'][:40]!r}.")


def whole(value: Any, *, maximum: int | None = MAX_SEQ) -> bool:
    """A whole number from 0 to ``maximum`` (JSON true/false are not numbers here);
    ``maximum=None``: any size (where the service bounds it and says why)."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= 0
        and (maximum is None or value <= maximum)
    )


@dataclass(frozen=True)
class Send:
    client_id: str
    body: str


def read_send(frame: dict) -> Send:
    client_id, body = frame.get("client_id"), frame.get("body")
    if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
        raise FrameError("invalid_client_id", "Each message needs a client_id.")
    if not isinstance(body, str) or not body.strip():
        raise FrameError("empty_body", "The message is empty.", client_id=client_id)
    if len(body) > settings.CHAT_MAX_MESSAGE_LENGTH:
        raise FrameError(
            "body_too_long",
            f"Messages can be at most {settings.CHAT_MAX_MESSAGE_LENGTH} characters.",
            client_id=client_id,
        )
    return Send(client_id, body)


def read_resume(frame: dict) -> int:
    """``after_seq``: replay the messages after this one."""
    after = frame.get("after_seq", 0)
    if not whole(after):
        raise FrameError("invalid_resume", "after_seq must be a whole number of a message.")
    return after


@dataclass(frozen=True)
class History:
    before_seq: int | None  # None: the latest messages
    limit: int


def read_history(frame: dict) -> History:
    before, limit = frame.get("before_seq"), frame.get("limit", HISTORY_DEFAULT_LIMIT)
    if (before is not None and not whole(before)) or not whole(limit, maximum=HISTORY_MAX_LIMIT):
        raise FrameError(
            "invalid_history",
            f"before_seq must be a message number and limit 1 to {HISTORY_MAX_LIMIT}.",
        )
    if limit < 1:
        raise FrameError("invalid_history", f"limit must be 1 to {HISTORY_MAX_LIMIT}.")
    return History(before, limit)


def read_ping(frame: dict) -> bool:
    """Whether the page is being looked at (only then does a heartbeat count as activity
    of the session); older pages send no ``visible`` and count as not looked at."""
    return frame.get("visible") is True


@dataclass(frozen=True)
class Report:
    seq: int
    guideline: int
    note: str


def read_report(frame: dict) -> Report:
    seq, rule, note = frame.get("seq"), frame.get("guideline"), frame.get("note") or ""
    if (
        # Any size: the moderation service answers "no such message" or "no such rule".
        not whole(seq, maximum=None)
        or not whole(rule, maximum=None)
        or not isinstance(note, str)
        or len(note) > MAX_NOTE_LENGTH
    ):
        raise FrameError("invalid_report", "A report needs a message and a guideline.")
    return Report(seq, rule, note)


@dataclass(frozen=True)
class Moderate:
    action: str
    seq: int
    guideline: int | None
    minutes: int | None
    reason: str


def read_moderate(frame: dict) -> Moderate:
    action, seq = frame.get("action"), frame.get("seq")
    rule, minutes = frame.get("guideline"), frame.get("minutes")
    reason = frame.get("reason") or ""
    if (
        action not in MODERATION_ACTIONS
        # Any size: the moderation service bounds them and says why.
        or not whole(seq, maximum=None)
        or (rule is not None and not whole(rule, maximum=None))
        or (minutes is not None and (not whole(minutes, maximum=None) or minutes < 1))
        or not isinstance(reason, str)
        or len(reason) > MAX_NOTE_LENGTH
    ):
        raise FrameError("invalid_moderation", "That moderation request is incomplete.")
    return Moderate(action, seq, rule, minutes, reason)


def read_announce(frame: dict) -> str:
    text = frame.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_ANNOUNCEMENT_LENGTH:
        raise FrameError(
            "invalid_announcement",
            f"Announcements are 1 to {MAX_ANNOUNCEMENT_LENGTH} characters.",
        )
    return text


# --- to the browser -------------------------------------------------------------------------


def mute_notice(
    *,
    until,
    guideline_number=None,
    guideline_text="",
    reason=None,  # noqa: ANN001
) -> dict:
    """Why and until when a muted member can't send: the rule the facilitator cited, the
    reason they wrote for the member, and the end (``null``: until a facilitator lifts it)."""
    return {
        "until": until.isoformat() if until else None,
        "guideline": (
            {"number": guideline_number, "text": guideline_text} if guideline_number else None
        ),
        "reason": reason or None,
    }


def hello(  # noqa: PLR0913
    *,
    membership,  # noqa: ANN001
    meeting,  # noqa: ANN001
    can_send: bool,
    guidelines,  # noqa: ANN001
    announcement,  # noqa: ANN001
    muted: dict | None = None,
) -> dict:
    return {
        "type": "hello",
        "you": {
            "pseudonym": membership.pseudonym,
            "can_send": can_send,
            "is_facilitator": membership.is_facilitator,
            "muted": muted,
        },
        "guidelines": [{"number": g.number, "text": g.text} for g in guidelines],
        "announcement": announcement,
        "meeting": {
            "id": meeting.pk,
            "title": meeting.title,
            "ends_at": meeting.ends_at.isoformat(),
        },
        "last_seq": meeting.last_seq,
        "limits": {
            "max_length": settings.CHAT_MAX_MESSAGE_LENGTH,
            "heartbeat_seconds": settings.CHAT_HEARTBEAT_SECONDS,
        },
    }


def message(event: dict, *, viewer_membership_id: int, reported: bool = False) -> dict:
    """A stored message (``meetings.services.message_event``) as this member sees it;
    ``reported``: this viewer reported it already (so a reload still shows "Reported")."""
    mine = event["author_membership"] == viewer_membership_id
    return {
        "type": "message",
        "seq": event["seq"],
        "client_id": event["client_id"] if mine else None,
        "author": event["author"],
        "mine": mine,
        "body": event["body"],
        "hidden": event["hidden"],
        "sent_at": event["sent_at"],
        "reported": reported,
    }


def ack(*, client_id: str, seq: int, duplicate: bool) -> dict:
    return {"type": "ack", "client_id": client_id, "seq": seq, "duplicate": duplicate}


def resumed(*, after_seq: int, last_seq: int, more: bool) -> dict:
    return {"type": "resumed", "after_seq": after_seq, "last_seq": last_seq, "more": more}


def history(*, messages: list[dict], before_seq: int | None, last_seq: int, more: bool) -> dict:
    return {
        "type": "history",
        "messages": messages,
        "before_seq": before_seq,
        "last_seq": last_seq,
        "more": more,
    }


def pong() -> dict:
    return {"type": "pong"}


def presence(present: list[str]) -> dict:
    return {"type": "presence", "present": present}


def status(*, can_send: bool, pseudonym: str, muted: dict | None = None) -> dict:
    return {"type": "status", "can_send": can_send, "pseudonym": pseudonym, "muted": muted}


def closed(reason: str, message: str | None = None) -> dict:
    frame = {"type": "closed", "reason": reason}
    if message is not None:
        frame["message"] = message
    return frame


def message_changed(*, seq: int, hidden: bool, body: str | None) -> dict:
    return {"type": "message_changed", "seq": seq, "hidden": hidden, "body": body}


def announcement(text: str | None) -> dict:
    return {"type": "announcement", "text": text}


def reported(seq: int) -> dict:
    return {"type": "reported", "seq": seq}


def moderated(*, action: str, seq: int) -> dict:
    return {"type": "moderated", "action": action, "seq": seq}


def error(code: str, message: str, **extra: Any) -> dict:
    return {"type": "error", "code": code, "message": message, **extra}
