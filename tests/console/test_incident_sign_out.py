"""An incident's first step: sign out every affected account (or everyone) on every
device, with their open pages and meeting rooms closed at once."""

import pytest

from accounts.models import Session
from audit.events import Action
from console import services
from tests.console.conftest import client_of, events, text_of
from tests.factories import schedule
from tests.sockets import (  # noqa: F401 - fixtures
    CLOSE_SIGNED_OUT,
    Socket,
    _channel_layer_per_test,
    close_worker_connections,
    cookie_of,
    room_path,
    run,
)


def sessions_of(user) -> int:
    return Session.objects.filter(user=user).count()


@pytest.mark.django_db
def test_it_signs_out_the_affected_accounts_on_every_device_and_nobody_else(
    world, incident, admin_client
):
    lantern = world.lantern.user
    lantern_laptop, lantern_phone = client_of(lantern), client_of(lantern)
    river = client_of(world.river.user, verified=False)
    url = f"/audit/incidents/{incident.pk}/sign-out/"
    assert "The affected accounts: fac-lantern." in text_of(admin_client.get(url))

    response = admin_client.post(url, {"scope": "affected", "confirm": "on"})

    assert response["Location"] == f"/audit/incidents/{incident.pk}/"
    assert sessions_of(lantern) == 0
    assert sessions_of(world.river.user) == 1
    assert sessions_of(world.admin) == 1
    for client in (lantern_laptop, lantern_phone):
        assert client.get("/account/")["Location"].startswith("/accounts/login/")
    assert river.get("/account/").status_code == 200
    [step] = events(Action.INCIDENT_SESSIONS_ENDED)
    assert (step.actor_id, step.target_id) == (world.admin.pk, str(incident.pk))
    assert step.extra == {"everyone": False, "people": 1, "sessions": 2}
    [revoked] = events(Action.SESSION_REVOKED)
    assert (revoked.actor_id, revoked.subject_id, revoked.target_id) == (
        world.admin.pk,
        lantern.pk,
        str(incident.pk),
    )
    assert revoked.extra == {"sessions_ended": 2, "by_admin": True}
    timeline = text_of(admin_client.get(f"/audit/incidents/{incident.pk}/"))
    assert "site-keeper signed accounts out for incident" in timeline
    assert "people: 1, sessions: 2" in timeline


@pytest.mark.django_db
def test_everyone_is_signed_out_but_the_admins_own_session(world, incident, admin_client):
    admin_elsewhere = client_of(world.admin)
    others = [client_of(world.lantern.user), client_of(world.river.user, verified=False)]

    admin_client.post(
        f"/audit/incidents/{incident.pk}/sign-out/", {"scope": "everyone", "confirm": "on"}
    )

    assert Session.objects.count() == 1
    assert admin_client.get(f"/audit/incidents/{incident.pk}/").status_code == 200
    for client in (admin_elsewhere, *others):
        assert client.get("/account/")["Location"].startswith("/accounts/login/")
    [step] = events(Action.INCIDENT_SESSIONS_ENDED)
    assert step.extra == {"everyone": True, "people": 3, "sessions": 3}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [{"scope": "affected"}, {"confirm": "on", "scope": "nobody"}],
    ids=["unconfirmed", "bad-scope"],
)
def test_nothing_happens_without_a_confirmation(world, incident, admin_client, data):
    lantern = client_of(world.lantern.user)
    response = admin_client.post(f"/audit/incidents/{incident.pk}/sign-out/", data)
    assert response.status_code == 400
    assert "There is a problem" in text_of(response)
    assert lantern.get("/account/").status_code == 200
    assert events(Action.INCIDENT_SESSIONS_ENDED) == []


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_worker_connections")
@pytest.mark.django_db(transaction=True)
async def test_the_affected_facilitators_open_room_closes_at_once(world):
    lantern = world.lantern
    meeting = await run(schedule, world.group, lantern.user)
    incident = await run(
        services.incident_open,
        actor=world.admin,
        title="Taken over",
        description="Sign-ins from an unknown address.",
        detected_at=meeting.starts_at,
        users=[lantern.user],
        groups=[],
        ip=None,
    )
    cookie = cookie_of(await run(client_of, lantern.user))
    async with Socket(room_path(meeting), cookie) as room:
        assert room.connected
        await run(
            services.incident_sign_out,
            actor=world.admin,
            incident=incident,
            everyone=False,
            ip=None,
        )
        # Told by the channel layer straight after the commit: the frame is already
        # waiting (the one-second budget of the issue is the browser test's).
        frame = await room.expect("signed_out", timeout=1)
        assert frame["reason"] == "signed_out"
        closed = await room.communicator.receive_output(timeout=1)
        assert closed == {"type": "websocket.close", "code": CLOSE_SIGNED_OUT}
