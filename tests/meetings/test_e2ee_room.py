"""End-to-end encrypted rooms (issue 19), driven by the Python reference client
(tests/e2ee_client.py): every present member reads every message, no plaintext reaches the
server, a late joiner cannot read what came before, a member who left gets no key of the
next epoch, a reconnect fetches its keys again, and the server's own checks (signature,
epoch coverage) hold."""

import base64

import pytest

from accounts import services as account_services
from audit.events import Action
from groups import services as group_services
from meetings.models import Device, KeyShare, Meeting, Message, RoomDevice
from tests.e2ee_client import E2EEDevice, b64, raw_public
from tests.meetings.conftest import (
    cookie,
    dump_every_table,
    events,
    room_path,
    run,
    schedule,
)
from tests.meetings.e2ee_members import Member, e2ee_world, enter
from tests.meetings.test_room_privacy import SECRETS, redis_dump

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]


@pytest.fixture
def world():
    return e2ee_world()


def shares_of(device_id: str) -> list[KeyShare]:
    return list(KeyShare.objects.filter(sender_device_id=device_id).order_by("pk"))


async def test_three_members_read_every_message_and_no_plaintext_reaches_the_server(world):
    river = await enter(world, world.river)
    fern = await enter(world, world.fern)
    moss = await enter(world, world.moss)
    try:
        for member in (river, fern, moss):
            await member.drain()
        sent = []
        for member, secret, client_id in zip(
            (river, fern, moss), SECRETS, ("river-0001", "fern-00001", "moss-00001"), strict=True
        ):
            sent.append(await member.say(secret, client_id))
        last = sent[-1]["seq"]
        for member in (river, fern, moss):
            await member.read_until(last)
            await member.drain()
            shown = [member.read(ack["seq"])["shown"] for ack in sent]
            assert shown == SECRETS
        # Each message is shown under its sender's pseudonym (its signature verified).
        assert [fern.read(ack["seq"])["author"] for ack in sent] == ["River", "Fern", "Moss"]
        in_redis = redis_dump()
    finally:
        for member in (river, fern, moss):
            await member.leave()

    stored = await run(lambda: list(Message.objects.order_by("seq")))
    assert [m.body for m in stored] == [None, None, None]
    assert all(m.ciphertext and m.signature and m.commitment for m in stored)
    dump = await run(dump_every_table)
    assert "meetings_keyshare:" in dump
    frames = river.socket.frames + fern.socket.frames + moss.socket.frames
    for secret in SECRETS:
        # (The dump has the audit log's rows too.)
        for place in (dump, in_redis, str(frames)):
            assert secret not in place
            assert secret.encode().hex() not in place
            assert base64.b64encode(secret.encode()).decode() not in place


async def test_a_late_joiner_cannot_read_what_came_before_and_may_not_ask_for_it(world):
    river = await enter(world, world.river)
    fern = await enter(world, world.fern)
    try:
        await river.drain()
        before = await river.say("Said before Moss came", "early-0001")
        await fern.read_until(before["seq"])
        moss = await enter(world, world.moss)
        try:
            assert moss.socket.hello["e2ee"]["device"] is None
            # The room told Moss's device where its reading starts.
            joined_after = await run(
                lambda: RoomDevice.objects.get(device_id=moss.device.id).joined_after_seq
            )
            assert joined_after == before["seq"]
            after = await river.say("Said once Moss was here", "later-0001")
            await moss.read_until(after["seq"])
            assert moss.read(after["seq"])["shown"] == "Said once Moss was here"
            # Handed the earlier ciphertext (history), Moss's device has no key for it.
            await moss.socket.send({"type": "history", "limit": 50})
            history = await moss.wait_for("history")
            earlier = history["messages"][0]
            assert earlier["seq"] == before["seq"] and earlier["body"] is None
            moss.messages[earlier["seq"]] = earlier
            assert moss.read(earlier["seq"]) == {"shown": None, "why": "no_key"}
            # Every key River's device shared with Moss's starts after that message.
            to_moss = await run(
                lambda: [
                    s.first_index
                    for s in shares_of(river.device.id)
                    if s.recipient_device_id == moss.device.id
                ]
            )
            assert to_moss and min(to_moss) >= 1
            # And it may not ask River's device for that epoch from the start.
            await moss.socket.send(
                {"type": "key_request", "sender_device": river.device.id, "epoch": 1}
            )
            refused = await moss.wait_for("error")
            assert refused["code"] == "key_request_refused"
            await river.drain()
            assert not river.socket.of_type("key_request")
        finally:
            await moss.leave()
    finally:
        await river.leave()
        await fern.leave()


async def test_a_present_device_may_ask_the_sender_again(world):
    river = await enter(world, world.river)
    fern = await enter(world, world.fern)
    try:
        await river.drain()
        await river.say("Hello", "hello-0001")
        await fern.socket.send(
            {"type": "key_request", "sender_device": river.device.id, "epoch": 1}
        )
        asked = await river.wait_for("key_request")
        assert asked == {"type": "key_request", "requester_device": fern.device.id, "epoch": 1}
        await river.socket.send(river.device.share_frame([fern.device.id], from_start_of=1))
        await river.wait_for("keys_shared")
        keys = await fern.wait_for("keys")
        assert [s["first_index"] for s in keys["shares"]] == [0]
    finally:
        await river.leave()
        await fern.leave()


async def test_a_sender_that_moved_on_answers_a_key_request_for_its_earlier_epoch(world):
    river = await enter(world, world.river)
    fern = await enter(world, world.fern)
    try:
        await river.drain()
        await river.say("Hello", "hello-0002")
        # River's device moves on to epoch 2 (as after a reconnect); Fern asks for epoch 1.
        await river.start_epoch()
        await fern.socket.send(
            {"type": "key_request", "sender_device": river.device.id, "epoch": 1}
        )
        await river.wait_for("key_request")
        await river.socket.send(river.device.share_frame([fern.device.id], from_start_of=1))
        assert (await river.wait_for("keys_shared", "error"))["type"] == "keys_shared"
        keys = await fern.wait_for("keys")
        assert [(s["epoch"], s["first_index"]) for s in keys["shares"]] == [(1, 0)]
        # A device that came after epoch 1 began gets no share of it, whoever sends one.
        moss = await enter(world, world.moss)
        try:
            await river.drain()
            await river.socket.send(river.device.share_frame([moss.device.id], from_start_of=1))
            refused = await river.wait_for("keys_shared", "error")
            assert refused["code"] == "came_after_epoch"
            assert refused["devices"] == [moss.device.id]
            stored = await run(
                lambda: KeyShare.objects.filter(recipient_device_id=moss.device.id, epoch=1).count()
            )
            assert stored == 0
        finally:
            await moss.leave()
    finally:
        await river.leave()
        await fern.leave()


async def test_a_member_who_leaves_gets_no_key_of_the_next_epoch(world):
    river = await enter(world, world.river)
    fern = await enter(world, world.fern)
    moss = await enter(world, world.moss)
    try:
        await river.drain()
        first = await river.say("Before Moss left", "before-001")
        await moss.read_until(first["seq"])
        assert moss.read(first["seq"])["shown"] == "Before Moss left"
        await run(group_services.membership_leave, actor=world.moss.user, group=world.group)
        await moss.wait_for("closed")
        # Everyone left in the room is told Moss's device may no longer hold keys.
        await river.wait_for("devices")
        await river.drain()
        assert river.device.devices[moss.device.id]["allowed"] is False
        # River's epoch 1 reached Moss: the server refuses it now, River starts epoch 2.
        later = await river.say("After Moss left", "after-0001")
        assert [e["code"] for e in river.errors] == ["epoch_stale"]
        assert river.device.sending.epoch == 2
        new_epoch = await run(
            lambda: {s.recipient_device_id for s in shares_of(river.device.id) if s.epoch == 2}
        )
        assert new_epoch == {river.device.id, fern.device.id}
        await fern.read_until(later["seq"])
        assert fern.read(later["seq"])["shown"] == "After Moss left"
        # Given the later ciphertext, Moss's device cannot open it.
        moss.messages[later["seq"]] = fern.messages[later["seq"]]
        assert moss.read(later["seq"]) == {"shown": None, "why": "no_key"}
    finally:
        for member in (river, fern, moss):
            await member.leave()


async def test_sending_before_sharing_with_everyone_present_is_refused_with_who_is_missing(world):
    river = await enter(world, world.river)
    fern = await enter(world, world.fern)
    try:
        await river.drain()
        river.device.new_epoch()
        await river.share([river.device.id])  # only itself
        frame, _ = river.device.seal("Too early", "early-0002")
        await river.socket.send(frame)
        refused = await river.wait_for("error")
        assert refused["code"] == "keys_needed"
        assert refused["devices"] == [fern.device.id]
        assert refused["client_id"] == "early-0002"
        # An epoch that is not the device's current one is stale.
        river.device.new_epoch()
        river.device.sending.epoch = 7
        frame, _ = river.device.seal("Unknown epoch", "early-0003")
        await river.socket.send(frame)
        assert (await river.wait_for("error"))["code"] == "epoch_stale"
        assert await run(Message.objects.count) == 0
    finally:
        await river.leave()
        await fern.leave()


async def test_a_reconnect_fetches_the_keys_again(world):
    river_cookie = await cookie(world.river)
    river = await Member.enter(world.path, river_cookie, world.meeting.pk)
    fern = await enter(world, world.fern)
    try:
        await fern.drain()
        said = await fern.say("While you were here", "fern-00002")
        await river.read_until(said["seq"])
        device = river.device
        await river.leave()
        # A reload: the same session, the same device (IndexedDB), nothing else kept.
        device.received.clear()
        river = await Member.enter(world.path, river_cookie, world.meeting.pk, device=device)
        assert river.socket.hello["e2ee"]["device"]["id"] == device.id
        assert river.socket.hello["e2ee"]["joined_after_seq"] == 0
        await river.socket.send({"type": "keys_fetch"})
        keys = await river.wait_for("keys")
        assert keys["more"] is False and keys["cursor"] is None
        await river.socket.send({"type": "resume", "after_seq": 0})
        await river.read_until(said["seq"])
        assert river.read(said["seq"])["shown"] == "While you were here"
    finally:
        await river.leave()
        await fern.leave()


async def test_hello_tells_a_device_its_current_epoch(world):
    """After a reload the page knows nothing of its sending chain: hello says at which epoch
    the device is in this meeting, so its next one is new (an old number would be taken as
    a share of that earlier epoch)."""
    river_cookie = await cookie(world.river)
    river = await Member.enter(world.path, river_cookie, world.meeting.pk)
    try:
        assert river.socket.hello["e2ee"]["epoch"] is None
        await river.start_epoch()
        await river.start_epoch()
        keys = river.device
        await river.leave()
        # A reload: the same keys (IndexedDB), no chain in memory.
        reloaded = E2EEDevice(world.meeting.pk, ecdh=keys.ecdh, ecdsa=keys.ecdsa, id=keys.id)
        river = await Member.enter(world.path, river_cookie, world.meeting.pk, device=reloaded)
        assert river.socket.hello["e2ee"]["epoch"] == 2
        await river.start_epoch()
        said = await river.say("After a reload", "reloaded-01")
        assert (said["type"], reloaded.sending.epoch) == ("ack", 3)
    finally:
        await river.leave()


async def test_a_bad_signature_is_refused_and_nothing_is_stored(world):
    river = await enter(world, world.river)
    try:
        await river.start_epoch()
        frame, _ = river.device.seal("Forged", "forged-001")
        signature = bytearray(base64.b64decode(frame["e2ee"]["signature"]))
        signature[5] ^= 1
        frame["e2ee"]["signature"] = base64.b64encode(bytes(signature)).decode()
        await river.socket.send(frame)
        assert (await river.wait_for("error"))["code"] == "invalid_e2ee"
        # Signed by another key than the device's (a stranger's key, the right shape).
        impostor = E2EEDevice(world.meeting.pk, id=river.device.id, sending=river.device.sending)
        frame, _ = impostor.seal("Forged again", "forged-002")
        await river.socket.send(frame)
        assert (await river.wait_for("error"))["code"] == "invalid_e2ee"
        assert await run(Message.objects.count) == 0
    finally:
        await river.leave()


async def test_nobody_sends_under_another_device(world):
    river = await enter(world, world.river)
    fern = await enter(world, world.fern)
    try:
        await river.start_epoch()
        fern_id = fern.device.id
        frame, _ = river.device.seal("In Fern's name", "spoof-0001")
        frame["e2ee"]["sender_device"] = fern_id
        await river.socket.send(frame)
        assert (await river.wait_for("error"))["code"] == "invalid_device"
        assert await run(Message.objects.count) == 0
    finally:
        await river.leave()
        await fern.leave()


async def test_keys_go_only_to_devices_allowed_in_this_room(world):
    other_meeting = await run(schedule, world.other_group, world.admin)
    await run(Meeting.objects.filter(pk=other_meeting.pk).update, e2ee=True)
    stranger = await Member.enter(
        room_path(other_meeting), await cookie(world.stranger), other_meeting.pk
    )
    river = await enter(world, world.river)
    try:
        river.device.new_epoch()
        river.device.devices[stranger.device.id] = {"ecdh": b64(raw_public(stranger.device.ecdh))}
        await river.socket.send(river.device.share_frame([stranger.device.id]))
        refused = await river.wait_for("error")
        assert refused["code"] == "invalid_keys"
        assert refused["devices"] == [stranger.device.id]
        # Nor may River ask the stranger's device for anything.
        await river.socket.send(
            {"type": "key_request", "sender_device": stranger.device.id, "epoch": 1}
        )
        assert (await river.wait_for("error"))["code"] == "key_request_refused"
        assert await run(KeyShare.objects.count) == 0
    finally:
        await river.leave()
        await stranger.leave()


async def test_ending_a_session_retires_its_device_and_deletes_its_keys(world):
    river = await enter(world, world.river)
    fern = await enter(world, world.fern)
    try:
        await river.drain()
        await river.say("For Fern", "for-fern-01")
        await fern.drain()
        fern_device = fern.device.id
        assert await run(KeyShare.objects.filter(recipient_device_id=fern_device).count) > 0
        fern_user = world.fern.user

        def end_fern_sessions():
            from accounts.models import Session

            account_services._end_sessions(
                Session.objects.filter(user=fern_user), reason="signed_out", user=fern_user
            )

        await run(end_fern_sessions)
        await fern.wait_for("signed_out")
        await fern.socket.hang_up()
        device = await run(Device.objects.get, pk=fern_device)
        assert device.session_id is None and not device.is_live
        assert await run(KeyShare.objects.filter(recipient_device_id=fern_device).count) == 0
        await river.wait_for("devices")
        await river.drain()
        assert river.device.devices[fern_device]["allowed"] is False
    finally:
        await river.leave()
        await fern.leave()


async def test_a_new_device_is_a_security_notice_for_the_member(world):
    river = await enter(world, world.river)
    try:
        notices = await run(events, Action.E2EE_DEVICE_REGISTERED)
        assert len(notices) == 1
        assert notices[0].subject_id == world.river.user_id
        assert notices[0].target_id == river.device.id

        def account_activity():
            from privacy.selectors import who_has_seen_my_data

            return [e.text for e in who_has_seen_my_data(world.river.user)["account_activity"]]

        assert any(
            "One of your browsers was set up to read the encrypted meetings" in text
            for text in await run(account_activity)
        )
        # The same keys again (a reconnect) are no new device.
        await river.socket.send(river.device.register_frame())
        again = await river.wait_for("device_registered")
        assert again["device"]["id"] == river.device.id
        assert len(await run(events, Action.E2EE_DEVICE_REGISTERED)) == 1
    finally:
        await river.leave()


async def test_a_muted_member_keeps_reading_and_a_hidden_message_goes_out_without_ciphertext(world):
    from moderation.services import action_take, message_hide

    river = await enter(world, world.river)
    moss = await enter(world, world.moss)
    try:
        await river.drain()
        await run(
            action_take,
            membership=world.moss,
            actor=world.facilitator.user,
            kind="mute",
            guideline_number=1,
            minutes=30,
        )
        await moss.wait_for("status")
        said = await river.say("Still for everyone here", "muted-0001")
        assert river.errors == []  # a mute changes no key: no new epoch was needed
        await moss.read_until(said["seq"])
        assert moss.read(said["seq"])["shown"] == "Still for everyone here"

        message = await run(Message.objects.select_related("meeting").get, seq=said["seq"])
        await run(message_hide, message=message, actor=world.facilitator.user, guideline_number=1)
        changed = await moss.wait_for("message_changed")
        assert changed == {
            "type": "message_changed",
            "seq": said["seq"],
            "hidden": True,
            "body": None,
        }
        await moss.socket.send({"type": "history", "limit": 10})
        history = await moss.wait_for("history")
        assert history["messages"][-1]["e2ee"] is None
    finally:
        await river.leave()
        await moss.leave()
