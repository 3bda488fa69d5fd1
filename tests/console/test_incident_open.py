"""Opening an incident at /audit/incidents/new/ (issue 23, point 4) and who may reach
the incident pages at all."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.events import Action
from console.models import Incident
from tests.console.conftest import client_of, events, incident_urls, text_of
from tests.database import dump_every_table

pytestmark = pytest.mark.django_db

TITLE = "Backup file found on a public share"
DESCRIPTION = "A copy of last night's database backup was readable by anyone with the link."


def form(world, **overrides):
    data = {
        "title": TITLE,
        "description": DESCRIPTION,
        "detected_at": (timezone.now() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "accounts": f"{world.lantern.user.username}\n\n{world.beacon.user.username}\n",
        "groups": [world.group.pk],
    }
    data.update(overrides)
    return data


def test_an_admin_opens_an_incident_recorded_and_its_words_encrypted_at_rest(world, admin_client):
    response = admin_client.post("/audit/incidents/new/", form(world))

    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/audit/incidents/{incident.pk}/"
    assert incident.title == TITLE
    assert set(incident.affected_users.all()) == {world.lantern.user, world.beacon.user}
    assert list(incident.affected_groups.all()) == [world.group]
    assert incident.opened_by == world.admin
    [opened] = events(Action.INCIDENT_OPENED)
    assert (opened.actor_id, opened.target_type, opened.target_id) == (
        world.admin.pk,
        "console.incident",
        str(incident.pk),
    )
    assert opened.extra == {"accounts": 2, "groups": 1}
    # Nothing of what happened is readable in the database.
    dump = dump_every_table()
    assert TITLE not in dump
    assert "public share" not in dump
    assert "readable by anyone" not in dump

    page = admin_client.get(f"/audit/incidents/{incident.pk}/")
    assert page.status_code == 200
    assert TITLE in text_of(page)
    assert "Incidents" in text_of(admin_client.get("/audit/incidents/"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"accounts": "fac-lantern\nno-such-handle"},
            "No account has the login handle no-such-handle.",
        ),
        ({"title": ""}, "This field is required."),
        ({"detected_at": "yesterday-ish"}, "Enter a valid date/time."),
        (
            {"detected_at": (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")},
            "It can't be in the future.",
        ),
        ({"groups": ["999999"]}, "Select a valid choice."),
    ],
    ids=["unknown-handle", "no-title", "bad-date", "future", "no-such-group"],
)
def test_bad_input_shows_the_form_again_with_what_is_wrong(world, admin_client, change, message):
    response = admin_client.post("/audit/incidents/new/", form(world, **change))
    assert response.status_code == 200
    assert "There is a problem" in text_of(response)
    assert message in text_of(response)
    assert response.context["form"].data["description"] == DESCRIPTION  # kept
    assert not Incident.objects.exists()
    assert events(Action.INCIDENT_OPENED) == []


def test_a_member_a_facilitator_and_an_admin_without_their_code_reach_no_incident_page(
    world, incident
):
    lantern = client_of(world.lantern.user)  # 2FA-verified facilitator
    river = client_of(world.river.user, verified=False)
    unverified_admin = client_of(world.admin, verified=False)
    urls = ["/audit/incidents/", "/audit/incidents/new/", *incident_urls(incident)]
    before = incident.__class__.objects.values().get(pk=incident.pk)
    step_events = len(events(Action.INCIDENT_SESSIONS_ENDED))
    for url in urls:
        for client in (lantern, river):
            assert client.get(url).status_code == 404, url
            assert client.post(url, {"confirm": "on", "scope": "everyone"}).status_code == 404, url
        for method in (unverified_admin.get, unverified_admin.post):
            response = method(url, {"confirm": "on", "scope": "everyone"})
            # Sent to sign in again with the code, never the page.
            assert response.status_code == 302, url
            assert response["Location"].startswith("/accounts/login/"), url
            unverified_admin = client_of(world.admin, verified=False)
    assert incident.__class__.objects.values().get(pk=incident.pk) == before
    assert len(events(Action.INCIDENT_SESSIONS_ENDED)) == step_events
    assert events(Action.INCIDENT_REPORT_EXPORTED) == []
