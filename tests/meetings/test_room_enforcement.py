"""Live enforcement: what happens to an open room socket when the person's standing changes
(muted, suspended, removed, left, a new agreement, signed out) or the room closes. Each
reaches the socket within a second (a receive timeout, not a benchmark)."""

import asyncio
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from groups import services as group_services
from groups.models import Status
from meetings import services as meeting_services
from meetings.models import Message, Presence
from tests.meetings.conftest import (
    CLOSE_MEMBERSHIP_CHANGED,
    CLOSE_NOT_ALLOWED,
    CLOSE_ROOM_CLOSED,
    CLOSE_SIGNED_OUT,
    Socket,
    cookie,
    give_place,
    room_path,
    run,
    schedule,
    set_status,
)

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]


def message_count(meeting):
    return Message.objects.filter(meeting=meeting).count()


# --- muting -----------------------------------------------------------------------------------


async def test_muting_mid_session_stops_sending_but_not_reading(world):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        assert river.hello["you"]["can_send"] is True

        await run(set_status, world.river, Status.MUTED)
        status = await river.expect("status", timeout=1)
        assert status.pop("muted")["until"] is None  # muted until lifted (no step recorded)
        assert status == {"type": "status", "can_send": False, "pseudonym": "River"}

        await river.post("Can anyone hear me?", "muted-try-01")
        error = await river.expect_error("muted")
        assert error["client_id"] == "muted-try-01"

        # Still in the room, still reading.
        await fern.send_and_ack("We can't, sorry.", "fern-0001")
        assert (await river.expect("message"))["body"] == "We can't, sorry."
        await river.still_usable()

        await run(set_status, world.river, Status.ACTIVE)
        assert await river.expect("status", timeout=1) == {
            "type": "status",
            "can_send": True,
            "pseudonym": "River",
            "muted": None,
        }
        assert (await river.send_and_ack("Back again.", "unmuted-01"))["seq"] == 2

    assert await run(message_count, world.meeting) == 2


async def test_the_service_refuses_a_muted_member_even_if_the_notice_was_lost(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        # The channel layer is at-most-once: the socket never heard about the mute.
        await run(set_status, world.river, Status.MUTED, notify=False)
        await river.post("Sneaking one in.", "lost-notice-01")
        await river.expect_error("muted")
        await river.still_usable()
    assert await run(message_count, world.meeting) == 0


async def test_a_new_pseudonym_reaches_the_open_socket(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        await run(
            lambda: group_services.pseudonym_change(
                actor=world.river.user, group=world.river.group, pseudonym="Brook"
            )
        )
        assert await river.expect("status", timeout=1) == {
            "type": "status",
            "can_send": True,
            "pseudonym": "Brook",
            "muted": None,
        }
        await river.send_and_ack("New name, same me.", "renamed-0001")
        assert river.of_type("message")[-1]["author"] == "Brook"


async def test_a_new_pseudonym_reaches_everyone_else_in_the_room(world):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        before = await fern.expect_presence(sorted(["Fern", "River"], key=str.casefold))
        await run(
            lambda: group_services.pseudonym_change(
                actor=world.river.user, group=world.river.group, pseudonym="Brook"
            )
        )

        after = await fern.expect_presence(sorted(["Brook", "Fern"], key=str.casefold))
        assert before != after
        await river.expect("status")


# --- closing sockets --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        pytest.param(Status.SUSPENDED, "suspended", id="suspended"),
        pytest.param(Status.REMOVED, "not_a_member", id="removed"),
    ],
)
async def test_suspension_or_removal_closes_the_socket_within_a_second(world, status, reason):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        await run(set_status, world.river, status)
        closed = await river.expect_closed(reason, CLOSE_MEMBERSHIP_CHANGED, timeout=1)
        assert closed["message"]
        await river.hang_up()
        # Everyone else stays, and sees River gone.
        await fern.expect_presence(["Fern"])
        await fern.still_usable()

    # And River cannot come back in.
    async with Socket(world.path, await cookie(world.river)) as again:
        assert (again.connected, again.code) == (False, CLOSE_NOT_ALLOWED)


async def test_leaving_the_group_closes_the_socket_within_a_second(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        await run(
            lambda: group_services.membership_leave(actor=world.river.user, group=world.river.group)
        )
        await river.expect_closed("not_a_member", CLOSE_MEMBERSHIP_CHANGED, timeout=1)
    assert await run(lambda: Presence.objects.filter(membership=world.river).count()) == 0


async def test_the_service_refuses_a_suspended_member_even_if_the_notice_was_lost(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        await run(set_status, world.river, Status.SUSPENDED, notify=False)
        await river.post("Still talking?", "lost-notice-02")
        await river.expect_error("suspended")
        await river.expect_close(CLOSE_MEMBERSHIP_CHANGED)
    assert await run(message_count, world.meeting) == 0


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(Status.REMOVED, "not_a_member", id="removed"),
        pytest.param(Status.SUSPENDED, "suspended", id="suspended"),
        pytest.param(Status.LEFT, "not_a_member", id="left"),
    ],
)
async def test_resume_rechecks_standing_even_if_the_notice_was_lost(world, status, code):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        await fern.send_and_ack("Something said after River was removed.", "fern-0001")
        await river.expect("message")
        await run(set_status, world.river, status, notify=False)
        # The history must not be one request away for someone no longer in the group.
        await river.send({"type": "resume", "after_seq": 0})
        await river.expect_error(code)
        await river.expect_close(CLOSE_MEMBERSHIP_CHANGED)
    assert [f["seq"] for f in river.of_type("message")] == [1]  # the live one, not a replay
    assert river.of_type("resumed") == []


async def test_a_new_agreement_closes_members_sockets_until_they_sign_again(world):
    other_meeting = await run(schedule, world.other_group, world.admin)
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
        Socket(room_path(other_meeting), await cookie(world.stranger)) as stranger,
    ):
        await run(
            group_services.agreement_publish,
            group=world.group,
            actor=world.admin,
            text="Version two: no screenshots, ever.",
        )
        for socket in (river, fern):
            frame = await socket.expect_closed(
                "agreement_required", CLOSE_MEMBERSHIP_CHANGED, timeout=1
            )
            assert frame["message"]
        # Another group's agreement is not this group's business.
        await stranger.expect_quiet()
        await stranger.still_usable()

    async with Socket(world.path, await cookie(world.river)) as river:
        assert (river.connected, river.code) == (False, CLOSE_NOT_ALLOWED)
    await run(
        lambda: group_services.agreement_sign(
            actor=world.river.user,
            group=world.river.group,
            typed_name="River",
            guidelines_acknowledged=True,
        )
    )
    async with Socket(world.path, await cookie(world.river)) as river:
        assert river.connected is True


async def test_a_change_in_another_group_leaves_this_room_alone(world):
    # River is also in the other group; being muted there changes nothing here.
    elsewhere = await run(give_place, world.other_group, world.river.user, "Drifter")
    async with Socket(world.path, await cookie(world.river)) as river:
        await run(set_status, elsewhere, Status.MUTED)
        await river.expect_quiet(0.5)
        assert (await river.send_and_ack("Fine here.", "elsewhere-0001"))["seq"] == 1


async def test_signing_out_everywhere_closes_the_room_socket(world):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        await run(account_services.sessions_end, user=world.river.user, keep_current=False)
        frame = await river.expect("signed_out", timeout=1)
        assert frame["type"] == "signed_out"
        await river.expect_close(CLOSE_SIGNED_OUT)
        await river.hang_up()
        await fern.expect_presence(["Fern"])
        await fern.still_usable()


async def test_logging_out_in_another_tab_closes_the_room_socket(world):
    river_cookie = await cookie(world.river)
    async with Socket(world.path, river_cookie) as river:

        def log_out():
            other_tab = Client()
            other_tab.cookies[settings.SESSION_COOKIE_NAME] = river_cookie
            return other_tab.post(reverse("account_logout"))

        assert (await run(log_out)).status_code == 302
        await river.expect("signed_out", timeout=1)
        await river.expect_close(CLOSE_SIGNED_OUT)
    async with Socket(world.path, river_cookie) as again:
        assert again.connected is False


async def test_closing_the_meeting_closes_everyones_socket(world):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        await run(
            meeting_services.meeting_close, meeting=world.meeting, actor=world.facilitator.user
        )
        for socket in (river, fern):
            await socket.expect_closed("meeting_closed", CLOSE_ROOM_CLOSED, timeout=1)
    async with Socket(world.path, await cookie(world.river)) as again:
        assert (again.connected, again.code) == (False, CLOSE_NOT_ALLOWED)


async def test_the_room_closes_itself_at_the_end_time(world):
    ending = await run(
        schedule,
        world.group,
        world.facilitator.user,
        starts_in=timedelta(minutes=-30),
        lasts=timedelta(minutes=30, seconds=1),
    )
    async with Socket(room_path(ending), await cookie(world.river)) as river:
        await river.expect_closed("meeting_ended", CLOSE_ROOM_CLOSED, timeout=2.5)


async def test_an_idle_room_socket_survives(world):
    """Nothing crosses the channel layer for longer than channels_redis's 5 s BRPOP: with
    redis-py 8's default 5 s read timeout this used to kill the socket (now configured off
    in supportgroups/settings.py)."""
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.expect_presence(["River"])
        await asyncio.sleep(6.5)
        await river.still_usable()
