"""Dates on the consent pages read as every page writes a day ("4 Dec 2026"), on the day of
the site's zone, as the members' list says "last attended"; the package file keeps ISO
dates. The site's zone here is one where today is another day than in UTC."""

import json
from datetime import UTC

import pytest
from django.urls import reverse
from django.utils import dateformat, timezone

from meetings.models import Meeting
from tests.privacy.conftest import approve, ask

pytestmark = pytest.mark.django_db

# How every page writes a day (the members' list, the requests, the access review).
PAGE_DATE_FORMAT = "j M Y"


@pytest.fixture
def site_zone_on_another_day(scene, settings):
    """A zone where the meeting's day is not its UTC day (14 hours ahead or 12 behind)."""
    started = Meeting.objects.get(group=scene.group).starts_at.astimezone(UTC)
    settings.TIME_ZONE = "Etc/GMT-14" if started.hour >= 10 else "Etc/GMT+12"
    local_day = timezone.localdate(started)
    assert local_day != started.date()
    return started, local_day


def test_the_member_reads_attendance_and_the_last_day_as_the_site_writes_days(
    scene, site_zone_on_another_day
):
    started, local_day = site_zone_on_another_day
    consent = ask(scene, items=["attendance"], days=30)
    page = scene.client(scene.river.user).get(reverse("account_consent", args=[consent.pk]))
    text = page.content.decode()

    assert f"Tuesday circle — {dateformat.format(local_day, PAGE_DATE_FORMAT)}" in text
    for iso_day in (started.date().isoformat(), local_day.isoformat()):
        assert f"— {iso_day}" not in text
    last_day = dateformat.format(consent.valid_until, PAGE_DATE_FORMAT)
    assert f"<dd>{last_day} (the last day)" in text
    assert f"until {last_day}. You can withdraw" in text


def test_the_package_file_keeps_the_same_day_as_an_iso_date(scene, site_zone_on_another_day):
    _, local_day = site_zone_on_another_day
    consent = ask(scene, items=["attendance"])
    approve(consent)
    response = scene.client(scene.facilitator.user).post(
        reverse("disclosures:consent_package", args=[consent.group.slug, consent.pk])
    )
    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["items"]["attendance"] == [
        {"meeting": "Tuesday circle", "date": local_day.isoformat()}
    ]
