"""Facilitators' meeting pages: scheduling (one-off and repeating), opening early, closing,
attendance. Each is audited; members and other groups' facilitators get a 404."""

import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.events import Action
from meetings import services
from meetings.models import Meeting, Recurrence
from tests.meetings.conftest import (
    appoint,
    build_world,
    events,
    make_person,
    schedule,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def facilitator_client(world):
    return sign_in_verified(world.facilitator.user)


@pytest.fixture
def other_facilitator_client(world):
    """A 2FA-verified facilitator, of the other group only."""
    other = make_person("other-fac-login")
    appoint(world.other_group, other, "Beacon", actor=world.admin)
    return sign_in_verified(other)


def member_client(membership):
    client = Client()
    client.force_login(membership.user)
    return client


def next_week_evening():
    """19:00 Berlin time a week from now, as the browser's datetime-local sends it."""
    day = (timezone.now().astimezone(BERLIN) + timedelta(days=7)).date()
    return datetime(day.year, day.month, day.day, 19, 0, tzinfo=BERLIN)


def form(starts: datetime, **overrides):
    data = {
        "title": "Tuesday evening",
        "starts_at": starts.strftime("%Y-%m-%dT%H:%M"),
        "duration_minutes": "90",
        "recurrence": Recurrence.NONE,
        "occurrences": "1",
        "timezone": "Europe/Berlin",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def schedule_url(world):
    return f"/meetings/group/{world.group.slug}/"


def html(response) -> str:
    return response.content.decode()


# --- scheduling -------------------------------------------------------------------------------


def test_a_facilitator_sees_the_schedule_page(world, facilitator_client):
    response = facilitator_client.get(schedule_url(world))
    assert response.status_code == 200
    assert "Tuesday meeting" in html(response)  # the open meeting, listed as upcoming
    assert "Close now" in html(response)


def test_a_facilitator_schedules_a_one_off_meeting_in_their_own_time_zone(
    world, facilitator_client
):
    starts = next_week_evening()
    before = Meeting.objects.count()
    response = facilitator_client.post(schedule_url(world), form(starts))
    assert response.status_code == 302
    assert response["Location"] == schedule_url(world)

    [meeting] = Meeting.objects.exclude(pk=world.meeting.pk)
    assert Meeting.objects.count() == before + 1
    assert meeting.group == world.group
    assert meeting.title == "Tuesday evening"
    assert meeting.starts_at == starts  # 19:00 in Berlin, whatever the server's zone
    assert meeting.ends_at == starts + timedelta(minutes=90)
    assert meeting.recurrence == Recurrence.NONE
    assert meeting.opened_at is None and meeting.closed_at is None

    [event] = events(Action.MEETING_SCHEDULED, target_id=str(meeting.pk))
    assert event.actor_id == world.facilitator.user_id
    assert event.group_id == world.group.pk
    assert event.extra == {"occurrences": 1, "recurrence": "none"}

    page = facilitator_client.get(schedule_url(world))
    assert "1 meeting scheduled." in html(page)
    assert "Tuesday evening" in html(page)


@pytest.mark.parametrize(
    ("recurrence", "step"),
    [(Recurrence.WEEKLY, timedelta(weeks=1)), (Recurrence.FORTNIGHTLY, timedelta(weeks=2))],
)
def test_a_facilitator_schedules_a_repeating_series(world, facilitator_client, recurrence, step):
    starts = next_week_evening()
    response = facilitator_client.post(
        schedule_url(world), form(starts, recurrence=recurrence, occurrences="4")
    )
    assert response.status_code == 302
    series = list(Meeting.objects.exclude(pk=world.meeting.pk).order_by("starts_at"))
    assert len(series) == 4
    assert len({m.series for m in series}) == 1
    for n, meeting in enumerate(series):
        # The same wall-clock time every time, in the facilitator's zone.
        local = meeting.starts_at.astimezone(BERLIN)
        expected = starts.replace(tzinfo=None) + step * n
        assert (local.date(), local.hour, local.minute) == (expected.date(), 19, 0)
        assert meeting.ends_at - meeting.starts_at == timedelta(minutes=90)
        assert meeting.recurrence == recurrence
    [event] = events(Action.MEETING_SCHEDULED, group_id=world.group.pk, target_id=str(series[0].pk))
    assert event.extra == {"occurrences": 4, "recurrence": str(recurrence)}
    assert "4 meetings scheduled." in html(facilitator_client.get(schedule_url(world)))


def test_a_weekly_series_keeps_its_local_time_across_a_clock_change(world, facilitator_client):
    # Europe/Berlin moves to summer time on Sunday 28 March 2027.
    starts = datetime(2027, 3, 23, 19, 0, tzinfo=BERLIN)
    assert starts > timezone.now(), "pick a later clock change"
    facilitator_client.post(
        schedule_url(world), form(starts, recurrence=Recurrence.WEEKLY, occurrences="2")
    )
    first, second = Meeting.objects.exclude(pk=world.meeting.pk).order_by("starts_at")
    assert first.starts_at.astimezone(BERLIN).hour == second.starts_at.astimezone(BERLIN).hour == 19
    assert second.starts_at - first.starts_at == timedelta(weeks=1, hours=-1)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param(
            {"duration_minutes": "-30"}, "greater than or equal to 15", id="ends-before-it-starts"
        ),
        pytest.param({"duration_minutes": "0"}, "greater than or equal to 15", id="no-length"),
        pytest.param(
            {"starts_at": "2020-01-07T19:00"},
            "Please choose a time in the future.",
            id="in-the-past",
        ),
        pytest.param({"title": None}, "This field is required.", id="no-title"),
        pytest.param({"starts_at": None}, "This field is required.", id="no-start"),
        pytest.param({"starts_at": "next tuesday"}, "Enter a valid date/time.", id="bad-start"),
        pytest.param({"duration_minutes": None}, "This field is required.", id="missing-length"),
        pytest.param({"recurrence": "daily"}, "Select a valid choice.", id="bad-recurrence"),
        pytest.param(
            {"occurrences": "27", "recurrence": "weekly"}, "less than or equal to 26", id="too-many"
        ),
    ],
)
def test_bad_input_re_renders_with_errors_and_creates_nothing(
    world, facilitator_client, overrides, error
):
    before = Meeting.objects.count()
    response = facilitator_client.post(schedule_url(world), form(next_week_evening(), **overrides))
    assert response.status_code == 200
    assert error in html(response)
    assert Meeting.objects.count() == before
    # Only the world's own meeting was ever scheduled.
    scheduled = events(Action.MEETING_SCHEDULED, group_id=world.group.pk)
    assert [e.target_id for e in scheduled] == [str(world.meeting.pk)]


def test_the_service_refuses_a_meeting_that_ends_before_it_starts(world):
    starts = timezone.now() + timedelta(days=1)
    with pytest.raises(services.RoomError) as refused:
        services.meeting_schedule(
            group=world.group,
            actor=world.facilitator.user,
            title="Backwards",
            starts_at=starts,
            ends_at=starts - timedelta(minutes=1),
        )
    assert refused.value.code == "invalid_times"
    assert Meeting.objects.filter(title="Backwards").count() == 0


# --- opening and closing ----------------------------------------------------------------------


def test_a_facilitator_opens_a_room_early(world, facilitator_client):
    later = schedule(world.group, world.facilitator.user, starts_in=timedelta(days=1))
    assert not later.is_open()
    response = facilitator_client.post(f"/meetings/{later.pk}/open/")
    assert response.status_code == 302
    assert response["Location"] == schedule_url(world)
    later.refresh_from_db()
    assert later.opened_at is not None and later.is_open()

    # Opening it again changes nothing and is not audited twice.
    facilitator_client.post(f"/meetings/{later.pk}/open/")
    [event] = events(Action.MEETING_OPENED)
    assert (event.actor_id, event.target_id, event.group_id) == (
        world.facilitator.user_id,
        str(later.pk),
        world.group.pk,
    )
    assert member_client(world.river).get(f"/meetings/{later.pk}/").status_code == 200


def test_an_ended_meeting_cannot_be_opened(world, facilitator_client):
    past = schedule(world.group, world.facilitator.user, starts_in=timedelta(hours=-3))
    response = facilitator_client.post(f"/meetings/{past.pk}/open/", follow=True)
    assert "already ended" in html(response)
    past.refresh_from_db()
    assert past.opened_at is None
    assert events(Action.MEETING_OPENED) == []


def test_a_facilitator_closes_a_room(world, facilitator_client):
    response = facilitator_client.post(f"/meetings/{world.meeting.pk}/close/")
    assert response.status_code == 302
    world.meeting.refresh_from_db()
    assert world.meeting.closed_at is not None and not world.meeting.is_open()
    [event] = events(Action.MEETING_CLOSED)
    assert (event.actor_id, event.target_id, event.group_id) == (
        world.facilitator.user_id,
        str(world.meeting.pk),
        world.group.pk,
    )


def test_open_and_close_only_accept_post(world, facilitator_client):
    assert facilitator_client.get(f"/meetings/{world.meeting.pk}/open/").status_code == 405
    assert facilitator_client.get(f"/meetings/{world.meeting.pk}/close/").status_code == 405
    world.meeting.refresh_from_db()
    assert world.meeting.closed_at is None


# --- attendance -------------------------------------------------------------------------------


def test_attendance_lists_pseudonyms_only(world, facilitator_client):
    for membership in (world.river, world.fern):
        services.presence_join(
            meeting=world.meeting,
            membership=membership,
            channel_name=f"test.channel.{membership.pk}",
        )
    services.message_post(
        meeting_id=world.meeting.pk,
        membership_id=world.river.pk,
        client_id="attendance-01",
        body="Words that stay in the room",
    )
    response = facilitator_client.get(f"/meetings/{world.meeting.pk}/attendance/")
    assert response.status_code == 200
    body = html(response)
    assert "River" in body and "Fern" in body
    assert "Stranger" not in body
    for handle in ("river-login-handle", "fern-login-handle"):
        assert handle not in body
    assert "Words that stay in the room" not in body


def test_attendance_of_an_empty_meeting(world, facilitator_client):
    response = facilitator_client.get(f"/meetings/{world.meeting.pk}/attendance/")
    assert "Nobody joined." in html(response)


# --- who may use these pages ------------------------------------------------------------------


def facilitator_pages(world):
    meeting = world.meeting
    return [
        ("get", f"/meetings/group/{world.group.slug}/"),
        ("post", f"/meetings/group/{world.group.slug}/"),
        ("post", f"/meetings/{meeting.pk}/open/"),
        ("post", f"/meetings/{meeting.pk}/close/"),
        ("get", f"/meetings/{meeting.pk}/attendance/"),
    ]


def assert_all_404(world, client):
    for method, url in facilitator_pages(world):
        data = form(next_week_evening()) if method == "post" else None
        response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    world.meeting.refresh_from_db()
    assert world.meeting.closed_at is None and world.meeting.opened_at is None
    assert Meeting.objects.count() == 1
    assert events(Action.MEETING_CLOSED) == [] and events(Action.MEETING_OPENED) == []


def test_a_member_gets_404_on_every_facilitator_page(world):
    assert_all_404(world, member_client(world.river))


def test_a_facilitator_of_another_group_gets_404_on_every_facilitator_page(
    world, other_facilitator_client
):
    assert_all_404(world, other_facilitator_client)


def test_someone_with_no_place_gets_404_on_every_facilitator_page(world):
    client = Client()
    client.force_login(make_person("nobody-login-handle"))
    assert_all_404(world, client)


def test_an_anonymous_visitor_is_sent_to_sign_in(world):
    for method, url in facilitator_pages(world):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith("/accounts/login/")


def test_a_facilitator_without_a_verified_session_is_sent_to_two_factor(world):
    client = Client()
    client.force_login(world.facilitator.user)
    response = client.get(schedule_url(world))
    assert response.status_code == 302
    assert "two-factor" in response["Location"]
    assert Meeting.objects.count() == 1
