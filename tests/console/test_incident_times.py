"""The times an admin types into the incident forms (when it was detected, when the regulator
was told) mean the admin's own zone, which the form names; they are stored as the instant
meant and shown back as that instant (the pages in the reader's zone, the regulator's report
in UTC as it says). The site here runs in New York time, not UTC."""

import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from console.models import Incident
from tests.console.conftest import open_incident, text_of

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


@pytest.fixture(autouse=True)
def _site_in_new_york(settings):
    settings.TIME_ZONE = "America/New_York"


def yesterday_at_nine(zone) -> datetime:
    day = (timezone.now().astimezone(zone) - timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, 9, 30, tzinfo=zone)


def typed(when: datetime) -> str:
    """As the browser's datetime-local field sends it: the clock time, no zone."""
    return when.strftime("%Y-%m-%dT%H:%M")


def open_form(world, detected: str, zone_name: str | None) -> dict:
    data = {
        "title": "Backup file found on a public share",
        "description": "Readable by anyone with the link.",
        "detected_at": detected,
        "accounts": world.lantern.user.username,
    }
    if zone_name is not None:
        data["timezone"] = zone_name
    return data


def test_the_form_names_the_zone_and_suggests_now_as_an_instant(world, admin_client):
    page = admin_client.get("/audit/incidents/new/").content.decode()
    assert "When it was detected (UTC)" not in page
    assert "When it was detected" in page
    # Without JavaScript: the site's zone, named; local-time.js puts the reader's in its place.
    assert "In your time zone: <span data-reader-zone>America/New_York</span>." in page
    assert "data-timezone-form" in page and 'name="timezone"' in page
    # "Now", suggested in the site's zone, with the instant for the browser to show in its own.
    now = timezone.now().replace(second=0, microsecond=0)
    value = re.search(r'name="detected_at" value="([^"]+)"', page).group(1)
    instant = re.search(r'name="detected_at"[^>]*data-instant="([^"]+)"', page).group(1)
    assert abs(datetime.fromisoformat(instant) - now) < timedelta(minutes=2)
    assert value == typed(datetime.fromisoformat(instant).astimezone(NEW_YORK))


@pytest.mark.parametrize(
    ("zone_name", "zone"),
    [("Europe/Berlin", BERLIN), ("", NEW_YORK), ("Mars/Olympus_Mons", NEW_YORK)],
    ids=["browser-zone", "no-javascript", "unknown-zone"],
)
def test_the_detected_time_is_the_instant_meant_in_the_admins_zone(
    world, admin_client, zone_name, zone
):
    meant = yesterday_at_nine(zone)
    response = admin_client.post("/audit/incidents/new/", open_form(world, typed(meant), zone_name))
    assert response.status_code == 302, text_of(response)

    incident = Incident.objects.get()
    assert incident.detected_at == meant
    assert timezone.is_aware(incident.detected_at)
    # Shown back as the same instant: the page in the reader's zone (its <time> carries the
    # instant), the regulator's report in UTC as it says.
    page = admin_client.get(f"/audit/incidents/{incident.pk}/").content.decode()
    assert f'<time datetime="{meant.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"' in page
    report = admin_client.get(f"/audit/incidents/{incident.pk}/report/").content.decode()
    assert f"Detected:                     {meant.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in report


def test_now_in_a_zone_ahead_of_the_site_is_not_taken_for_the_future(world, admin_client):
    """Tokyo is 14 hours ahead of New York: read as the site's time, it was refused."""
    now_in_tokyo = timezone.now().astimezone(TOKYO) - timedelta(minutes=1)
    response = admin_client.post(
        "/audit/incidents/new/", open_form(world, typed(now_in_tokyo), "Asia/Tokyo")
    )
    assert response.status_code == 302, text_of(response)
    assert Incident.objects.get().detected_at == now_in_tokyo.replace(second=0, microsecond=0)


def test_a_time_in_the_future_of_the_admins_zone_is_refused(world, admin_client):
    later_in_berlin = timezone.now().astimezone(BERLIN) + timedelta(hours=1)
    response = admin_client.post(
        "/audit/incidents/new/", open_form(world, typed(later_in_berlin), "Europe/Berlin")
    )
    assert response.status_code == 200
    assert "It can't be in the future." in text_of(response)
    assert not Incident.objects.exists()


def test_when_the_regulator_was_told_is_read_in_the_admins_zone(world, admin_client):
    incident = open_incident(world, detected_at=timezone.now() - timedelta(hours=3))
    url = f"/audit/incidents/{incident.pk}/regulator/"
    page = admin_client.get(url).content.decode()
    assert "(UTC)" not in page
    assert "In your time zone: <span data-reader-zone>America/New_York</span>." in page

    told = timezone.now().astimezone(BERLIN).replace(second=0, microsecond=0) - timedelta(minutes=5)
    response = admin_client.post(url, {"notified_at": typed(told), "timezone": "Europe/Berlin"})
    assert response.status_code == 302, text_of(response)
    incident.refresh_from_db()
    assert incident.regulator_notified_at == told
    report = admin_client.get(f"/audit/incidents/{incident.pk}/report/").content.decode()
    assert f"Regulator told:               {told.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in report


def test_the_security_notice_writes_the_day_as_every_page_does(world):
    from console.notices import notice_text

    incident = open_incident(world, detected_at=yesterday_at_nine(NEW_YORK))
    text = notice_text(incident=incident, steps=[])
    day = yesterday_at_nine(NEW_YORK)
    assert text.startswith(f"On {day.day} {day:%b %Y} we found a security problem")
