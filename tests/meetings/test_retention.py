"""Message retention: "delete when the meeting ends" wipes a room when it closes or ends;
7/30/90-day policies delete only older messages; `purge_expired_messages` is idempotent,
says what it did and is audited, and forgets sockets that vanished without closing; a
deleted account's messages become "[removed]"."""

import itertools
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from audit.events import Action
from groups.models import Retention
from meetings import services
from meetings.models import Meeting, Message, Presence
from tests.meetings.conftest import (
    CLOSE_SIGNED_OUT,
    PASSWORD,
    Socket,
    build_world,
    cookie,
    dump_every_table,
    events,
    give_place,
    make_group,
    make_person,
    run,
    schedule,
    sign_in,
)

CLIENT_IDS = itertools.count(1)


def post(meeting, membership, *bodies):
    for body in bodies:
        services.message_post(
            meeting_id=meeting.pk,
            membership_id=membership.pk,
            client_id=f"retention-{next(CLIENT_IDS):06d}",
            body=body,
        )


def messages_of(meeting):
    return list(Message.objects.filter(meeting=meeting).values_list("body", flat=True))


def end_meeting(meeting, *, ago=timedelta(minutes=1)):
    """Time passes: the meeting's end is now in the past."""
    Meeting.objects.filter(pk=meeting.pk).update(
        starts_at=timezone.now() - ago - (meeting.ends_at - meeting.starts_at),
        ends_at=timezone.now() - ago,
    )


def age(meeting, *, days):
    Message.objects.filter(meeting=meeting).update(created_at=timezone.now() - timedelta(days=days))


def purge() -> str:
    out = StringIO()
    call_command("purge_expired_messages", stdout=out)
    return out.getvalue()


# --- presence of vanished sockets ---------------------------------------------------------


@pytest.mark.django_db
def test_the_command_forgets_sockets_that_vanished_without_closing_and_keeps_live_ones():
    world = build_world()
    sockets = ((world.river, "specific.killed!a"), (world.fern, "specific.live!b"))
    for membership, channel in sockets:
        services.presence_join(meeting=world.meeting, membership=membership, channel_name=channel)
    # The killed process's socket last beat 11 minutes ago; the live one is merely late.
    Presence.objects.filter(channel_name="specific.killed!a").update(
        seen_at=timezone.now() - timedelta(minutes=11)
    )
    Presence.objects.filter(channel_name="specific.live!b").update(
        seen_at=timezone.now() - timedelta(minutes=9)
    )

    assert "forgot 1 vanished socket(s)" in purge()
    assert list(Presence.objects.values_list("channel_name", flat=True)) == ["specific.live!b"]
    assert "forgot 0 vanished socket(s)" in purge()


# --- "delete when the meeting ends" -----------------------------------------------------------


@pytest.mark.django_db
def test_closing_a_meeting_wipes_its_messages_under_meeting_end_retention():
    world = build_world(retention=Retention.MEETING_END)
    other = schedule(world.group, world.facilitator.user, title="Another room")
    post(world.meeting, world.river, "first", "second")
    post(other, world.fern, "elsewhere")

    services.meeting_close(meeting=world.meeting, actor=world.facilitator.user)

    assert messages_of(world.meeting) == []
    assert messages_of(other) == ["elsewhere"]
    world.meeting.refresh_from_db()
    assert world.meeting.closed_at is not None
    assert world.meeting.messages_purged_at is not None
    assert world.meeting.last_seq == 2  # seqs are never reused
    [closed] = events(Action.MEETING_CLOSED)
    assert closed.actor_id == world.facilitator.user_id
    assert closed.group_id == world.group.pk


@pytest.mark.django_db
@pytest.mark.parametrize("retention", [Retention.DAYS_7, Retention.DAYS_30, Retention.DAYS_90])
def test_closing_a_meeting_keeps_its_messages_under_a_days_policy(retention):
    world = build_world(retention=retention)
    post(world.meeting, world.river, "kept")
    services.meeting_close(meeting=world.meeting, actor=world.facilitator.user)
    assert messages_of(world.meeting) == ["kept"]


@pytest.mark.django_db
def test_the_command_wipes_meetings_that_ended_and_is_idempotent():
    world = build_world(retention=Retention.MEETING_END)
    running = schedule(world.group, world.facilitator.user, title="Still going")
    post(world.meeting, world.river, "one", "two")
    post(world.meeting, world.fern, "three")
    post(running, world.fern, "live")
    end_meeting(world.meeting)

    first = purge()
    assert "Deleted 3 message(s)" in first
    assert "wiped 1 ended meeting room(s)" in first
    assert messages_of(world.meeting) == []
    assert messages_of(running) == ["live"]

    second = purge()
    assert "Deleted 0 message(s)" in second
    assert "wiped 0 ended meeting room(s)" in second
    assert messages_of(running) == ["live"]

    [purged] = events(Action.MESSAGES_PURGED)  # the run that did nothing is not recorded
    assert purged.extra == {"messages_deleted": 3, "meetings_wiped": 1}
    assert purged.actor_id is None


@pytest.mark.django_db
def test_the_command_also_wipes_meetings_closed_by_hand_under_meeting_end():
    world = build_world(retention=Retention.MEETING_END)
    post(world.meeting, world.river, "one")
    # Closed while the retention was still "30 days", then the group tightened it.
    world.group.retention = Retention.DAYS_30
    world.group.save(update_fields=["retention"])
    services.meeting_close(meeting=world.meeting, actor=world.facilitator.user)
    assert messages_of(world.meeting) == ["one"]
    world.group.retention = Retention.MEETING_END
    world.group.save(update_fields=["retention"])

    assert "Deleted 1 message(s)" in purge()
    assert messages_of(world.meeting) == []


# --- 7, 30 and 90 days ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("retention", "days"),
    [(Retention.DAYS_7, 7), (Retention.DAYS_30, 30), (Retention.DAYS_90, 90)],
)
def test_a_days_policy_deletes_only_older_messages(retention, days):
    world = build_world(retention=retention)
    old = schedule(world.group, world.facilitator.user, title="Old meeting")
    recent = schedule(world.group, world.facilitator.user, title="Recent meeting")
    post(old, world.river, "old news")
    post(recent, world.river, "recent news")
    post(world.meeting, world.fern, "today")
    age(old, days=days + 1)
    age(recent, days=days - 1)

    assert "Deleted 1 message(s)" in purge()
    assert messages_of(old) == []
    assert messages_of(recent) == ["recent news"]
    assert messages_of(world.meeting) == ["today"]
    assert "Deleted 0 message(s)" in purge()


@pytest.mark.django_db
def test_each_group_keeps_messages_as_long_as_its_own_policy_says():
    world = build_world(retention=Retention.DAYS_7)
    patient = make_group(world.admin, "Long Memory Circle", retention=Retention.DAYS_90)
    member = give_place(patient, make_person("patient-login-handle"), "Oak")
    patient_meeting = schedule(patient, world.admin)
    post(world.meeting, world.river, "short-lived")
    post(patient_meeting, member, "long-lived")
    age(world.meeting, days=10)
    age(patient_meeting, days=10)

    assert "Deleted 1 message(s)" in purge()
    assert messages_of(world.meeting) == []
    assert messages_of(patient_meeting) == ["long-lived"]


# --- account deletion -------------------------------------------------------------------------


@pytest.mark.django_db
def test_removing_a_users_messages_keeps_their_place_but_not_their_words():
    world = build_world()
    post(world.meeting, world.river, "mine one", "mine two")
    post(world.meeting, world.fern, "fern's")

    assert services.messages_remove_for_user(user=world.river.user) == 2

    rows = list(Message.objects.filter(meeting=world.meeting).order_by("seq"))
    assert [(m.seq, m.author_id, m.body) for m in rows] == [
        (1, None, None),
        (2, None, None),
        (3, world.fern.pk, "fern's"),
    ]
    event = services.message_event(rows[0])
    assert (event["author"], event["body"]) == ("[removed]", "[removed]")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_deleting_an_account_turns_its_messages_into_removed(world):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        await river.send_and_ack("Something I regret sharing.", "regret-0001")
        await fern.expect("message")
        await fern.send_and_ack("Thank you for telling us.", "fern-0001")
        await river.expect("message")

        def delete_account():
            client = sign_in(world.river.user)
            # Deleting asks "is it really you?" first.
            response = client.post("/accounts/reauthenticate/", {"password": PASSWORD})
            assert response.status_code == 302
            return client.post(reverse("account_delete"), {"confirm": "delete my account"})

        response = await run(delete_account)
        assert response.status_code == 200, response.status_code
        # The deleted person's open socket is signed out at once.
        await river.expect("signed_out", timeout=1)
        await river.expect_close(CLOSE_SIGNED_OUT)

        await fern.send({"type": "resume", "after_seq": 0})
        removed = await fern.expect("message")
        kept = await fern.expect("message")
        await fern.expect("resumed")

    assert (removed["seq"], removed["author"], removed["body"]) == (1, "[removed]", "[removed]")
    assert removed["mine"] is False and removed["client_id"] is None
    assert (kept["author"], kept["body"]) == ("Fern", "Thank you for telling us.")

    rows = await run(lambda: list(Message.objects.order_by("seq").values_list("author_id", "body")))
    assert rows == [(None, None), (world.fern.pk, "Thank you for telling us.")]
    dump = await run(dump_every_table)
    assert "river-login-handle" not in dump
