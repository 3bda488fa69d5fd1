"""Mutes and suspensions with an end lift themselves: access checks treat them as ended at
their time (Membership.effective_status), and `manage.py lift_lapsed_moderation` records
it, audits it and tells the member's open rooms."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.events import Action
from groups.models import Membership, Status
from moderation import services
from tests.moderation.conftest import (
    Socket,
    events,
    fresh,
    give_place,
    make_person,
    member_cookie,
    run,
)


def lapse(membership, field):
    """Time passes: the end of the mute or suspension is now in the past."""
    Membership.objects.filter(pk=membership.pk).update(
        **{field: timezone.now() - timedelta(seconds=1)}
    )


def lift() -> str:
    out = StringIO()
    call_command("lift_lapsed_moderation", stdout=out)
    return out.getvalue()


def step(world, membership, kind, minutes=None):
    return services.action_take(
        membership=membership,
        actor=world.facilitator.user,
        kind=kind,
        guideline_number=1,
        minutes=minutes,
    )


def test_the_command_lifts_lapsed_mutes_and_suspensions_and_audits_them(world):
    hazel = give_place(world.group, make_person("hazel-login-handle"), "Hazel")
    moss = give_place(world.group, make_person("moss-login-handle"), "Moss")
    step(world, world.fern, "mute", minutes=10)  # lapses
    step(world, world.river, "suspend", minutes=60)  # lapses
    step(world, hazel, "mute", minutes=60)  # still running
    step(world, moss, "mute")  # until lifted by hand
    lapse(world.fern, "muted_until")
    lapse(world.river, "suspended_until")

    assert lift().strip() == "Lifted 2 lapsed mute(s) or suspension(s)."

    fern, river = fresh(world.fern), fresh(world.river)
    assert (fern.status, fern.muted_until) == (Status.ACTIVE, None)
    assert (river.status, river.suspended_until) == (Status.ACTIVE, None)
    assert fresh(hazel).status == Status.MUTED
    assert fresh(moss).status == Status.MUTED

    lapsed = events(Action.MODERATION_LAPSED)
    assert {(e.subject_id, e.extra["ended"]) for e in lapsed} == {
        (world.fern.user_id, "mute"),
        (world.river.user_id, "suspension"),
    }
    assert all(e.actor_id is None and e.group_id == world.group.pk for e in lapsed)

    # Running it again finds nothing more to do.
    assert lift().strip() == "Lifted 0 lapsed mute(s) or suspension(s)."
    assert len(events(Action.MODERATION_LAPSED)) == 2


def test_a_lapsed_mute_already_counts_as_lifted_before_the_command_runs(world):
    step(world, world.fern, "mute", minutes=10)
    lapse(world.fern, "muted_until")
    fern = fresh(world.fern)
    assert fern.status == Status.MUTED
    assert fern.effective_status() == Status.ACTIVE
    # Unmuting by hand still works and is recorded.
    step(world, fern, "unmute")
    assert fresh(world.fern).status == Status.ACTIVE


def test_a_lapsed_suspension_may_be_followed_by_a_new_mute(world):
    step(world, world.fern, "suspend", minutes=60)
    lapse(world.fern, "suspended_until")
    step(world, world.fern, "mute", minutes=10)
    assert fresh(world.fern).status == Status.MUTED


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_lapsed_mute_lets_the_member_send_and_the_command_tells_the_open_room(world):
    await run(step, world, world.fern, "mute", 10)
    async with Socket(world.path, await member_cookie(world.fern)) as fern:
        assert fern.hello["you"]["can_send"] is False
        await fern.post("Too early.", "fern-early-0001")
        await fern.expect_error("muted")

        await run(lapse, world.fern, "muted_until")
        # The server already lets the member speak...
        await fern.send_and_ack("Is it over?", "fern-after-0001")
        # ...and the housekeeping job tells the page, which enables the composer.
        await run(lift)
        # (Its own message may still be on its way back to it.)
        assert await fern.expect_ignoring("status", ("message",), timeout=1) == {
            "type": "status",
            "can_send": True,
            "pseudonym": "Fern",
            "muted": None,
        }


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_suspended_member_is_back_in_once_the_suspension_lapses(world):
    await run(step, world, world.fern, "suspend", 60)
    cookie = await member_cookie(world.fern)
    async with Socket(world.path, cookie) as early:
        assert early.connected is False
    await run(lapse, world.fern, "suspended_until")
    async with Socket(world.path, cookie) as back:
        assert back.connected is True and back.hello["you"]["can_send"] is True
        await run(lift)
        await back.expect_quiet(0.5)  # nothing changes for an open socket
    assert (await run(fresh, world.fern)).status == Status.ACTIVE
