"""The browser's cryptography for end-to-end encrypted meetings (static/js/e2ee.js) computes
exactly the bytes of the agreed protocol (meetings/PROTOCOL.md, issue 19): every value is
recomputed here independently with Python's `cryptography`, and what one side seals the
other opens, in both directions. A byte out of place anywhere fails here, not in a room."""

import base64
import hashlib
import hmac
import json
import os
import struct

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MEETING = "41"
SENDER = "c2VuZGVyLWRldmljZS0wMQ"
RECIPIENT = "cmVjaXBpZW50LWRldmljZQ"
CLIENT_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"

# --- the protocol in Python (an independent reading of the spec) ------------------------------


def lp(*fields):
    out = b""
    for field in fields:
        data = str(field).encode() if isinstance(field, int) else field.encode()
        out += struct.pack(">I", len(data)) + data
    return out


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text, validate=True)


def hmac256(key, message):
    return hmac.new(key, message, hashlib.sha256).digest()


def message_key(chain_key, steps):
    for _ in range(steps):
        chain_key = hmac256(chain_key, b"\x02")
    return hmac256(chain_key, b"\x01")


def raw(public_key):
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def kek(private_key, peer_raw, sender, recipient, epoch, first_index):
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer_raw)
    secret = private_key.exchange(ec.ECDH(), peer)
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"sg-wrap-v1",
        info=lp("sg-wrap-v1", MEETING, sender, recipient, epoch, first_index),
    ).derive(secret)


def signed_input(e2ee, client_id=CLIENT_ID):
    return lp(
        "sg-sig-v1",
        MEETING,
        e2ee["sender_device"],
        client_id,
        e2ee["epoch"],
        e2ee["index"],
        e2ee["iv"],
        e2ee["ciphertext"],
        e2ee["commitment"],
    )


def safety_code(ecdsa_raw, ecdh_raw):
    number = int.from_bytes(hashlib.sha256(ecdsa_raw + ecdh_raw).digest()[:5], "big")
    digits = f"{number % 10**12:012d}"
    return f"{digits[:4]} {digits[4:8]} {digits[8:]}"


# --- the browser -------------------------------------------------------------------------------

LOAD = """async () => {
  window.__e2ee = await import("/static/js/e2ee.js");
  return true;
}"""


@pytest.fixture
def browser_crypto(page, live_server_url):
    page.goto(live_server_url + "/")
    page.evaluate(LOAD)
    return page


def js_bytes(data):
    return list(data)


def test_lp_base64_and_the_chain_match_the_spec(browser_crypto):
    page = browser_crypto
    chain_key = os.urandom(32)
    got = page.evaluate(
        """async ([ck]) => {
          const m = window.__e2ee;
          const first = await m.chainStep(new Uint8Array(ck));
          const chain = new m.ReceivedChain(3, new Uint8Array(ck));
          return {
            lp: Array.from(m.lp("sg-msg-v1", "41", "dev", "cid", 7, 0, "é")),
            b64: m.b64(new Uint8Array([0, 255, 1, 2])),
            unb64: Array.from(m.unb64("AP8BAg==")),
            mk0: Array.from(first.messageKey),
            ck1: Array.from(first.next),
            mk5: Array.from(await chain.messageKey(5)),
            before: await chain.messageKey(2),
          };
        }""",
        [js_bytes(chain_key)],
    )
    assert bytes(got["lp"]) == lp("sg-msg-v1", "41", "dev", "cid", 7, 0, "é")
    assert got["b64"] == b64(bytes([0, 255, 1, 2]))
    assert bytes(got["unb64"]) == bytes([0, 255, 1, 2])
    assert bytes(got["mk0"]) == hmac256(chain_key, b"\x01")
    assert bytes(got["ck1"]) == hmac256(chain_key, b"\x02")
    # A chain received at index 3 opens index 5 (two steps on) and nothing before 3.
    assert bytes(got["mk5"]) == message_key(chain_key, 2)
    assert got["before"] is None


def test_a_device_keeps_its_private_keys_unexportable_and_its_safety_code_is_the_specs(
    browser_crypto,
):
    got = browser_crypto.evaluate(
        """async () => {
          const m = window.__e2ee;
          const device = await m.makeDevice();
          let exported = false;
          for (const key of [device.ecdhPrivate, device.ecdsaPrivate]) {
            try { await crypto.subtle.exportKey("pkcs8", key); exported = true; } catch {}
          }
          return {
            exported,
            extractable: device.ecdhPrivate.extractable || device.ecdsaPrivate.extractable,
            ecdh: Array.from(device.ecdhPublic),
            ecdsa: Array.from(device.ecdsaPublic),
            code: await m.safetyCode(device.ecdsaPublic, device.ecdhPublic),
          };
        }"""
    )
    assert not got["exported"]
    assert not got["extractable"]
    for point in (bytes(got["ecdh"]), bytes(got["ecdsa"])):
        assert len(point) == 65 and point[0] == 4
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # on the curve
    assert got["code"] == safety_code(bytes(got["ecdsa"]), bytes(got["ecdh"]))
    assert len(got["code"]) == 14 and got["code"][4] == got["code"][9] == " "


def test_a_chain_key_wrapped_in_the_browser_opens_in_python_and_the_other_way(browser_crypto):
    page = browser_crypto
    python_ecdh = ec.generate_private_key(ec.SECP256R1())
    chain_key = os.urandom(32)
    got = page.evaluate(
        """async ([peer, ck]) => {
          const m = window.__e2ee;
          window.__device = await m.makeDevice();
          const wrapped = await m.wrapChainKey({
            ecdhPrivate: window.__device.ecdhPrivate, peerEcdhRaw: new Uint8Array(peer),
            meeting: "41", senderDevice: "c2VuZGVyLWRldmljZS0wMQ",
            recipientDevice: "cmVjaXBpZW50LWRldmljZQ", epoch: 3, firstIndex: 12,
            chainKey: new Uint8Array(ck),
          });
          return { wrapped, ecdh: Array.from(window.__device.ecdhPublic) };
        }""",
        [js_bytes(raw(python_ecdh.public_key())), js_bytes(chain_key)],
    )
    browser_ecdh = bytes(got["ecdh"])
    blob = unb64(got["wrapped"])
    assert len(blob) == 12 + 32 + 16
    key = kek(python_ecdh, browser_ecdh, SENDER, RECIPIENT, 3, 12)
    assert AESGCM(key).decrypt(blob[:12], blob[12:], None) == chain_key
    # Bound to its place: another first index gives another key, which does not open it.
    with pytest.raises(Exception):  # noqa: B017, PT011 (cryptography's InvalidTag)
        AESGCM(kek(python_ecdh, browser_ecdh, SENDER, RECIPIENT, 3, 0)).decrypt(
            blob[:12], blob[12:], None
        )

    # Python wraps for the browser's device; the browser opens it, and refuses it at
    # another epoch.
    other_chain_key = os.urandom(32)
    iv = os.urandom(12)
    key = kek(python_ecdh, browser_ecdh, RECIPIENT, SENDER, 5, 0)
    wrapped = b64(iv + AESGCM(key).encrypt(iv, other_chain_key, None))
    opened = page.evaluate(
        """async ([peer, wrapped]) => {
          const m = window.__e2ee;
          const params = {
            ecdhPrivate: window.__device.ecdhPrivate, peerEcdhRaw: new Uint8Array(peer),
            meeting: "41", senderDevice: "cmVjaXBpZW50LWRldmljZQ",
            recipientDevice: "c2VuZGVyLWRldmljZS0wMQ", epoch: 5, firstIndex: 0, wrapped,
          };
          const key = Array.from(await m.unwrapChainKey(params));
          let wrongEpoch = "opened";
          try { await m.unwrapChainKey({ ...params, epoch: 6 }); } catch { wrongEpoch = "refused"; }
          return { key, wrongEpoch };
        }""",
        [js_bytes(raw(python_ecdh.public_key())), wrapped],
    )
    assert bytes(opened["key"]) == other_chain_key
    assert opened["wrongEpoch"] == "refused"


def test_a_message_sealed_in_the_browser_verifies_opens_and_commits_in_python(browser_crypto):
    page = browser_crypto
    message_key_bytes = os.urandom(32)
    body = "I lost my mother in the spring. <b>Not bold</b> ✓"
    got = page.evaluate(
        """async ([mk, body, clientId]) => {
          const m = window.__e2ee;
          const device = await m.makeDevice();
          const e2ee = await m.sealMessage({
            body, meeting: "41", senderDevice: "c2VuZGVyLWRldmljZS0wMQ", clientId,
            epoch: 2, index: 9, messageKey: new Uint8Array(mk), ecdsaPrivate: device.ecdsaPrivate,
          });
          return { e2ee, ecdsa: Array.from(device.ecdsaPublic) };
        }""",
        [js_bytes(message_key_bytes), body, CLIENT_ID],
    )
    e2ee = got["e2ee"]
    assert set(e2ee) == {
        "sender_device",
        "epoch",
        "index",
        "iv",
        "ciphertext",
        "signature",
        "commitment",
    }
    assert (e2ee["sender_device"], e2ee["epoch"], e2ee["index"]) == (SENDER, 2, 9)
    # The signature: P1363 r||s over the spec's signed input, with the device's key.
    signature = unb64(e2ee["signature"])
    assert len(signature) == 64
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(got["ecdsa"]))
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public.verify(der, signed_input(e2ee), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(
            der, signed_input(e2ee, client_id="another-client-id"), ec.ECDSA(hashes.SHA256())
        )
    # The ciphertext: AES-GCM under the message key, bound to its aad.
    iv = unb64(e2ee["iv"])
    assert len(iv) == 12
    aad = lp("sg-msg-v1", MEETING, SENDER, CLIENT_ID, 2, 9)
    payload = json.loads(AESGCM(message_key_bytes).decrypt(iv, unb64(e2ee["ciphertext"]), aad))
    assert set(payload) == {"b", "f"}
    assert payload["b"] == body
    franking_key = unb64(payload["f"])
    assert len(franking_key) == 32
    # The commitment outside is the franking HMAC of what is inside.
    assert unb64(e2ee["commitment"]) == hmac256(
        franking_key, lp("sg-frank-v1", body, MEETING, SENDER, CLIENT_ID)
    )
    # Plaintext is nowhere outside the ciphertext.
    assert "mother" not in json.dumps(e2ee)


def python_sealed(body, message_key_bytes, signer, *, commit_to=None, franking_key=None):
    franking_key = franking_key or os.urandom(32)
    payload = json.dumps({"b": body, "f": b64(franking_key)}).encode()
    iv = os.urandom(12)
    aad = lp("sg-msg-v1", MEETING, SENDER, CLIENT_ID, 4, 1)
    e2ee = {
        "sender_device": SENDER,
        "client_id": CLIENT_ID,
        "epoch": 4,
        "index": 1,
        "iv": b64(iv),
        "ciphertext": b64(AESGCM(message_key_bytes).encrypt(iv, payload, aad)),
        "commitment": b64(
            hmac256(
                franking_key,
                lp("sg-frank-v1", commit_to or body, MEETING, SENDER, CLIENT_ID),
            )
        ),
    }
    r, s = decode_dss_signature(signer.sign(signed_input(e2ee), ec.ECDSA(hashes.SHA256())))
    e2ee["signature"] = b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return e2ee, franking_key


READ = """async ([e2ee, ecdsa, mk]) => {
  const m = window.__e2ee;
  const args = { e2ee, meeting: "41", clientId: e2ee.client_id };
  const verified = await m.verifyMessage({ ...args, ecdsaRaw: new Uint8Array(ecdsa) });
  try {
    const opened = await m.openMessage({ ...args, messageKey: new Uint8Array(mk) });
    return { verified, body: opened.body, frankingKey: m.b64(opened.frankingKey) };
  } catch (error) {
    return { verified, error: error.constructor.name };
  }
}"""


def test_a_message_sealed_in_python_is_verified_and_read_in_the_browser_and_fakes_are_not(
    browser_crypto,
):
    page = browser_crypto
    signer = ec.generate_private_key(ec.SECP256R1())
    signer_raw = js_bytes(raw(signer.public_key()))
    mk = os.urandom(32)

    e2ee, franking_key = python_sealed("Some days are harder than others.", mk, signer)
    got = page.evaluate(READ, [e2ee, signer_raw, js_bytes(mk)])
    assert got == {
        "verified": True,
        "body": "Some days are harder than others.",
        "frankingKey": b64(franking_key),
    }

    # Signed by someone else: not verified (the page then never names the claimed sender).
    other = ec.generate_private_key(ec.SECP256R1())
    got = page.evaluate(READ, [e2ee, js_bytes(raw(other.public_key())), js_bytes(mk)])
    assert got["verified"] is False
    # A changed ciphertext: the signature no longer holds, and the key does not open it.
    # (One bit flipped: setting the first byte to 0 changed nothing one time in 256.)
    ciphertext = bytearray(unb64(e2ee["ciphertext"]))
    ciphertext[0] ^= 1
    tampered = dict(e2ee, ciphertext=b64(bytes(ciphertext)))
    got = page.evaluate(READ, [tampered, signer_raw, js_bytes(mk)])
    assert got == {"verified": False, "error": "Unreadable"}
    # Another message key: unreadable, whatever the signature says.
    got = page.evaluate(READ, [e2ee, signer_raw, js_bytes(os.urandom(32))])
    assert got == {"verified": True, "error": "Unreadable"}
    # A sender who commits to something other than what they sent (to make it
    # unreportable): signed, decryptable, and still refused by the receiving client.
    uncommitted, _ = python_sealed("What I really said.", mk, signer, commit_to="Something else.")
    got = page.evaluate(READ, [uncommitted, signer_raw, js_bytes(mk)])
    assert got == {"verified": True, "error": "Uncommitted"}


def test_the_shared_known_answer_vectors(browser_crypto):
    """The fixed vectors of tests/meetings/test_e2ee_crypto.py, reproduced by WebCrypto."""
    got = browser_crypto.evaluate(
        """async () => {
          const m = window.__e2ee;
          const ck0 = new Uint8Array([...Array(32).keys()]);
          const frankingKey = new Uint8Array([...Array(32).keys()].map((i) => i + 100));
          const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
          const step = await m.chainStep(ck0);
          const zeros = await crypto.subtle.importKey(
            "raw", new Uint8Array(32), "HKDF", false, ["deriveBits"]);
          return {
            mk0: hex(step.messageKey),
            ck1: hex(step.next),
            commitment: hex(await m.commitmentOf(
              frankingKey, "Hello", 7, "AAAAAAAAAAAAAAAAAAAAAA", "client-0001")),
            lp: hex(m.lp("sg", 42)),
            lpFrank: hex(m.lp("sg-frank-v1", "Hello", 7)),
            // The wrap's HKDF step, with the wrap's info (the AES key itself is not
            // extractable, so the same derivation is read as bits here).
            hkdf: hex(new Uint8Array(await crypto.subtle.deriveBits(
              {
                name: "HKDF", hash: "SHA-256", salt: new TextEncoder().encode("sg-wrap-v1"),
                info: m.lp("sg-wrap-v1", 7, "A".repeat(22), "B".repeat(22), 1, 0),
              },
              zeros,
              256,
            ))),
          };
        }"""
    )
    assert got == {
        "mk0": "9b4c8120a4823a95f47cde17a244f4507244ee6e3957d1fab9fa29b44d3829b7",
        "ck1": "4304c22c84a53755ab08ead8d97a8d429be5efa480682d7ad1da27f73e1fbe1d",
        "commitment": "7079598d589b0cdfe0b1d1a1e30c1fc846100b71c47073f674e4fed828e9c711",
        "lp": (b"\x00\x00\x00\x02sg\x00\x00\x00\x0242").hex(),
        "lpFrank": "0000000b73672d6672616e6b2d76310000000548656c6c6f0000000137",
        "hkdf": "42f68ea1b80e8a9302af8019de302a595d303d15180ecf81b71e074a0b5e9e18",
    }
