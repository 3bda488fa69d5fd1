"""The E2EE frames' refusals: bad input gets an error with a stable code (the socket stays
open), and every new frame refuses outsiders and the wrong roles: another group's member, a
removed member, a device of another account, an unverified facilitator session, a plain
room."""

import pytest

from groups import services as group_services
from groups.models import Membership, Status
from meetings.models import KeyShare, Message
from moderation.models import Report
from tests.e2ee_client import E2EEDevice, b64
from tests.meetings.conftest import (
    CLOSE_MEMBERSHIP_CHANGED,
    CLOSE_NOT_ALLOWED,
    Socket,
    build_world,
    cookie,
    give_place,
    make_person,
    run,
    sign_in,
    totp_device,
)
from tests.meetings.e2ee_members import Member, e2ee_world, enter
from tests.sockets import cookie_of

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]

NOT_ON_THE_CURVE = b64(b"\x04" + b"\x01" * 64)


@pytest.fixture
def world():
    return e2ee_world()


async def expect_error(socket: Socket, code: str) -> None:
    refused = await socket.expect_ignoring("error", ("devices",))
    assert refused["code"] == code, refused


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (
            {"type": "device_register", "ecdh": NOT_ON_THE_CURVE, "ecdsa": NOT_ON_THE_CURVE},
            "invalid_device",
        ),
        ({"type": "device_register", "ecdh": "not base64!", "ecdsa": "AAAA"}, "invalid_device"),
        ({"type": "device_register"}, "invalid_device"),
        ({"type": "keys_share", "epoch": 0, "shares": []}, "invalid_keys"),
        ({"type": "keys_share", "epoch": 1, "shares": [{"recipient_device": "x"}]}, "invalid_keys"),
        ({"type": "keys_fetch", "after": -1}, "invalid_keys"),
        ({"type": "key_request", "sender_device": 3, "epoch": 1}, "invalid_keys"),
        ({"type": "send", "client_id": "body-in-e2ee", "body": "Plain text"}, "invalid_e2ee"),
        ({"type": "send", "client_id": "no-sealed-01", "e2ee": {"epoch": 1}}, "invalid_e2ee"),
    ],
)
async def test_bad_e2ee_frames_get_an_error_and_the_socket_stays(world, frame, code):
    river = await enter(world, world.river)
    try:
        await river.drain()
        await river.socket.send(frame)
        refused = await river.wait_for("error")
        assert refused["code"] == code, refused
        assert refused["message"]
        await river.socket.still_usable()
    finally:
        await river.leave()
    assert await run(Message.objects.count) == 0


async def test_shares_of_a_wrong_size_and_an_oversized_message_are_refused(world):
    river = await enter(world, world.river)
    try:
        river.device.new_epoch()
        frame = river.device.share_frame([river.device.id])
        frame["shares"][0]["wrapped"] = b64(b"\x00" * 59)
        await river.socket.send(frame)
        assert (await river.wait_for("error"))["code"] == "invalid_keys"
        await river.start_epoch()
        frame, _ = river.device.seal("x" * 8200, "too-long-01")
        await river.socket.send(frame)
        assert (await river.wait_for("error"))["code"] in {"body_too_long", "frame_too_large"}
        frame, _ = river.device.seal("é" * 2000, "long-enough")  # 4,000 bytes: allowed
        await river.socket.send(frame)
        answer = await river.wait_for("ack", "error")
        assert answer["type"] == "ack", answer
    finally:
        await river.leave()


async def test_e2ee_frames_before_registering_a_device_are_refused(world):
    async with Socket(world.path, await cookie(world.river)) as socket:
        device = E2EEDevice(world.meeting.pk, id="A" * 22)
        device.new_epoch()
        share = {"recipient_device": "A" * 22, "first_index": 0, "wrapped": b64(b"\0" * 60)}
        await socket.send({"type": "keys_share", "epoch": 1, "shares": [share]})
        await expect_error(socket, "device_required")
        await socket.send({"type": "keys_fetch"})
        await expect_error(socket, "device_required")
        await socket.send({"type": "key_request", "sender_device": "A" * 22, "epoch": 1})
        await expect_error(socket, "device_required")
        frame, _ = device.seal("No device yet", "no-device-1")
        await socket.send(frame)
        await expect_error(socket, "device_required")


async def test_a_plain_room_keeps_its_protocol():
    plain = await run(build_world)
    async with Socket(plain.path, await cookie(plain.river)) as socket:
        assert "e2ee" not in socket.hello
        for kind in ("device_register", "keys_share", "keys_fetch", "key_request"):
            await socket.send({"type": kind})
            await expect_error(socket, "unknown_type")
        device = E2EEDevice(plain.meeting.pk, id="A" * 22)
        device.new_epoch()
        frame, _ = device.seal("Sealed in a plain room", "sealed-plain")
        await socket.send(frame)
        await expect_error(socket, "invalid_frame")
        await socket.send_and_ack("A plain message", "plain-00001")


async def test_another_groups_member_is_refused_at_the_door(world):
    async with Socket(world.path, await cookie(world.stranger)) as socket:
        assert socket.connected is False and socket.code == CLOSE_NOT_ALLOWED
        assert socket.refused["reason"] == "not_a_member"


async def test_an_unverified_facilitator_session_is_refused_at_the_door(world):
    await run(totp_device, world.facilitator.user)
    async with Socket(world.path, await cookie(world.facilitator)) as socket:
        assert socket.connected is False and socket.code == CLOSE_NOT_ALLOWED
        assert socket.refused["reason"] == "two_factor_required"
    # Verified, the facilitator's session registers a device like anyone's.
    client = await run(sign_in, world.facilitator.user)
    lantern = await Member.enter(world.path, cookie_of(client), world.meeting.pk)
    assert lantern.device.id
    await lantern.leave()


@pytest.mark.parametrize(
    "kind", ["device_register", "keys_share", "keys_fetch", "key_request", "send", "report"]
)
async def test_a_removed_member_can_use_no_e2ee_frame(world, kind):
    moss = await enter(world, world.moss)
    river = await enter(world, world.river)
    try:
        await river.drain()
        await moss.drain()
        said = await river.say("Before Moss was removed", "before-rm-1")
        await moss.read_until(said["seq"])
        opened = moss.read(said["seq"])
        moss.device.new_epoch()
        frame = {
            "device_register": E2EEDevice(world.meeting.pk).register_frame(),
            "keys_share": moss.device.share_frame([moss.device.id]),
            "keys_fetch": {"type": "keys_fetch"},
            "key_request": {"type": "key_request", "sender_device": river.device.id, "epoch": 1},
            "send": moss.device.seal("Said after removal", "after-rm-1")[0],
            "report": {
                "type": "report",
                "seq": said["seq"],
                "guideline": 1,
                "plaintext": opened["shown"],
                "franking_key": b64(opened["franking_key"]),
            },
        }[kind]
        # Removed, and the notice lost (so the socket is still open): every frame re-checks.
        await run(lambda: Membership.objects.filter(pk=world.moss.pk).update(status=Status.REMOVED))
        await moss.socket.send(frame)
        refused = await moss.wait_for("error")
        assert refused["code"] == "not_a_member"
        await moss.socket.expect_close(CLOSE_MEMBERSHIP_CHANGED)
        await moss.socket.hang_up()
        assert await run(KeyShare.objects.filter(sender_device_id=moss.device.id).count) == 0
        assert await run(Message.objects.filter(author_id=world.moss.pk).count) == 0
        assert await run(Report.objects.count) == 0
    finally:
        await river.leave()
        await moss.leave()


async def test_a_removed_members_device_is_refused_as_a_recipient(world):
    moss = await enter(world, world.moss)
    river = await enter(world, world.river)
    try:
        await river.drain()
        await run(group_services.membership_leave, actor=world.moss.user, group=world.group)
        river.device.new_epoch()
        await river.socket.send(river.device.share_frame([river.device.id, moss.device.id]))
        refused = await river.wait_for("error")
        assert refused["code"] == "invalid_keys" and refused["devices"] == [moss.device.id]
        assert await run(KeyShare.objects.count) == 0
    finally:
        await river.leave()
        await moss.leave()


async def test_a_device_of_another_account_is_not_this_sockets(world):
    """Fern's socket cannot fetch River's keys nor speak as River's device, even knowing
    its id: the device is always the socket's own session's."""
    river = await enter(world, world.river)
    fern = await enter(world, world.fern)
    try:
        await river.drain()
        await river.say("For those here", "for-all-001")
        await fern.drain()
        await fern.socket.send({"type": "keys_fetch"})
        keys = await fern.wait_for("keys")
        assert {s["sender_device"] for s in keys["shares"]} == {river.device.id}
        # Only the shares addressed to Fern's device, never River's self-share.
        assert (
            await run(
                lambda: (
                    KeyShare.objects.filter(pk__in=[s["id"] for s in keys["shares"]])
                    .exclude(recipient_device_id=fern.device.id)
                    .count()
                )
            )
            == 0
        )
        # A share from Fern's socket is always from Fern's device.
        fern.device.new_epoch()
        await fern.share([fern.device.id])
        assert await run(
            lambda: set(KeyShare.objects.filter(epoch=1).values_list("sender_device_id", flat=True))
        ) == {river.device.id, fern.device.id}
    finally:
        await river.leave()
        await fern.leave()


async def test_a_session_of_another_person_gets_its_own_device(world):
    """Two people never share a device, even with the same public keys."""
    river = await enter(world, world.river)
    try:
        same_keys = river.device
        other = await run(make_person, "someone-else-handle")
        place = await run(give_place, world.group, other, "Heron")
        heron = await Member.enter(
            world.path,
            await cookie(place),
            world.meeting.pk,
            device=E2EEDevice(world.meeting.pk, ecdh=same_keys.ecdh, ecdsa=same_keys.ecdsa),
        )
        assert heron.device.id != river.device.id
        await heron.leave()
    finally:
        await river.leave()
