"""Issue 18, point 14: the reset link's address, the 2FA redirects' caching, and
"Leave quickly" from another site."""

import re

import pytest
from django.conf import settings

from accounts.models import Session
from audit.events import Action
from tests.accounts.conftest import PASSWORD, log_in, new_client, signed_in
from tests.database import events
from tests.factories import totp_device

pytestmark = pytest.mark.django_db

EMAIL = "robin@mail.test"


@pytest.fixture
def owner_with_email(owner):
    owner.set_recovery_email(EMAIL)
    owner.recovery_email_verified = True
    owner.save()
    return owner


def test_the_reset_link_is_on_the_site_url_whatever_the_host_header(
    owner_with_email, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://groups.example.org"

    with django_capture_on_commit_callbacks(execute=True):
        new_client().post(
            "/accounts/password/reset/", {"email": EMAIL}, HTTP_HOST="testserver:8666"
        )

    (mail,) = mailoutbox
    links = re.findall(r"https?://\S+", mail.body)
    assert links and all(link.startswith("https://groups.example.org/") for link in links)
    assert "8666" not in mail.body and "testserver" not in mail.body


def test_the_email_confirmation_link_is_on_the_site_url_too(
    owner, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://groups.example.org"
    client = new_client()
    log_in(client, owner.username)

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/email/", {"email": EMAIL}, HTTP_HOST="testserver:8666")

    (mail,) = mailoutbox
    assert "https://groups.example.org/account/email/verify/" in mail.body
    assert "8666" not in mail.body


def test_the_two_factor_redirects_are_not_cached(owner):
    # A facilitator-level account (admin) without 2FA: every page sends them to set-up.
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    client = new_client()
    log_in(client, owner.username)

    to_set_up = client.get("/account/")

    assert to_set_up.status_code == 302
    assert to_set_up["Location"] == "/account/two-factor/set-up/"
    assert "no-store" in to_set_up["Cache-Control"]


def test_the_sign_in_again_redirect_is_not_cached(owner):
    # Signed in without the second factor that the account has now: signed out.
    client = new_client()
    log_in(client, owner.username)
    totp_device(owner)

    response = client.get("/account/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert "no-store" in response["Cache-Control"]


# --- Leave quickly --------------------------------------------------------------------------


def test_leave_quickly_from_another_site_signs_nobody_out(owner):
    client = new_client()
    log_in(client, owner.username)

    response = client.get("/leave/", headers={"sec-fetch-site": "cross-site"})

    # Still sent to the neutral page (harmless), but still signed in, everywhere.
    assert response.status_code == 302
    assert response["Location"] == settings.QUICK_EXIT_URL
    assert signed_in(client)
    assert Session.objects.filter(user=owner).exists()
    assert not events(Action.QUICK_EXIT)
    posted = client.post("/leave/", headers={"sec-fetch-site": "same-site"})
    assert posted.status_code == 204
    assert signed_in(client)


@pytest.mark.parametrize(
    ("method", "fetch_site", "status"),
    [
        ("post", "same-origin", 204),  # the page's script (click, Escape twice)
        ("get", "same-origin", 302),  # the link itself, without JavaScript
        ("get", "none", 302),  # typed or bookmarked
        ("get", None, 302),  # a browser that does not send the header
    ],
)
def test_leave_quickly_from_our_own_pages_signs_out_everywhere(owner, method, fetch_site, status):
    client, elsewhere = new_client(), new_client()
    log_in(client, owner.username)
    log_in(elsewhere, owner.username, PASSWORD)
    headers = {"sec-fetch-site": fetch_site} if fetch_site else {}

    response = getattr(client, method)("/leave/", headers=headers)

    assert response.status_code == status
    assert not signed_in(client) and not signed_in(elsewhere)
    assert len(events(Action.QUICK_EXIT)) == 1
