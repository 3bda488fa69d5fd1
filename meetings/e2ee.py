"""The server's share of the E2EE meeting crypto (meetings/E2EE.md): reading public keys,
checking a sender's signature and opening a franking commitment. It never sees a key that
opens a message. The encodings are those of the wire protocol (PROTOCOL.md, "End-to-end
encrypted rooms"), byte for byte as the browsers make them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

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
