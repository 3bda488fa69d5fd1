"""An incident's step for groups: their meetings on hold. Open rooms close at once with one
plain sentence, no room of theirs opens until the hold is lifted, other groups carry on."""

from datetime import timedelta

import pytest

from audit.events import Action
from console import services
from meetings import services as meeting_services
from meetings.selectors import room_entry
from meetings.services import RoomError
from tests.console.conftest import client_of, events, open_incident, text_of
from tests.factories import schedule
from tests.sockets import (  # noqa: F401 - fixtures
    CLOSE_ROOM_CLOSED,
    Socket,
    _channel_layer_per_test,
    close_worker_connections,
    cookie_of,
    room_path,
    run,
)

PAUSED = "This group's meetings are paused for now while we check something."


@pytest.mark.django_db
def test_held_groups_rooms_stay_shut_until_the_hold_is_lifted(world, incident, admin_client):
    meeting = schedule(world.group, world.lantern.user)
    other_meeting = schedule(world.other_group, world.beacon.user)
    later = schedule(world.group, world.lantern.user, starts_in=timedelta(hours=3))
    river = client_of(world.river.user, verified=False)
    url = f"/audit/incidents/{incident.pk}/hold-meetings/"
    assert "Groups: Evening Grief Circle." in text_of(admin_client.get(url))

    response = admin_client.post(url, {"confirm": "on"})

    assert response["Location"] == f"/audit/incidents/{incident.pk}/"
    assert room_entry(world.river.user, meeting.pk).refusal == "meetings_on_hold"
    assert PAUSED in text_of(river.get(f"/meetings/{meeting.pk}/"))
    # The facilitator can't open a room early either, and the other group carries on.
    with pytest.raises(RoomError) as refused:
        meeting_services.meeting_open(meeting=later, actor=world.lantern.user)
    assert refused.value.code == "meetings_on_hold"
    assert room_entry(world.beacon.user, other_meeting.pk).refusal is None
    [held] = events(Action.INCIDENT_MEETINGS_HELD)
    assert (held.actor_id, held.group_id, held.target_id) == (
        world.admin.pk,
        world.group.pk,
        str(incident.pk),
    )
    # A second hold of the same groups has nothing left to do.
    again = admin_client.post(url, {"confirm": "on"})
    assert again.status_code == 400
    assert "No affected group is left" in text_of(again)

    response = admin_client.post(f"/audit/incidents/{incident.pk}/lift-hold/", {"confirm": "on"})

    assert response.status_code == 302
    assert room_entry(world.river.user, meeting.pk).refusal is None
    assert PAUSED not in text_of(river.get(f"/meetings/{meeting.pk}/"))
    [lifted] = events(Action.INCIDENT_MEETINGS_HOLD_LIFTED)
    assert (lifted.group_id, lifted.target_id) == (world.group.pk, str(incident.pk))


@pytest.mark.django_db
def test_a_socket_that_missed_the_closing_cannot_post_into_a_held_group(world, incident):
    meeting = schedule(world.group, world.lantern.user)
    services.incident_hold_meetings(actor=world.admin, incident=incident, ip=None)
    # As a socket let in before the hold, whose "closed" broadcast was lost, would ask.
    with pytest.raises(RoomError) as refused:
        meeting_services.message_post(
            meeting_id=meeting.pk, membership_id=world.river.pk, client_id="late-0001", body="Hi"
        )
    assert refused.value.code == "meetings_on_hold"
    assert not meeting.messages.exists()


@pytest.mark.django_db
def test_a_group_held_by_two_incidents_waits_for_both(world, incident, admin_client):
    meeting = schedule(world.group, world.lantern.user)
    second = open_incident(world, title="A second problem")
    services.incident_hold_meetings(actor=world.admin, incident=incident, ip=None)
    services.incident_hold_meetings(actor=world.admin, incident=second, ip=None)
    services.incident_lift_hold(actor=world.admin, incident=incident, ip=None)
    assert room_entry(world.river.user, meeting.pk).refusal == "meetings_on_hold"
    services.incident_lift_hold(actor=world.admin, incident=second, ip=None)
    assert room_entry(world.river.user, meeting.pk).refusal is None


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_worker_connections")
@pytest.mark.django_db(transaction=True)
async def test_an_open_room_closes_with_one_plain_sentence(world):
    meeting = await run(schedule, world.group, world.lantern.user)
    incident = await run(
        services.incident_open,
        actor=world.admin,
        title="Leaked backup",
        description="A backup was readable.",
        detected_at=meeting.starts_at,
        users=[],
        groups=[world.group],
        ip=None,
    )
    cookie = cookie_of(await run(client_of, world.river.user, verified=False))
    async with Socket(room_path(meeting), cookie) as room:
        assert room.connected
        await run(services.incident_hold_meetings, actor=world.admin, incident=incident, ip=None)
        frame = await room.expect("closed", timeout=1)
        assert frame == {
            "type": "closed",
            "reason": "meetings_on_hold",
            "message": PAUSED + " Nothing you need to do: we will let you know when they "
            "start again.",
        }
        closed = await room.communicator.receive_output(timeout=1)
        assert closed == {"type": "websocket.close", "code": CLOSE_ROOM_CLOSED}
    # And it can't come back in.
    async with Socket(room_path(meeting), cookie) as again:
        assert not again.connected
        assert again.refused["reason"] == "meetings_on_hold"
        assert again.refused["message"].startswith(PAUSED)
