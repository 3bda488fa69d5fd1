"""The server's crypto helpers (meetings/e2ee.py) against the reference client
(tests/e2ee_client.py), and fixed vectors both sides (and the browser's WebCrypto code) must
reproduce byte for byte (they are in notes/E2EE-SPEC.md too)."""

import hashlib

from meetings import e2ee
from tests import e2ee_client

CK0 = bytes(range(32))
FRANKING_KEY = bytes(range(100, 132))


def test_lp_writes_lengths_and_decimal_integers():
    assert e2ee.lp("sg", 42) == b"\x00\x00\x00\x02sg\x00\x00\x00\x0242"
    assert e2ee.lp("é") == b"\x00\x00\x00\x02\xc3\xa9"
    assert e2ee_client.lp("sg", 42) == e2ee.lp("sg", 42)


def test_the_chain_and_franking_vectors():
    mk0 = e2ee_client.message_key(CK0)
    ck1 = e2ee_client.next_chain_key(CK0)
    assert mk0.hex() == "9b4c8120a4823a95f47cde17a244f4507244ee6e3957d1fab9fa29b44d3829b7"
    assert ck1.hex() == "4304c22c84a53755ab08ead8d97a8d429be5efa480682d7ad1da27f73e1fbe1d"
    assert e2ee_client.chain_at(CK0, 2) == e2ee_client.next_chain_key(ck1)
    commitment = e2ee.commitment_of(
        franking_key=FRANKING_KEY,
        body="Hello",
        meeting_id=7,
        sender_device="AAAAAAAAAAAAAAAAAAAAAA",
        client_id="client-0001",
    )
    assert commitment.hex() == ("7079598d589b0cdfe0b1d1a1e30c1fc846100b71c47073f674e4fed828e9c711")
    assert commitment == e2ee_client.commitment(
        FRANKING_KEY, "Hello", 7, "AAAAAAAAAAAAAAAAAAAAAA", "client-0001"
    )
    assert e2ee.commitment_opens(
        commitment,
        franking_key=FRANKING_KEY,
        body="Hello",
        meeting_id=7,
        sender_device="AAAAAAAAAAAAAAAAAAAAAA",
        client_id="client-0001",
    )
    assert not e2ee.commitment_opens(
        commitment,
        franking_key=FRANKING_KEY,
        body="Hello!",
        meeting_id=7,
        sender_device="AAAAAAAAAAAAAAAAAAAAAA",
        client_id="client-0001",
    )


def test_a_reference_signature_verifies_on_the_server_and_a_changed_one_does_not():
    device = e2ee_client.E2EEDevice(7, id="AAAAAAAAAAAAAAAAAAAAAA")
    device.new_epoch()
    frame, _ = device.seal("Hello", "client-0001")
    sealed = frame["e2ee"]
    text = e2ee.signed_text(
        meeting_id=7,
        sender_device=device.id,
        client_id="client-0001",
        epoch=sealed["epoch"],
        index=sealed["index"],
        iv=e2ee_client.unb64(sealed["iv"]),
        ciphertext=e2ee_client.unb64(sealed["ciphertext"]),
        commitment=e2ee_client.unb64(sealed["commitment"]),
    )
    public = e2ee_client.raw_public(device.ecdsa)
    signature = e2ee_client.unb64(sealed["signature"])
    assert e2ee.signature_valid(public, signature, text)
    assert not e2ee.signature_valid(public, signature, text + b"x")
    assert not e2ee.signature_valid(public, signature[:63], text)
    assert not e2ee.signature_valid(b"\x04" + bytes(64), signature, text)


def test_points_off_the_curve_are_refused():
    key = e2ee_client.raw_public(e2ee_client.E2EEDevice(1).ecdh)
    assert e2ee.public_key(key) is not None
    assert e2ee.public_key(b"\x04" + b"\x01" * 64) is None
    assert e2ee.public_key(key[:-1]) is None
    assert e2ee.public_key(b"\x02" + key[1:33]) is None  # compressed: not the wire form


def test_the_safety_code_is_twelve_digits_in_threes_of_four():
    ecdsa, ecdh = bytes([4]) + bytes(64), bytes([4]) + bytes([1]) * 64
    number = int.from_bytes(hashlib.sha256(ecdsa + ecdh).digest()[:5], "big") % 10**12
    code = e2ee.safety_code(ecdsa_public=ecdsa, ecdh_public=ecdh)
    assert code.replace(" ", "") == f"{number:012d}"
    assert [len(part) for part in code.split(" ")] == [4, 4, 4]


def test_base64_must_be_standard_and_padded():
    assert e2ee.b64decode("AAAA") == b"\x00\x00\x00"
    assert e2ee.b64decode("AAA") is None
    assert e2ee.b64decode("AA-_") is None  # base64url is not the wire form
    assert e2ee.b64decode(None) is None
