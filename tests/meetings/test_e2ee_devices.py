"""E2EE devices outside the room: the sessions page lists each session's meeting keys with
their safety codes, ending a session there retires its device and deletes the keys given to
it, the export says encrypted messages are not held readable, and retention purges a wiped
meeting's keys."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import session_public_id
from audit.events import Action
from groups.models import Retention
from meetings import selectors, services
from meetings.e2ee import SealedMessage, ShareIn
from meetings.models import Device, KeyShare, Meeting, Message, RoomDevice, SenderEpoch
from tests import factories
from tests.database import events
from tests.e2ee_client import E2EEDevice, raw_public, unb64
from tests.meetings.e2ee_members import e2ee_world
from tests.sockets import cookie_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return e2ee_world()


def registered(world, membership):
    """A signed-in browser of the member and its device, registered in the world's room."""
    client = factories.signed_in_client(membership.user)
    keys = E2EEDevice(world.meeting.pk)
    device = services.device_register(
        meeting_id=world.meeting.pk,
        membership_id=membership.pk,
        session_key=cookie_of(client),
        channel_name=f"test.{membership.pk}",
        ecdh=raw_public(keys.ecdh),
        ecdsa=raw_public(keys.ecdsa),
    ).device
    return client, device


def share(world, membership, client, recipients):
    services.keys_share(
        meeting_id=world.meeting.pk,
        membership_id=membership.pk,
        session_key=cookie_of(client),
        epoch=1,
        shares=[ShareIn(r.pk, 0, bytes(60)) for r in recipients],
    )


def test_the_sessions_page_lists_each_sessions_meeting_keys(world):
    client, device = registered(world, world.river)
    page = client.get("/account/sessions/").content.decode()
    assert world.group.name in page
    assert device.safety_code in page
    assert len(device.safety_code) == 14 and device.safety_code.count(" ") == 2
    # Another person's page shows nothing of it.
    other = factories.signed_in_client(world.fern.user).get("/account/sessions/")
    assert device.safety_code not in other.content.decode()


def test_ending_a_session_from_the_page_retires_its_device_and_deletes_its_keys(world):
    river_client, river_device = registered(world, world.river)
    fern_client, fern_device = registered(world, world.fern)
    # Fern signs in on a second browser and ends the first session from there.
    share(world, world.river, river_client, [river_device, fern_device])
    assert KeyShare.objects.filter(recipient_device=fern_device).count() == 1
    second = factories.signed_in_client(world.fern.user)
    second.post("/account/sessions/", {"end": session_public_id(cookie_of(fern_client))})

    fern_device.refresh_from_db()
    assert fern_device.session_id is None and not fern_device.is_live
    assert KeyShare.objects.filter(recipient_device=fern_device).count() == 0
    assert KeyShare.objects.filter(recipient_device=river_device).count() == 1
    # Its keys are no longer allowed in the room (the other devices start a new epoch).
    devices = {d["id"]: d for d in selectors.room_devices(world.meeting)}
    assert devices[fern_device.pk]["allowed"] is False
    assert devices[river_device.pk]["allowed"] is True


def test_signing_out_everywhere_retires_every_device(world):
    client, device = registered(world, world.river)
    client.post("/account/sessions/", {"end": "all"})
    device.refresh_from_db()
    assert not device.is_live


def test_the_export_says_encrypted_messages_are_not_held_readable(world):
    client, device = registered(world, world.river)
    reauthenticated = client.post("/accounts/reauthenticate/", {"password": factories.PASSWORD})
    assert reauthenticated.status_code == 302
    page = client.get("/account/export/").content.decode()
    assert "not in it as text" in page
    data = json.loads(client.post("/account/export/").content)
    assert "not held by this site in readable form" in data["about_end_to_end_encrypted_messages"]
    assert [k["safety_code"] for k in data["meeting_device_keys"]]


def test_the_account_page_says_it(world):
    client = factories.signed_in_client(world.river.user)
    assert "not held by this site in readable form" in client.get("/account/").content.decode()


def test_a_wiped_meeting_loses_its_keys_too(world):
    world.group.retention = Retention.MEETING_END
    world.group.save(update_fields=["retention"])
    river_client, river_device = registered(world, world.river)
    _, fern_device = registered(world, world.fern)
    share(world, world.river, river_client, [river_device, fern_device])
    Meeting.objects.filter(pk=world.meeting.pk).update(
        ends_at=timezone.now() - timedelta(minutes=1)
    )

    services.messages_purge_expired()

    assert KeyShare.objects.count() == 0
    assert SenderEpoch.objects.count() == 0
    assert RoomDevice.objects.count() == 0
    # Live devices stay (their sessions go on); a retired one nothing names is gone.
    assert set(Device.objects.values_list("pk", flat=True)) == {river_device.pk, fern_device.pk}
    Device.objects.filter(pk=fern_device.pk).update(retired_at=timezone.now())
    services.messages_purge_expired()
    assert set(Device.objects.values_list("pk", flat=True)) == {river_device.pk}


def test_a_deleted_accounts_sealed_messages_keep_no_ciphertext(world):
    # Fern sends through the service as her socket does, with her device's signing key.
    sender = E2EEDevice(world.meeting.pk)
    client2 = factories.signed_in_client(world.fern.user)
    registered_fern = services.device_register(
        meeting_id=world.meeting.pk,
        membership_id=world.fern.pk,
        session_key=cookie_of(client2),
        channel_name="test.fern",
        ecdh=raw_public(sender.ecdh),
        ecdsa=raw_public(sender.ecdsa),
    ).device
    sender.id = registered_fern.pk
    sender.new_epoch()
    share(world, world.fern, client2, [registered_fern])
    frame, _ = sender.seal("Something only the room may read", "sealed-0001")
    sealed = frame["e2ee"]
    services.message_post(
        meeting_id=world.meeting.pk,
        membership_id=world.fern.pk,
        client_id="sealed-0001",
        sealed=SealedMessage(
            sender_device=sender.id,
            epoch=sealed["epoch"],
            index=sealed["index"],
            **{k: unb64(sealed[k]) for k in ("iv", "ciphertext", "signature", "commitment")},
        ),
        session_key=cookie_of(client2),
    )

    services.messages_remove_for_user(user=world.fern.user)

    message = Message.objects.get(client_id="sealed-0001")
    assert (message.ciphertext, message.signature, message.commitment) == (None, None, None)
    event = services.message_event(message)
    assert event["body"] == "[removed]" and event["e2ee"] is None


def test_replacing_a_device_is_audited(world):
    client, device = registered(world, world.river)
    keys = E2EEDevice(world.meeting.pk)
    replacement = services.device_register(
        meeting_id=world.meeting.pk,
        membership_id=world.river.pk,
        session_key=cookie_of(client),
        channel_name=f"test.{world.river.pk}",
        ecdh=raw_public(keys.ecdh),
        ecdsa=raw_public(keys.ecdsa),
    ).device
    assert replacement.pk != device.pk
    retired = events(Action.E2EE_DEVICE_RETIRED)
    assert [(e.target_id, e.actor_id, e.subject_id) for e in retired] == [
        (str(device.pk), world.river.user_id, world.river.user_id)
    ]
    assert retired[0].group_id == world.group.pk and retired[0].extra == {"reason": "replaced"}
    # The same keys again are the same device: nothing retired, nothing more audited.
    services.device_register(
        meeting_id=world.meeting.pk,
        membership_id=world.river.pk,
        session_key=cookie_of(client),
        channel_name=f"test.{world.river.pk}",
        ecdh=raw_public(keys.ecdh),
        ecdsa=raw_public(keys.ecdsa),
    )
    assert len(events(Action.E2EE_DEVICE_RETIRED)) == 1


def test_a_meeting_taking_its_encryption_setting_is_audited_once(world):
    assert Meeting.objects.get(pk=world.meeting.pk).e2ee is None
    for _ in range(2):  # two first sockets
        assert services.meeting_fix_e2ee(meeting=Meeting.objects.get(pk=world.meeting.pk))
    fixed = events(Action.E2EE_MEETING_FIXED)
    assert [(e.target_id, e.actor_id, e.extra) for e in fixed] == [
        (str(world.meeting.pk), None, {"e2ee": True})
    ]
    # Opened by a facilitator: the facilitator is the actor; a plain group's meeting says so.
    world.group.e2ee_meetings = False
    world.group.save(update_fields=["e2ee_meetings"])
    later = factories.schedule(world.group, world.facilitator.user)
    services.meeting_open(meeting=later, actor=world.facilitator.user)
    fixed = events(Action.E2EE_MEETING_FIXED)
    assert [(e.target_id, e.actor_id, e.extra) for e in fixed[1:]] == [
        (str(later.pk), world.facilitator.user_id, {"e2ee": False})
    ]
