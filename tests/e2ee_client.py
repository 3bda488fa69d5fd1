"""A reference client of the E2EE meeting protocol in Python (meetings/PROTOCOL.md, "End-to-end
encrypted rooms"; the crypto in meetings/E2EE.md): what a browser does with WebCrypto, byte for
byte, for the socket tests and `make bench`. It uses only `cryptography`, never the server's
code, so a test with it checks the server against the protocol, not against itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def lp(*fields: str | int) -> bytes:
    out = bytearray()
    for value in fields:
        data = str(value).encode()
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def raw_public(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def message_key(chain_key: bytes) -> bytes:
    return hmac.new(chain_key, b"\x01", hashlib.sha256).digest()


def next_chain_key(chain_key: bytes) -> bytes:
    return hmac.new(chain_key, b"\x02", hashlib.sha256).digest()


def chain_at(chain_key: bytes, steps: int) -> bytes:
    for _ in range(steps):
        chain_key = next_chain_key(chain_key)
    return chain_key


def commitment(franking_key: bytes, body: str, meeting: int, sender: str, client_id: str) -> bytes:
    return hmac.new(
        franking_key, lp("sg-frank-v1", body, meeting, sender, client_id), hashlib.sha256
    ).digest()


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(public_raw: bytes, signature: bytes, data: bytes) -> bool:
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_raw)
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except Exception:  # noqa: BLE001 - InvalidSignature: "could not be verified"
        return False
    return True


def signed_text(meeting: int, sender: str, client_id: str, sealed: dict) -> bytes:
    return lp(
        "sg-sig-v1",
        meeting,
        sender,
        client_id,
        sealed["epoch"],
        sealed["index"],
        sealed["iv"],
        sealed["ciphertext"],
        sealed["commitment"],
    )


def wrap_key(  # noqa: PLR0913
    *,
    own_ecdh: ec.EllipticCurvePrivateKey,
    recipient_ecdh_raw: bytes,
    meeting: int,
    sender: str,
    recipient: str,
    epoch: int,
    first_index: int,
    chain_key: bytes,
) -> str:
    kek = _kek(own_ecdh, recipient_ecdh_raw, meeting, sender, recipient, epoch, first_index)
    iv = os.urandom(12)
    return b64(iv + AESGCM(kek).encrypt(iv, chain_key, None))


def unwrap_key(  # noqa: PLR0913
    *,
    own_ecdh: ec.EllipticCurvePrivateKey,
    sender_ecdh_raw: bytes,
    meeting: int,
    sender: str,
    recipient: str,
    epoch: int,
    first_index: int,
    wrapped: str,
) -> bytes:
    kek = _kek(own_ecdh, sender_ecdh_raw, meeting, sender, recipient, epoch, first_index)
    data = unb64(wrapped)
    return AESGCM(kek).decrypt(data[:12], data[12:], None)


def _kek(own, other_raw, meeting, sender, recipient, epoch, first_index) -> bytes:  # noqa: ANN001, PLR0913
    other = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), other_raw)
    secret = own.exchange(ec.ECDH(), other)
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"sg-wrap-v1",
        info=lp("sg-wrap-v1", meeting, sender, recipient, epoch, first_index),
    ).derive(secret)


@dataclass
class Chain:
    epoch: int
    chain_key: bytes  # at index ``index``
    index: int = 0


@dataclass
class E2EEDevice:
    """One browser's device in one meeting: its key pairs, its sending chain, the chains
    it received, and what it decrypted."""

    meeting: int
    ecdh: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    ecdsa: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    id: str | None = None
    sending: Chain | None = None
    # (sender device, epoch) -> (first index, chain key at it)
    received: dict[tuple[str, int], tuple[int, bytes]] = field(default_factory=dict)
    devices: dict[str, dict] = field(default_factory=dict)
    # Each epoch's first chain key (a browser keeps it through its self-share).
    epoch_starts: dict[int, bytes] = field(default_factory=dict)
    # The device's current epoch in the meeting as the server last said (hello.e2ee.epoch).
    server_epoch: int = 0

    def register_frame(self) -> dict:
        return {
            "type": "device_register",
            "ecdh": b64(raw_public(self.ecdh)),
            "ecdsa": b64(raw_public(self.ecdsa)),
        }

    def new_epoch(self) -> Chain:
        epoch = max(self.sending.epoch if self.sending else 0, self.server_epoch) + 1
        self.sending = Chain(epoch, os.urandom(32))
        self.epoch_starts[epoch] = self.sending.chain_key
        return self.sending

    def share_frame(self, recipients: list[str], *, from_start_of: int | None = None) -> dict:
        """Wrap the sending chain at the next index for these devices (or, answering a key
        request, the chain of epoch ``from_start_of`` from index 0)."""
        chain = self.sending
        epoch = chain.epoch if from_start_of is None else from_start_of
        first = chain.index if from_start_of is None else 0
        key = chain.chain_key if from_start_of is None else self.epoch_starts[from_start_of]
        return {
            "type": "keys_share",
            "epoch": epoch,
            "shares": [
                {
                    "recipient_device": recipient,
                    "first_index": first,
                    "wrapped": self.wrap_for(recipient, epoch, first, key),
                }
                for recipient in recipients
            ],
        }

    def wrap_for(self, recipient: str, epoch: int, first_index: int, chain_key: bytes) -> str:
        recipient_ecdh = (
            raw_public(self.ecdh)
            if recipient == self.id
            else unb64(self.devices[recipient]["ecdh"])
        )
        return wrap_key(
            own_ecdh=self.ecdh,
            recipient_ecdh_raw=recipient_ecdh,
            meeting=self.meeting,
            sender=self.id,
            recipient=recipient,
            epoch=epoch,
            first_index=first_index,
            chain_key=chain_key,
        )

    def seal(self, body: str, client_id: str) -> tuple[dict, bytes]:
        """An E2EE ``send`` frame for ``body`` and the franking key inside it."""
        chain = self.sending
        franking_key = os.urandom(32)
        payload = json.dumps(
            {"b": body, "f": b64(franking_key)}, separators=(",", ":"), ensure_ascii=False
        ).encode()  # as JSON.stringify
        index = chain.index
        aad = lp("sg-msg-v1", self.meeting, self.id, client_id, chain.epoch, index)
        iv = os.urandom(12)
        ciphertext = AESGCM(message_key(chain.chain_key)).encrypt(iv, payload, aad)
        chain.chain_key, chain.index = next_chain_key(chain.chain_key), index + 1
        sealed = {
            "sender_device": self.id,
            "epoch": chain.epoch,
            "index": index,
            "iv": b64(iv),
            "ciphertext": b64(ciphertext),
            "commitment": b64(commitment(franking_key, body, self.meeting, self.id, client_id)),
        }
        sealed["signature"] = b64(
            sign(self.ecdsa, signed_text(self.meeting, self.id, client_id, sealed))
        )
        return {"type": "send", "client_id": client_id, "e2ee": sealed}, franking_key

    def take_keys(self, shares: list[dict]) -> None:
        for share in shares:
            sender = share["sender_device"]
            sender_ecdh = (
                raw_public(self.ecdh) if sender == self.id else unb64(self.devices[sender]["ecdh"])
            )
            chain_key = unwrap_key(
                own_ecdh=self.ecdh,
                sender_ecdh_raw=sender_ecdh,
                meeting=self.meeting,
                sender=sender,
                recipient=self.id,
                epoch=share["epoch"],
                first_index=share["first_index"],
                wrapped=share["wrapped"],
            )
            known = self.received.get((sender, share["epoch"]))
            if known is None or share["first_index"] < known[0]:
                self.received[(sender, share["epoch"])] = (share["first_index"], chain_key)

    def open(self, message: dict) -> dict:
        """What a browser shows for a ``message`` frame: the body and the franking key when
        it decrypts, verifies and its commitment matches; else why not."""
        sealed = message["e2ee"]
        if sealed is None:
            return {"shown": None, "why": "hidden"}
        sender = sealed["sender_device"]
        device = self.devices.get(sender)
        client_id = sealed.get("client_id")
        if device is None or client_id is None:
            return {"shown": None, "why": "unknown_device"}
        if not verify(
            unb64(device["ecdsa"]),
            unb64(sealed["signature"]),
            signed_text(self.meeting, sender, client_id, sealed),
        ):
            return {"shown": None, "why": "not_verified"}
        known = self.received.get((sender, sealed["epoch"]))
        if known is None or sealed["index"] < known[0]:
            return {"shown": None, "why": "no_key"}
        chain_key = chain_at(known[1], sealed["index"] - known[0])
        aad = lp("sg-msg-v1", self.meeting, sender, client_id, sealed["epoch"], sealed["index"])
        try:
            payload = AESGCM(message_key(chain_key)).decrypt(
                unb64(sealed["iv"]), unb64(sealed["ciphertext"]), aad
            )
        except Exception:  # noqa: BLE001 - InvalidTag: "could not be unlocked"
            return {"shown": None, "why": "no_key"}
        opened = json.loads(payload)
        franking_key = unb64(opened["f"])
        if commitment(franking_key, opened["b"], self.meeting, sender, client_id) != unb64(
            sealed["commitment"]
        ):
            return {"shown": None, "why": "unverifiable"}
        return {"shown": opened["b"], "franking_key": franking_key, "author": device["pseudonym"]}
