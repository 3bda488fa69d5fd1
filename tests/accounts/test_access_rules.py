"""Who reaches what: visitors are sent to sign in, admins reach nothing sensitive before
their second factor, and a session that skipped the second factor is ended."""

import pytest
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.models import Session, TOTPDevice, User
from audit.events import Action
from audit.models import Event
from tests.accounts.conftest import (
    PASSWORD,
    enrol_two_factor,
    log_in,
    new_client,
    reauthenticate,
    signed_in,
    unused_totp_code,
)

pytestmark = pytest.mark.django_db

PRIVACY_CENTRE_PAGES = [
    "/account/",
    "/account/contact/",
    "/account/email/",
    "/account/sessions/",
    "/account/activity/",
    "/account/export/",
    "/account/delete/",
    "/account/two-factor/",
    "/account/two-factor/set-up/",
]
POST_ONLY = ["/account/two-factor/turn-off/", "/account/two-factor/backup-codes/"]
SENSITIVE_PAGES = [
    "/admin/",
    "/admin/accounts/user/",
    "/accounts/password/change/",
    *[page for page in PRIVACY_CENTRE_PAGES if page != "/account/two-factor/set-up/"],
]


# --- visitors -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PRIVACY_CENTRE_PAGES, "/accounts/password/change/"])
def test_it_sends_a_visitor_to_sign_in_from_every_private_page(db, path):
    response = new_client().get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


@pytest.mark.parametrize("path", [*PRIVACY_CENTRE_PAGES, *POST_ONLY])
def test_it_changes_nothing_for_a_visitors_post(db, path):
    response = new_client().post(path, {"end": "all", "confirm": "delete my account"})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_sends_a_visitor_from_the_code_step_back_to_the_password(db):
    response = new_client().get("/accounts/login/two-factor/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"


def test_it_keeps_private_pages_out_of_caches(owner):
    client = new_client()
    log_in(client, owner.username)

    for path in PRIVACY_CENTRE_PAGES:
        assert "no-store" in client.get(path)["Cache-Control"], path


# --- admins must use a second factor --------------------------------------------------------


def test_it_sends_an_admin_without_2fa_to_set_it_up_from_every_sensitive_page(admin_user):
    client = new_client()
    assert log_in(client, admin_user.username).status_code == 302

    for path in SENSITIVE_PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == "/account/two-factor/set-up/", path
    page = client.get("/account/two-factor/set-up/")
    assert page.status_code == 200
    assert "Your role needs two-factor authentication." in page.content.decode()
    # Posts are stopped just the same.
    client.post("/account/contact/", {"phone": "+44 7700 900123", "emergency_contact": ""})
    admin_user.refresh_from_db()
    assert admin_user.phone is None


def test_it_lets_an_admin_in_once_2fa_is_set_up(admin_user):
    client = new_client()
    log_in(client, admin_user.username)

    enrol_two_factor(client, admin_user)

    assert client.get("/admin/").status_code == 200
    reauthenticate(client)  # export and delete ask for the password again
    for path in SENSITIVE_PAGES:
        # Past the 2FA rule; the user list then needs model permissions this admin lacks.
        expected = 403 if path == "/admin/accounts/user/" else 200
        assert client.get(path).status_code == expected, path


def test_it_asks_an_admin_with_2fa_for_the_code_before_the_admin(admin_user):
    first = new_client()
    log_in(first, admin_user.username)
    device, _ = enrol_two_factor(first, admin_user)
    client = new_client()

    response = log_in(client, admin_user.username, next="/admin/")

    assert response["Location"] == "/accounts/login/two-factor/"
    assert client.get("/admin/").status_code == 302
    done = client.post("/accounts/login/two-factor/", {"code": unused_totp_code(device)})
    assert done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_it_shows_admins_handles_but_no_contact_details(owner):
    superuser = User.objects.create_superuser(username="head-keeper", password=PASSWORD)
    owner.phone = "+44 7700 900123"
    owner.set_recovery_email("robin.example@mail.test")
    owner.save()
    client = new_client()
    log_in(client, superuser.username)
    enrol_two_factor(client, superuser)

    listing = client.get("/admin/accounts/user/").content.decode()
    detail = client.get(f"/admin/accounts/user/{owner.pk}/change/").content.decode()

    assert owner.username in listing
    for page in (listing, detail):
        assert "7700" not in page
        assert "robin.example" not in page


def test_it_keeps_members_out_of_the_admin(owner):
    client = new_client()
    log_in(client, owner.username)

    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/accounts/user/").status_code == 302
    assert client.get(f"/admin/accounts/user/{owner.pk}/change/").status_code == 302


def test_it_refuses_a_member_at_the_admin_instead_of_looping(owner):
    client = new_client()
    log_in(client, owner.username)

    response = client.get("/admin/", follow=True)

    assert response.status_code in (403, 404)


def test_it_offers_2fa_to_members_without_requiring_it(owner):
    client = new_client()
    log_in(client, owner.username)

    page = client.get("/account/two-factor/").content.decode()

    assert "/account/two-factor/set-up/" in page
    assert "Your role needs it" not in page
    assert client.get("/account/sessions/").status_code == 200


# --- sessions that skipped the second factor ----------------------------------------------------


def test_it_ends_a_session_of_someone_with_2fa_that_was_never_verified(owner_with_2fa):
    # A session signed in without the code step (as one left over from before 2FA was
    # turned on would be).
    client = new_client()
    client.force_login(owner_with_2fa.user)
    key = client.session.session_key

    response = client.get("/account/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert "Please sign in again with your authenticator app." in (
        client.get(response["Location"]).content.decode()
    )
    assert not Session.objects.filter(session_key=key).exists()
    assert signed_in(owner_with_2fa.client)  # the verified session carries on
    # Through the session service: audited as a sign-out by the rule (no actor).
    [ended] = Event.objects.filter(action=Action.LOGGED_OUT, subject=owner_with_2fa.user)
    assert ended.actor_id is None and ended.extra == {"two_factor_not_verified": True}


def test_it_does_not_let_an_unverified_session_replace_the_authenticator(owner_with_2fa):
    user, device = owner_with_2fa.user, owner_with_2fa.device
    client = new_client()
    client.force_login(user)

    response = client.get("/account/two-factor/set-up/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert list(TOTPDevice.objects.filter(user=user)) == [device]
    assert not signed_in(client)


def test_it_marks_the_session_verified_only_through_the_code_step(owner_with_2fa):
    client = new_client()
    log_in(client, owner_with_2fa.user.username)

    # Between the steps the session holds no device and nobody is signed in.
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert "_auth_user_id" not in client.session
