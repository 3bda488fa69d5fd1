"""The server's share of the E2EE meeting crypto (meetings/E2EE.md): reading public keys,
checking a sender's signature and opening a franking commitment. It never sees a key that
opens a message. The encodings are those of the wire protocol (PROTOCOL.md, "End-to-end
encrypted rooms"), byte for byte as the browsers make them.

Also the sealed send's checks (``sealed_send_check``): the device, the epoch and its
coverage in one statement, which meetings.services.messages_post runs for a sealed message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.utils import timezone

from supportgroups.errors import ServiceError
from supportgroups.prepared import fetch_all

# The room header's sentence, in plain words (issue 19; the group setting's help says it too).
E2EE_ROOM_SENTENCE = (
    "End-to-end encrypted: only the people in this meeting can read it — not the "
    "facilitators afterwards, not the people who run this site."
)
PLAIN_ROOM_SENTENCE = (
    "Not end-to-end encrypted: messages are stored encrypted on this site's server, which "
    "can read them."
)

POINT_LENGTH = 65  # a raw uncompressed P-256 point: 0x04 ‖ x ‖ y
SIGNATURE_LENGTH = 64  # P-256 r ‖ s (IEEE P1363), what WebCrypto makes
IV_LENGTH = 12
COMMITMENT_LENGTH = 32
FRANKING_KEY_LENGTH = 32
# A wrapped chain key: iv ‖ AES-GCM(32-byte chain key) ‖ 16-byte tag.
WRAPPED_LENGTH = IV_LENGTH + 32 + 16


@dataclass(frozen=True)
class SealedMessage:
    """An end-to-end encrypted message as its sender's browser sent it (decoded)."""

    sender_device: str
    epoch: int
    index: int
    iv: bytes
    ciphertext: bytes
    signature: bytes
    commitment: bytes


@dataclass(frozen=True)
class ShareIn:
    """A chain key wrapped for one recipient device (decoded)."""

    recipient_device: str
    first_index: int
    wrapped: bytes


def b64decode(value: object) -> bytes | None:
    """Standard base64 with padding, or None when it is not that (or not a string)."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def b64encode(value: bytes) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def lp(*fields: str | int | bytes) -> bytes:
    """Each field as a 4-byte big-endian length and its UTF-8 bytes (integers as decimal)."""
    out = bytearray()
    for field in fields:
        data = field if isinstance(field, bytes) else str(field).encode()
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def public_key(raw: bytes) -> ec.EllipticCurvePublicKey | None:
    """A P-256 public key from its raw point, or None when the point is not on the curve."""
    if len(raw) != POINT_LENGTH or raw[0] != 0x04:
        return None
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        return None


def signed_text(  # noqa: PLR0913
    *,
    meeting_id: int,
    sender_device: str,
    client_id: str,
    epoch: int,
    index: int,
    iv: bytes,
    ciphertext: bytes,
    commitment: bytes,
) -> bytes:
    return lp(
        "sg-sig-v1",
        meeting_id,
        sender_device,
        client_id,
        epoch,
        index,
        b64encode(iv),
        b64encode(ciphertext),
        b64encode(commitment),
    )


def signature_valid(ecdsa_public: bytes, signature: bytes, message: bytes) -> bool:
    key = public_key(bytes(ecdsa_public))
    if key is None or len(signature) != SIGNATURE_LENGTH:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def commitment_of(
    *, franking_key: bytes, body: str, meeting_id: int, sender_device: str, client_id: str
) -> bytes:
    return hmac.new(
        franking_key,
        lp("sg-frank-v1", body, meeting_id, sender_device, client_id),
        hashlib.sha256,
    ).digest()


def commitment_opens(
    stored: bytes,
    *,
    franking_key: bytes,
    body: str,
    meeting_id: int,
    sender_device: str,
    client_id: str,
) -> bool:
    """Whether the reporter's plaintext and franking key open the commitment stored with
    the message (in constant time)."""
    computed = commitment_of(
        franking_key=franking_key,
        body=body,
        meeting_id=meeting_id,
        sender_device=sender_device,
        client_id=client_id,
    )
    return hmac.compare_digest(computed, bytes(stored))


def safety_code(*, ecdsa_public: bytes, ecdh_public: bytes) -> str:
    """The device's short code people compare face to face: 12 digits in groups of 4."""
    digest = hashlib.sha256(bytes(ecdsa_public) + bytes(ecdh_public)).digest()
    number = int.from_bytes(digest[:5], "big") % 10**12
    digits = f"{number:012d}"
    return " ".join(digits[i : i + 4] for i in range(0, 12, 4))


# --- the sealed send's checks ---------------------------------------------------------------


class SealRefused(ServiceError):
    """A sealed message refused by its checks (the code goes to the client in an error
    frame, with ``extra`` as more keys of it: the devices still missing the key)."""

    def __init__(self, code: str, message: str, **extra):
        super().__init__(code, message)
        self.extra = extra


@dataclass(frozen=True)
class SealCheck:
    """What the sealed send's statement found: the session's live device for the
    membership (id and signing key), the device's current epoch in the meeting, and the
    devices its epoch must not reach (stale) or must reach and does not (missing)."""

    device_id: str | None
    ecdsa: bytes | None
    current_epoch: int | None
    stale: frozenset[str]
    missing: frozenset[str]


def sealed_send_check(
    sealed: SealedMessage,
    *,
    meeting_id: int,
    membership_id: int,
    session_key: str | None,
    client_id: str,
) -> None:
    """Refuse a sealed message unless it comes from this session's live device for this
    membership, its signature verifies against that device's key, its epoch is the
    device's current one and that epoch reaches every device present whose member may be
    in the room and no device that may no longer hold keys (meetings/E2EE.md).

    Run under the meeting row's lock (after the seq is taken): a device admitted to the
    room takes that lock too, so one admitted before this message is seen present here."""
    found = _seal_check(
        sealed, meeting_id=meeting_id, membership_id=membership_id, session_key=session_key
    )
    if found.device_id is None:
        raise SealRefused("device_required", "This browser's device is not registered here yet.")
    if found.device_id != sealed.sender_device:
        raise SealRefused("invalid_device", "That is not this browser's device.")
    text = signed_text(
        meeting_id=meeting_id,
        sender_device=sealed.sender_device,
        client_id=client_id,
        epoch=sealed.epoch,
        index=sealed.index,
        iv=sealed.iv,
        ciphertext=sealed.ciphertext,
        commitment=sealed.commitment,
    )
    if not signature_valid(found.ecdsa, sealed.signature, text):
        raise SealRefused("invalid_e2ee", "The message's signature does not match its device.")
    if found.current_epoch != sealed.epoch:
        raise SealRefused("epoch_stale", "Start a new key for this room, share it, then resend.")
    if found.stale:
        raise SealRefused(
            "epoch_stale",
            "Someone who held this key is no longer in the room: start a new key, share it, "
            "then resend.",
        )
    if found.missing:
        raise SealRefused(
            "keys_needed",
            "Share your key with everyone in the room, then resend.",
            devices=sorted(found.missing),
        )


def _seal_check(
    sealed: SealedMessage, *, meeting_id: int, membership_id: int, session_key: str | None
) -> SealCheck:
    now = timezone.now()
    fresh = now - timedelta(seconds=2 * settings.CHAT_HEARTBEAT_SECONDS)
    values = {
        "meeting": meeting_id,
        "session": session_key or "",
        "membership": membership_id,
        "sender": sealed.sender_device,
        "epoch": sealed.epoch,
        "now": now,
        "fresh": fresh,
    }
    if connection.vendor == "postgresql":
        # Planned once per connection (supportgroups/prepared.py): it joins six tables
        # with 42 indexes between them, and planning it took 1.1 ms against 0.24 ms to
        # run it, for every sealed message (``python -m bench.sendpath --e2ee
        # --statements``).
        rows = fetch_all(_seal_check_sql(), values)
    else:
        at = connection.ops.adapt_datetimefield_value
        with connection.cursor() as cursor:
            cursor.execute(_seal_check_sql(), values | {"now": at(now), "fresh": at(fresh)})
            rows = cursor.fetchall()
    device = next((row for row in rows if row[0] == "device"), None)
    return SealCheck(
        device_id=device[1] if device else None,
        ecdsa=bytes(device[2]) if device else None,
        current_epoch=device[3] if device else None,
        stale=frozenset(row[1] for row in rows if row[0] == "stale"),
        missing=frozenset(row[1] for row in rows if row[0] == "missing"),
    )


def may_hold_keys_sql(device: str, membership: str, group: str, *, now: str = "%s") -> str:
    """meetings.selectors.device_may_hold_keys in SQL, for the device, membership and
    group rows under these aliases, at the time given as its one parameter (``now``, its
    placeholder): the device live, its member current, active or muted (a lapsed mute or
    suspension counts as active), named, and signed up to the group's current agreement
    (groups.selectors: membership_refusal). tests/meetings/test_e2ee_send.py holds the
    two to the same answers."""
    # COALESCE: with no current agreement the comparison below is NULL, and NOT NULL is
    # NULL too, which would let such a device pass as "not stale".
    return (
        f"COALESCE(({device}.retired_at IS NULL AND {device}.session_id IS NOT NULL"
        f" AND ({membership}.status IN ('active', 'muted')"
        f" OR ({membership}.status = 'suspended' AND {membership}.suspended_until IS NOT NULL"
        f" AND {membership}.suspended_until <= {now}))"
        f" AND {membership}.pseudonym <> ''"
        f" AND {membership}.signed_agreement_id IS NOT NULL"
        f" AND {membership}.signed_agreement_id = {group}.current_agreement_id), FALSE)"
    )


@functools.cache
def _seal_check_sql() -> str:
    """One statement, three kinds of row: ``device`` (the session's live device for the
    membership, its key and its current epoch in the meeting; none when it has none),
    ``stale`` (a device the epoch was shared with that may no longer hold keys) and
    ``missing`` (a device present now, whose member may be in the room, without a share of
    the epoch). Present and shared devices are few (a room's), each found by an index.
    Its parameters are named (``%(meeting)s``): see _seal_check."""
    table = {
        name: connection.ops.quote_name(apps.get_model(app, name)._meta.db_table)
        for app, name in (
            ("meetings", "Device"),
            ("meetings", "SenderEpoch"),
            ("meetings", "KeyShare"),
            ("meetings", "Presence"),
            ("groups", "Membership"),
            ("groups", "Group"),
        )
    }
    member_of = (
        f" JOIN {table['Membership']} m ON m.id = d.membership_id"
        f" JOIN {table['Group']} g ON g.id = m.group_id"
    )
    allowed = may_hold_keys_sql("d", "m", "g", now="%(now)s")
    return (
        "SELECT 'device', d.id, d.ecdsa,"  # noqa: S608 - table names from the models
        f" (SELECT MAX(e.epoch) FROM {table['SenderEpoch']} e"
        "  WHERE e.meeting_id = %(meeting)s AND e.device_id = d.id)"
        f" FROM {table['Device']} d"
        " WHERE d.session_id = %(session)s AND d.membership_id = %(membership)s"
        " AND d.retired_at IS NULL"
        " UNION ALL"
        " SELECT 'stale', d.id, NULL, NULL"
        f" FROM {table['KeyShare']} k JOIN {table['Device']} d ON d.id = k.recipient_device_id"
        f"{member_of}"
        " WHERE k.meeting_id = %(meeting)s AND k.sender_device_id = %(sender)s"
        " AND k.epoch = %(epoch)s"
        f" AND NOT {allowed}"
        " UNION ALL"
        " SELECT 'missing', d.id, NULL, NULL"
        f" FROM {table['Presence']} p JOIN {table['Device']} d ON d.id = p.device_id"
        f"{member_of}"
        " WHERE p.meeting_id = %(meeting)s AND p.seen_at >= %(fresh)s AND d.id <> %(sender)s"
        f" AND {allowed}"
        f" AND NOT EXISTS (SELECT 1 FROM {table['KeyShare']} k"
        "  WHERE k.meeting_id = %(meeting)s AND k.sender_device_id = %(sender)s"
        "  AND k.epoch = %(epoch)s AND k.recipient_device_id = d.id)"
    )
