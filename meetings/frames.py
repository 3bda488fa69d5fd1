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

from meetings import e2ee

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
# E2EE rooms (meetings/E2EE.md): device ids are 22 characters of base64url.
DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{22}")
MAX_EPOCH = 2**31 - 1  # a PostgreSQL integer
MAX_SHARES_PER_FRAME = 50
GCM_TAG_LENGTH = 16


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


def read_sealed_send(frame: dict) -> tuple[str, e2ee.SealedMessage]:
    """An E2EE room's ``send``: its client id and the sealed message (no ``body``)."""
    client_id, sealed = frame.get("client_id"), frame.get("e2ee")
    if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
        raise FrameError("invalid_client_id", "Each message needs a client_id.")
    if "body" in frame or not isinstance(sealed, dict):
        raise FrameError(
            "invalid_e2ee",
            "This meeting is end-to-end encrypted: send the encrypted message, not its text.",
            client_id=client_id,
        )
    parts = {
        name: e2ee.b64decode(sealed.get(name))
        for name in ("iv", "ciphertext", "signature", "commitment")
    }
    if parts["ciphertext"] is not None and len(parts["ciphertext"]) > MAX_CIPHERTEXT_BYTES():
        raise FrameError(
            "body_too_long",
            f"Messages can be at most {settings.CHAT_MAX_MESSAGE_LENGTH} characters.",
            client_id=client_id,
        )
    device, epoch, index = sealed.get("sender_device"), sealed.get("epoch"), sealed.get("index")
    if (
        not _device_id(device)
        or not whole(epoch, maximum=MAX_EPOCH)
        or epoch < 1
        or not whole(index)
        or parts["iv"] is None
        or len(parts["iv"]) != e2ee.IV_LENGTH
        or parts["ciphertext"] is None
        or len(parts["ciphertext"]) < GCM_TAG_LENGTH
        or parts["signature"] is None
        or len(parts["signature"]) != e2ee.SIGNATURE_LENGTH
        or parts["commitment"] is None
        or len(parts["commitment"]) != e2ee.COMMITMENT_LENGTH
    ):
        raise FrameError(
            "invalid_e2ee", "That encrypted message is incomplete.", client_id=client_id
        )
    return client_id, e2ee.SealedMessage(sender_device=device, epoch=epoch, index=index, **parts)


def MAX_CIPHERTEXT_BYTES() -> int:  # noqa: N802 - a limit, read from the settings each time
    """The longest message, 4 bytes a character in UTF-8, with room for the franking key."""
    return 4 * settings.CHAT_MAX_MESSAGE_LENGTH + 200


def _device_id(value: Any) -> bool:
    return isinstance(value, str) and DEVICE_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class DeviceKeys:
    ecdh: bytes
    ecdsa: bytes


def read_device_register(frame: dict) -> DeviceKeys:
    ecdh, ecdsa = e2ee.b64decode(frame.get("ecdh")), e2ee.b64decode(frame.get("ecdsa"))
    if (
        ecdh is None
        or ecdsa is None
        or e2ee.public_key(ecdh) is None
        or e2ee.public_key(ecdsa) is None
    ):
        raise FrameError(
            "invalid_device", "A device needs two P-256 public keys (raw points, base64)."
        )
    return DeviceKeys(ecdh, ecdsa)


@dataclass(frozen=True)
class KeysShare:
    epoch: int
    shares: list[e2ee.ShareIn]


def read_keys_share(frame: dict) -> KeysShare:
    epoch, shares = frame.get("epoch"), frame.get("shares")
    if (
        not whole(epoch, maximum=MAX_EPOCH)
        or epoch < 1
        or not isinstance(shares, list)
        or not 1 <= len(shares) <= MAX_SHARES_PER_FRAME
    ):
        raise FrameError(
            "invalid_keys", f"Share an epoch (1 or more) with 1 to {MAX_SHARES_PER_FRAME} devices."
        )
    read = []
    for share in shares:
        wrapped = e2ee.b64decode(share.get("wrapped")) if isinstance(share, dict) else None
        if (
            wrapped is None
            or len(wrapped) != e2ee.WRAPPED_LENGTH
            or not _device_id(share.get("recipient_device"))
            or not whole(share.get("first_index"))
        ):
            raise FrameError(
                "invalid_keys",
                "Each share needs a recipient_device, a first_index and the wrapped key.",
            )
        read.append(e2ee.ShareIn(share["recipient_device"], share["first_index"], wrapped))
    if len({share.recipient_device for share in read}) != len(read):
        raise FrameError("invalid_keys", "Share with each device once per frame.")
    return KeysShare(epoch, read)


def read_keys_fetch(frame: dict) -> int | None:
    after = frame.get("after")
    if after is not None and not whole(after):
        raise FrameError("invalid_keys", "after must be the cursor of the last page.")
    return after


@dataclass(frozen=True)
class KeyRequest:
    sender_device: str
    epoch: int


def read_key_request(frame: dict) -> KeyRequest:
    device, epoch = frame.get("sender_device"), frame.get("epoch")
    if not _device_id(device) or not whole(epoch, maximum=MAX_EPOCH) or epoch < 1:
        raise FrameError("invalid_keys", "A key request names a sender_device and an epoch.")
    return KeyRequest(device, epoch)


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
    # E2EE rooms: what the reporter's browser decrypted, which opens the commitment.
    plaintext: str | None = None
    franking_key: bytes | None = None


def read_report(frame: dict) -> Report:
    seq, rule, note = frame.get("seq"), frame.get("guideline"), frame.get("note") or ""
    plaintext, franking_key = frame.get("plaintext"), frame.get("franking_key")
    key = e2ee.b64decode(franking_key) if franking_key is not None else None
    if (
        # Any size: the moderation service answers "no such message" or "no such rule".
        not whole(seq, maximum=None)
        or not whole(rule, maximum=None)
        or not isinstance(note, str)
        or len(note) > MAX_NOTE_LENGTH
        or (plaintext is not None and not isinstance(plaintext, str))
        or (isinstance(plaintext, str) and len(plaintext) > settings.CHAT_MAX_MESSAGE_LENGTH)
        or (franking_key is not None and (key is None or len(key) != e2ee.FRANKING_KEY_LENGTH))
    ):
        raise FrameError("invalid_report", "A report needs a message and a guideline.")
    return Report(seq, rule, note, plaintext, key)


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
    """(An E2EE room adds ``e2ee``: see ``hello_e2ee``.)"""
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


def hello_e2ee(
    *,
    device,  # noqa: ANN001
    epoch: int | None,
    joined_after_seq: int | None,
    devices: list[dict],
) -> dict:
    """What an E2EE room's ``hello`` carries as ``e2ee``; ``epoch``: the device's current
    sending epoch in this meeting (its next one is ``epoch + 1``), null before its first."""
    return {
        "device": device_keys(device) if device is not None else None,
        "devices": devices,
        "epoch": epoch,
        "joined_after_seq": joined_after_seq,
    }


def device_keys(device) -> dict:  # noqa: ANN001
    return {
        "id": device.pk,
        "ecdh": e2ee.b64encode(device.ecdh),
        "ecdsa": e2ee.b64encode(device.ecdsa),
    }


def device_registered(*, device, joined_after_seq: int) -> dict:  # noqa: ANN001
    return {
        "type": "device_registered",
        "device": device_keys(device),
        "joined_after_seq": joined_after_seq,
    }


def devices(room_devices: list[dict]) -> dict:
    return {"type": "devices", "devices": room_devices}


def keys(*, shares: list[dict], cursor: int | None = None, more: bool = False) -> dict:
    return {"type": "keys", "shares": shares, "cursor": cursor, "more": more}


def keys_shared(*, epoch: int, count: int) -> dict:
    return {"type": "keys_shared", "epoch": epoch, "count": count}


def key_request(*, requester_device: str, epoch: int) -> dict:
    return {"type": "key_request", "requester_device": requester_device, "epoch": epoch}


def message(event: dict, *, viewer_membership_id: int | None, reported: bool = False) -> dict:
    """A stored message (``meetings.services.message_event``) as this member sees it (None:
    as anyone but its author sees it); ``reported``: this viewer reported it already (so a
    reload still shows "Reported")."""
    mine = viewer_membership_id is not None and event["author_membership"] == viewer_membership_id
    frame = {
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
    if "e2ee" in event:
        frame["e2ee"] = event["e2ee"]
    return frame


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
