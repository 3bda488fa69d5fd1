"""The incident's page: the 72-hour regulator deadline from detection (time left, overdue,
met), the timeline of its steps, and the report for the regulator (counts of people and
records, steps with their times; no message text or contact data); recording that the
regulator was told, and closing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.events import Action
from console import services
from tests.audit.conftest import RIVER_EMERGENCY, RIVER_PHONE
from tests.console.conftest import (
    clock_shifted,
    events,
    open_incident,
    text_of,
    verified_client,
)
from tests.factories import post, schedule

pytestmark = pytest.mark.django_db

SECRET_MESSAGE = "I relapsed on Friday and nobody at work knows."


def test_the_deadline_counts_down_from_detection_and_then_shows_overdue(world, admin_client):
    incident = open_incident(world, detected_at=timezone.now() - timedelta(hours=10))
    page = text_of(admin_client.get(f"/audit/incidents/{incident.pk}/"))
    assert "61 h 59 min left to tell the regulator" in page or "62 h 0 min left" in page

    with clock_shifted(timedelta(hours=63, minutes=30)):
        # (Signed in again: the first session expired in the meantime.)
        admin_client = verified_client(world.admin)
        page = text_of(admin_client.get(f"/audit/incidents/{incident.pk}/"))
        assert "Overdue by 1 h 30 min" in page or "Overdue by 1 h 29 min" in page
        listing = text_of(admin_client.get("/audit/incidents/"))
        assert "Overdue by" in listing

        response = admin_client.post(
            f"/audit/incidents/{incident.pk}/regulator/",
            {
                "notified_at": (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
                "reference": "ICO-2026-0042",
            },
        )
        assert response.status_code == 302
        page = text_of(admin_client.get(f"/audit/incidents/{incident.pk}/"))
        assert "Regulator told after the deadline" in page
    [told] = events(Action.INCIDENT_REGULATOR_NOTIFIED)
    assert told.extra == {"within_deadline": False}


def test_recording_the_regulator_refuses_a_time_before_detection_or_in_the_future(
    world, incident, admin_client
):
    url = f"/audit/incidents/{incident.pk}/regulator/"
    for when, message in (
        (incident.detected_at - timedelta(hours=2), "That is before the incident was detected."),
        (timezone.now() + timedelta(hours=2), "That time is in the future."),
    ):
        response = admin_client.post(url, {"notified_at": when.strftime("%Y-%m-%dT%H:%M")})
        assert response.status_code == 400
        assert message in text_of(response)
    assert events(Action.INCIDENT_REGULATOR_NOTIFIED) == []


def test_the_timeline_and_the_report_hold_the_steps_and_counts_but_no_content(
    world, incident, admin_client, django_capture_on_commit_callbacks
):
    meeting = schedule(world.group, world.lantern.user)
    post(meeting, world.river, SECRET_MESSAGE)
    services.incident_sign_out(actor=world.admin, incident=incident, everyone=False, ip=None)
    services.incident_hold_meetings(actor=world.admin, incident=incident, ip=None)
    # The emails go after commit; a notice is 'emailed' once the mail server took it.
    with django_capture_on_commit_callbacks(execute=True):
        services.incident_notify(actor=world.admin, incident=incident, ip=None)

    page = admin_client.get(f"/audit/incidents/{incident.pk}/")
    steps = [text for _, text in page.context["timeline"]]
    assert steps == [
        f"site-keeper opened security incident {incident.pk} (accounts: 1, groups: 1)",
        f"site-keeper signed accounts out for incident {incident.pk}"
        " (everyone: no, people: 0, sessions: 0)",
        "site-keeper put the meetings of Evening Grief Circle on hold",
        f"site-keeper sent security notices for incident {incident.pk}"
        " (emails queued: 1, people: 2)",
    ]
    viewed = events(Action.AUDIT_LOG_VIEWED)[-1]
    assert viewed.extra == {"page": "incident", "filters": ["incident"]}

    response = admin_client.get(f"/audit/incidents/{incident.pk}/report/")
    assert response["Content-Disposition"] == (
        f'attachment; filename="incident-{incident.pk}-report.txt"'
    )
    report = response.content.decode()
    assert "Lantern's account taken over" in report
    assert "People in all:                2" in report
    assert "Meeting chat messages stored: 1" in report
    assert "Phone numbers:                1" in report
    assert "Emergency contacts:           1" in report
    assert "Recovery email addresses:     1" in report
    assert "Told in the app:              2 (also by email: 1; read so far: 0)" in report
    assert "Regulator deadline (72 h):" in report
    for step in steps:
        assert step in report
    for secret in (
        SECRET_MESSAGE,
        RIVER_PHONE,
        RIVER_EMERGENCY,
        "lantern.private@example.org",
        "keeper@example.org",
    ):
        assert secret not in report
    [exported] = events(Action.INCIDENT_REPORT_EXPORTED)
    assert (exported.actor_id, exported.target_id) == (world.admin.pk, str(incident.pk))


def test_an_incident_is_closed_only_once_its_hold_is_lifted_and_then_takes_no_steps(
    world, incident, admin_client
):
    services.incident_hold_meetings(actor=world.admin, incident=incident, ip=None)
    url = f"/audit/incidents/{incident.pk}/close/"
    response = admin_client.post(url, {"confirm": "on"})
    assert response.status_code == 400
    assert "Lift the hold on meetings before closing the incident." in text_of(response)
    services.incident_lift_hold(actor=world.admin, incident=incident, ip=None)

    assert admin_client.post(url, {"confirm": "on"}).status_code == 302

    incident.refresh_from_db()
    assert incident.closed_at is not None
    assert len(events(Action.INCIDENT_CLOSED)) == 1
    response = admin_client.post(
        f"/audit/incidents/{incident.pk}/sign-out/", {"scope": "everyone", "confirm": "on"}
    )
    assert response.status_code == 302
    assert events(Action.INCIDENT_SESSIONS_ENDED) == []
    # Still readable, and its report still downloads.
    assert admin_client.get(f"/audit/incidents/{incident.pk}/").status_code == 200
    assert admin_client.get(f"/audit/incidents/{incident.pk}/report/").status_code == 200


def test_the_report_for_the_regulator_opens_with_the_name_of_the_service(
    world, incident, admin_client, settings
):
    settings.SITE_NAME = "Harbour Peer Support"
    report = admin_client.get(f"/audit/incidents/{incident.pk}/report/").content.decode()
    assert report.startswith(f"Harbour Peer Support: report on security incident {incident.pk}\n")
