"""An incident's step for staff accounts: a new password and a new second factor at their
next sign-in, before anything else (pages, the Django admin, sockets)."""

import pytest

from accounts.models import TOTPDevice, User
from accounts.selectors import user_may_use_sockets
from audit.events import Action
from tests.console.conftest import client_of, events, open_incident, text_of
from tests.factories import PASSWORD, sign_in_through_pages, totp_code

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a completely new harbour lantern 93"


def fresh(user) -> User:
    return User.objects.get(pk=user.pk)


def test_affected_staff_must_renew_password_and_authenticator_before_anything_else(
    world, admin_client
):
    lantern = world.lantern.user
    incident = open_incident(world, users=[lantern, world.river.user, world.admin])
    old_device = TOTPDevice.objects.get(user=lantern)
    before = client_of(lantern)
    url = f"/audit/incidents/{incident.pk}/renew-credentials/"
    # Only staff, and never the admin taking the step.
    assert "Applies to: fac-lantern." in text_of(admin_client.get(url))

    response = admin_client.post(url, {"confirm": "on"})

    assert response["Location"] == f"/audit/incidents/{incident.pk}/"
    assert (
        fresh(lantern).password_renewal_required,
        fresh(lantern).two_factor_renewal_required,
    ) == (
        True,
        True,
    )
    for untouched in (world.river.user, world.admin):
        assert not fresh(untouched).password_renewal_required
    # Signed out now, everywhere.
    assert before.get("/account/")["Location"].startswith("/accounts/login/")
    [step] = events(Action.INCIDENT_CREDENTIALS_RENEWAL_REQUIRED)
    assert (step.actor_id, step.target_id, step.extra) == (
        world.admin.pk,
        str(incident.pk),
        {"accounts": 1},
    )
    [per_account] = events(Action.CREDENTIALS_RENEWAL_REQUIRED)
    assert (per_account.subject_id, per_account.target_id) == (lantern.pk, str(incident.pk))

    # The next sign-in, with the old password and code, proves it is still them ...
    client = sign_in_through_pages(lantern)
    assert not user_may_use_sockets(fresh(lantern), client.session)
    # ... and then every page (the facilitator's, the Django admin's) asks for a password.
    for path in ("/groups/mine/", "/moderation/", "/account/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == "/accounts/password/change/", path
    page = client.get("/accounts/password/change/")
    assert "choose a new password" in text_of(page)

    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert not fresh(lantern).password_renewal_required
    # Now the authenticator, before anything else.
    response = client.get("/groups/mine/")
    assert response["Location"] == "/account/two-factor/set-up/"
    page = client.get("/account/two-factor/set-up/")
    assert page.status_code == 200
    new_device = TOTPDevice.objects.get(user=lantern, confirmed=False)
    assert fresh(lantern).two_factor_renewal_required
    response = client.post("/account/two-factor/set-up/", {"code": totp_code(new_device)})
    assert "Your backup codes" in text_of(response)

    renewed = fresh(lantern)
    assert not renewed.two_factor_renewal_required
    assert list(TOTPDevice.objects.filter(user=lantern).values_list("pk", flat=True)) == [
        new_device.pk
    ]
    # The old authenticator no longer signs anyone in.
    assert not TOTPDevice.objects.filter(pk=old_device.pk).exists()
    assert client.get("/groups/mine/").status_code == 200
    assert user_may_use_sockets(renewed, client.session)
    assert renewed.check_password(NEW_PASSWORD)
    assert events(Action.PASSWORD_CHANGED)[-1].extra == {"renewal_required": True}
    assert events(Action.TWO_FACTOR_ENABLED)[-1].extra == {"renewal_required": True}


def test_an_incident_without_affected_staff_says_so(world, admin_client):
    incident = open_incident(world, users=[world.river.user])
    response = admin_client.post(
        f"/audit/incidents/{incident.pk}/renew-credentials/", {"confirm": "on"}
    )
    assert response.status_code == 400
    assert "None of the affected accounts is an admin or a facilitator." in text_of(response)
    assert events(Action.INCIDENT_CREDENTIALS_RENEWAL_REQUIRED) == []


def test_unconfirmed_it_changes_nobody(world, incident, admin_client):
    response = admin_client.post(f"/audit/incidents/{incident.pk}/renew-credentials/", {})
    assert response.status_code == 400
    assert "Tick the box to confirm." in text_of(response)
    assert not fresh(world.lantern.user).password_renewal_required
