"""Who may open a meeting room's socket, what they get once in, and who is refused before
the socket is accepted (close code 4003)."""

import time
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.sessions import LAST_SEEN_KEY, STARTED_KEY
from groups import services as group_services
from groups.models import Status
from meetings import services as meeting_services
from meetings.models import Attendance, Meeting, Presence
from supportgroups.asgi import application
from tests.meetings.conftest import (
    CLOSE_NOT_ALLOWED,
    Socket,
    cookie,
    cookie_of,
    give_place,
    make_person,
    room_path,
    run,
    schedule,
    session_cookie,
    set_status,
    sign_in,
    sign_in_verified,
    totp_device,
)

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]


async def assert_refused(path, cookie_value, **kwargs):
    async with Socket(path, cookie_value, **kwargs) as socket:
        assert socket.connected is False
        assert socket.code == CLOSE_NOT_ALLOWED


# --- the happy path ---------------------------------------------------------------------------


async def test_two_members_talk_and_see_who_is_here(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        assert river.connected is True
        hello = river.hello
        assert hello["you"]["pseudonym"] == "River"
        assert hello["you"]["can_send"] is True
        assert hello["meeting"] == {
            "id": world.meeting.pk,
            "title": "Tuesday meeting",
            "ends_at": world.meeting.ends_at.isoformat(),
        }
        assert hello["last_seq"] == 0
        assert hello["limits"] == {"max_length": 2000, "heartbeat_seconds": 25}
        await river.expect_presence(["River"])

        async with Socket(world.path, await cookie(world.fern)) as fern:
            assert fern.connected is True
            await fern.expect_presence(["Fern", "River"])
            await river.expect_presence(["Fern", "River"])

            await river.post("It has been a hard week.", "river-msg-0001")
            own, ack = await river.expect_both("message", "ack")
            theirs = await fern.expect("message")

            assert ack == {
                "type": "ack",
                "client_id": "river-msg-0001",
                "seq": 1,
                "duplicate": False,
            }
            assert own["seq"] == theirs["seq"] == 1
            assert own["author"] == theirs["author"] == "River"
            assert own["body"] == theirs["body"] == "It has been a hard week."
            assert own["mine"] is True and theirs["mine"] is False
            assert own["client_id"] == "river-msg-0001"
            assert theirs["client_id"] is None
            assert own["hidden"] is False and own["sent_at"]

            await fern.post("Thank you for sharing.", "fern-msg-0001")
            own_reply, reply_ack = await fern.expect_both("message", "ack")
            assert own_reply["seq"] == reply_ack["seq"] == 2
            reply = await river.expect("message")
            assert (reply["seq"], reply["author"], reply["mine"]) == (2, "Fern", False)

        # Fern left: River is told who is still here.
        await river.expect_presence(["River"])

    attended = await run(
        lambda: sorted(
            Attendance.objects.filter(meeting=world.meeting).values_list(
                "membership__pseudonym", flat=True
            )
        )
    )
    assert attended == ["Fern", "River"]
    assert await run(lambda: Presence.objects.count()) == 0
    assert await run(lambda: Meeting.objects.get(pk=world.meeting.pk).last_seq) == 2


async def test_a_late_joiner_learns_the_last_seq_in_hello(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send_and_ack("First.", "river-msg-0001")
        await river.send_and_ack("Second.", "river-msg-0002")
    async with Socket(world.path, await cookie(world.fern)) as fern:
        assert fern.hello["last_seq"] == 2


async def test_a_second_tab_of_the_same_member_is_listed_once(world):
    river_cookie = await cookie(world.river)
    async with Socket(world.path, river_cookie) as first, Socket(world.path, river_cookie):
        await first.expect_presence(["River"])
        attendance = await run(lambda: Attendance.objects.filter(meeting=world.meeting).count())
        assert attendance == 1
    assert await run(lambda: Presence.objects.count()) == 0


async def test_a_muted_member_may_join_to_read(world):
    await run(set_status, world.river, Status.MUTED, notify=False)
    async with Socket(world.path, await cookie(world.river)) as river:
        assert river.connected is True
        assert river.hello["you"]["can_send"] is False


async def test_a_facilitator_with_a_two_factor_verified_session_is_accepted(world):
    client = await run(sign_in_verified, world.facilitator.user)
    cookie_value = cookie_of(client)
    async with Socket(world.path, cookie_value) as facilitator:
        assert facilitator.connected is True
        assert facilitator.hello["you"]["pseudonym"] == "Lantern"
        assert facilitator.hello["you"]["can_send"] is True


async def test_the_room_opens_a_little_before_the_start(world, settings):
    settings.MEETING_OPEN_LEAD_MINUTES = 10
    soon = await run(schedule, world.group, world.facilitator.user, starts_in=timedelta(minutes=5))
    async with Socket(room_path(soon), await cookie(world.river)) as river:
        assert river.connected is True


async def test_a_room_opened_early_by_a_facilitator_is_open(world):
    later = await run(schedule, world.group, world.facilitator.user, starts_in=timedelta(hours=3))
    await run(meeting_services.meeting_open, meeting=later, actor=world.facilitator.user)
    async with Socket(room_path(later), await cookie(world.river)) as river:
        assert river.connected is True


# --- refused before accept --------------------------------------------------------------------


async def test_it_refuses_an_anonymous_visitor(world):
    await assert_refused(world.path, None)


async def test_it_refuses_an_unknown_session(world):
    await assert_refused(world.path, "no-such-session")


async def test_it_refuses_a_meeting_that_does_not_exist(world):
    await assert_refused("/ws/meetings/999999/", await cookie(world.river))


async def test_it_refuses_a_member_of_another_group(world):
    await assert_refused(world.path, await cookie(world.stranger))
    # The stranger's own group's meetings are theirs to join: it was the group that counted.
    theirs = await run(schedule, world.other_group, world.admin)
    async with Socket(room_path(theirs), await cookie(world.stranger)) as socket:
        assert socket.connected is True


async def test_it_refuses_a_signed_in_person_with_no_place(world):
    nobody = await run(make_person, "nobody-login-handle")
    await assert_refused(world.path, await run(session_cookie, nobody))


async def test_it_refuses_another_origin_even_with_a_valid_session(world):
    river_cookie = await cookie(world.river)
    async with Socket(world.path, river_cookie, origin=b"http://evil.example") as socket:
        assert socket.connected is False
    async with Socket(world.path, river_cookie) as socket:
        assert socket.connected is True


async def test_it_refuses_a_member_who_has_not_signed_the_current_agreement(world):
    await run(
        group_services.agreement_publish,
        group=world.group,
        actor=world.admin,
        text="Version two: no screenshots, ever.",
    )
    await assert_refused(world.path, await cookie(world.river))

    # Signing it again opens the door.
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


async def test_it_refuses_a_member_who_has_not_taken_their_place_yet(world):
    pending = await run(give_place, world.group, await run(make_person, "pending-login-handle"))
    assert pending.status == Status.PENDING_AGREEMENT
    await assert_refused(world.path, await cookie(pending))


@pytest.mark.parametrize("status", [Status.SUSPENDED, Status.REMOVED, Status.LEFT])
async def test_it_refuses_a_member_who_is_not_in_good_standing(world, status):
    await run(set_status, world.river, status, notify=False)
    await assert_refused(world.path, await cookie(world.river))


async def test_it_refuses_a_meeting_that_has_not_opened_yet(world):
    future = await run(schedule, world.group, world.facilitator.user, starts_in=timedelta(hours=2))
    await assert_refused(room_path(future), await cookie(world.river))


async def test_it_refuses_a_meeting_that_was_closed(world):
    await run(meeting_services.meeting_close, meeting=world.meeting, actor=world.facilitator.user)
    await assert_refused(world.path, await cookie(world.river))


async def test_it_refuses_a_meeting_that_has_ended(world):
    past = await run(
        schedule,
        world.group,
        world.facilitator.user,
        starts_in=timedelta(hours=-3),
        lasts=timedelta(hours=1),
    )
    assert past.ends_at < timezone.now()
    await assert_refused(room_path(past), await cookie(world.river))


async def test_it_refuses_a_facilitator_whose_session_is_not_two_factor_verified(world):
    await assert_refused(world.path, await cookie(world.facilitator))


async def test_it_refuses_a_facilitator_with_an_authenticator_but_an_unverified_session(world):
    await run(totp_device, world.facilitator.user)
    await assert_refused(world.path, await cookie(world.facilitator))


async def test_it_refuses_a_member_with_an_authenticator_who_skipped_the_code(world):
    # Members may turn 2FA on; then their sockets need a verified session like anyone's.
    await run(totp_device, world.river.user)
    await assert_refused(world.path, await cookie(world.river))
    client = await run(sign_in, world.river.user)
    async with Socket(world.path, cookie_of(client)) as river:
        assert river.connected is True


async def test_it_refuses_a_socket_without_an_origin_header(world):
    river_cookie = await cookie(world.river)
    communicator = WebsocketCommunicator(
        application,
        world.path,
        headers=[
            (b"host", b"127.0.0.1"),
            (b"cookie", f"{settings.SESSION_COOKIE_NAME}={river_cookie}".encode()),
        ],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected is False
    await communicator.disconnect()


async def test_it_refuses_a_session_past_its_idle_timeout(world):
    def idle_cookie():
        client = Client()
        client.force_login(world.river.user)
        session = client.session
        session[STARTED_KEY] = time.time() - 120
        session[LAST_SEEN_KEY] = time.time() - settings.SESSION_IDLE_TIMEOUT - 60
        session.save()
        return cookie_of(client)

    await assert_refused(world.path, await run(idle_cookie))


async def test_presence_ignores_sockets_that_stopped_sending_heartbeats(world):
    # A socket on a Daphne process that died leaves its row behind; without heartbeats it
    # stops counting after two heartbeat intervals.
    def ghost():
        meeting_services.presence_join(
            meeting=world.meeting, membership=world.fern, channel_name="specific.dead-process!ghost"
        )
        Presence.objects.filter(channel_name="specific.dead-process!ghost").update(
            seen_at=timezone.now() - timedelta(seconds=3 * settings.CHAT_HEARTBEAT_SECONDS)
        )

    await run(ghost)
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.expect_presence(["River"])
