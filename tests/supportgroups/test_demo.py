"""`manage.py seed_demo`, which `make run` calls on every start: the demo people can sign
in, the member is in the group under a pseudonym with the agreement signed, a room is open
to try, and running it again changes nothing but that room."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from accounts.models import User
from groups.models import Group, Membership, Role
from groups.selectors import membership_may_enter_meetings
from meetings import services as meeting_services
from meetings.models import Meeting
from supportgroups.demo import DEMO_GROUP, DEMO_OPEN_GROUP, DEMO_PASSWORD, next_tuesday_evening
from tests.factories import signed_in_client

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    with override_settings(DEBUG=True):
        call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def open_rooms() -> list[Meeting]:
    return [m for m in Meeting.objects.filter(group__name=DEMO_GROUP) if m.is_open()]


def test_it_prints_the_accounts_and_where_to_sign_in():
    out = seed("--url", "http://0.0.0.0:9000")
    assert "Sign in at http://0.0.0.0:9000/accounts/login/ as:" in out
    for username in ("demo-admin", "demo-facilitator", "demo-member"):
        assert username in out
        assert authenticate(username=username, password=DEMO_PASSWORD) is not None
    # Like the admin `createsuperuser` makes in production: the Django admin is theirs too.
    admin = User.objects.get(username="demo-admin")
    assert admin.is_staff and admin.is_superuser
    assert not User.objects.get(username="demo-facilitator").is_staff


def test_the_member_and_the_facilitator_are_ready_to_meet():
    seed()
    group = Group.objects.get(name=DEMO_GROUP)
    places = {m.user.username: m for m in Membership.objects.filter(group=group)}
    assert places["demo-member"].pseudonym == "River"
    assert places["demo-facilitator"].pseudonym == "Willow"
    assert places["demo-facilitator"].role == Role.FACILITATOR
    assert all(membership_may_enter_meetings(m) for m in places.values())
    assert len(open_rooms()) == 1


def test_the_weekly_meetings_fall_when_the_group_says_it_meets():
    # The directory says "Tuesdays, 7–8:30 pm".
    seed()
    weekly = Meeting.objects.filter(group__name=DEMO_GROUP, title="Tuesday meeting")
    assert weekly.count() == 4
    for meeting in weekly:
        starts = timezone.localtime(meeting.starts_at)
        assert (starts.weekday(), starts.hour, starts.minute) == (1, 19, 0)
        assert meeting.ends_at - meeting.starts_at == timedelta(minutes=90)
        assert meeting.starts_at > timezone.now()


@pytest.mark.parametrize(
    ("zone", "today", "expected"),
    [
        (
            "UTC",
            datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
            datetime(2026, 11, 24, 19, 0, tzinfo=UTC),
        ),
        # On a Tuesday, the next one (this evening's may be about to start).
        ("UTC", datetime(2026, 11, 24, 9, 0, tzinfo=UTC), datetime(2026, 12, 1, 19, 0, tzinfo=UTC)),
        # 7 pm where the site is: Tuesday 7 pm in New York is Wednesday 00:00 UTC.
        (
            "America/New_York",
            datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
            datetime(2026, 11, 25, 0, 0, tzinfo=UTC),
        ),
    ],
)
def test_next_tuesday_evening_is_7_pm_after_today_in_the_sites_time_zone(zone, today, expected):
    with override_settings(TIME_ZONE=zone):
        assert next_tuesday_evening(today) == expected


def test_seeding_again_adds_nothing_while_the_room_is_still_open():
    seed()
    counts = (User.objects.count(), Group.objects.count(), Meeting.objects.count())
    seed()
    assert (User.objects.count(), Group.objects.count(), Meeting.objects.count()) == counts


def test_a_later_start_opens_a_new_room_when_the_last_one_has_closed():
    seed()
    (room,) = open_rooms()
    meeting_services.meeting_close(meeting=room, actor=None)
    assert open_rooms() == []
    seed()
    assert len(open_rooms()) == 1
    assert Group.objects.filter(name=DEMO_GROUP).count() == 1


def test_it_refuses_to_seed_a_production_instance():
    with override_settings(DEBUG=False), pytest.raises(CommandError, match="DEBUG off"):
        call_command("seed_demo", stdout=StringIO())
    assert not User.objects.filter(username="demo-admin").exists()


def test_an_open_group_with_screening_sits_beside_the_invitation_only_one():
    """Issue 21: a newcomer trying `make run` sees the apply-and-screening path too."""
    out = seed()
    invitation_only = Group.objects.get(name=DEMO_GROUP)
    open_group = Group.objects.get(name=DEMO_OPEN_GROUP)
    assert not invitation_only.requires_screening
    assert open_group.requires_screening and open_group.listed
    assert DEMO_OPEN_GROUP in out and "open to applications" in out
    (lead,) = Membership.objects.filter(group=open_group, role=Role.FACILITATOR)
    assert lead.user.username == "demo-facilitator"

    # A newcomer signed in sees "Apply" on the open group's page, and can start.
    newcomer = User.objects.create_user(username="new-person")
    client = signed_in_client(newcomer)
    page = client.get(f"/groups/{open_group.slug}/").content.decode()
    assert f"/screening/apply/{open_group.slug}/" in page
    assert client.get(f"/screening/apply/{open_group.slug}/").status_code == 200

    seed()  # and again: nothing new
    assert Group.objects.filter(name=DEMO_OPEN_GROUP).count() == 1
