"""Security signals link to incidents (issue 23, point 5): a signal about an account or an
address offers "Open an incident", prefilled with what the signal saw; nothing is opened
until the admin sends the form."""

import pytest

from accounts import services as account_services
from console.models import Incident
from tests.console.conftest import client_of, text_of
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_a_signal_about_failed_sign_ins_offers_an_incident_prefilled(world, admin_client):
    lantern = world.lantern.user
    for _ in range(4):
        account_services.login_record_failure(
            handle=lantern.username, signed_in=None, ip="203.0.113.9"
        )

    signals = admin_client.get("/audit/signals/")
    link = f"/audit/incidents/new/?signal=failed_sign_ins&amp;account={lantern.username}"
    assert link in signals.content.decode()
    address_link = "/audit/incidents/new/?signal=failed_sign_ins_address&amp;address=203.0.113.9"
    assert address_link in signals.content.decode()

    page = admin_client.get(link.replace("&amp;", "&"))
    initial = page.context["form"].initial
    assert initial["accounts"] == lantern.username
    assert initial["title"] == "Many failed sign-ins against one account"
    assert "showed 4 failed sign-ins against the affected account" in initial["description"]
    # Only a start: nothing is opened until the admin sends the form.
    assert not Incident.objects.exists()
    response = admin_client.post(
        "/audit/incidents/new/",
        {
            "title": initial["title"],
            "description": initial["description"],
            "detected_at": initial["detected_at"].strftime("%Y-%m-%dT%H:%M"),
            "accounts": initial["accounts"],
        },
    )
    assert response.status_code == 302
    assert list(Incident.objects.get().affected_users.all()) == [lantern]

    by_address = admin_client.get(address_link.replace("&amp;", "&")).context["form"].initial
    # The incident's words outlive the audit rows that hold the address: they only say
    # it was one address.
    assert by_address["title"] == "Many failed sign-ins from one address"
    assert "from one address" in by_address["description"]
    assert "203.0.113.9" not in by_address["title"] + by_address["description"]


def test_only_admins_see_the_signals_and_their_links(world):
    for client in (client_of(world.lantern.user), client_of(world.river.user, verified=False)):
        assert client.get("/audit/signals/").status_code == 404
        assert (
            client.get(
                "/audit/incidents/new/?signal=failed_sign_ins&account=fac-lantern"
            ).status_code
            == 404
        )


def test_an_incident_opened_from_a_signal_keeps_no_handle_once_the_account_is_deleted(
    world, admin_client
):
    river = world.river.user
    handle = river.username
    for _ in range(3):
        account_services.login_record_failure(handle=handle, signed_in=None, ip="203.0.113.9")
    initial = (
        admin_client.get(f"/audit/incidents/new/?signal=failed_sign_ins&account={handle}")
        .context["form"]
        .initial
    )
    assert initial["accounts"] == handle
    assert handle not in initial["title"] and handle not in initial["description"]
    admin_client.post(
        "/audit/incidents/new/",
        {
            "title": initial["title"],
            "description": initial["description"],
            "detected_at": initial["detected_at"].strftime("%Y-%m-%dT%H:%M"),
            "accounts": initial["accounts"],
        },
    )
    incident = Incident.objects.get()
    # While the account exists, the incident's page names it among the affected accounts.
    assert handle in text_of(admin_client.get(f"/audit/incidents/{incident.pk}/"))

    member = client_of(river, verified=False)
    assert member.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    assert member.post("/account/delete/", {"confirm": "delete my account"}).status_code == 200

    incident.refresh_from_db()
    assert handle not in incident.title and handle not in incident.description
    assert not incident.affected_users.exists()
    assert handle not in text_of(admin_client.get(f"/audit/incidents/{incident.pk}/"))
    report = admin_client.get(f"/audit/incidents/{incident.pk}/report/")
    assert handle not in report.content.decode()
