"""Fixtures for the accounts tests: people built through the app's own code, and helpers
that walk the real pages (login form, 2FA step, re-authentication) with Django's client."""

import re
import time
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.test import Client
from django_otp.oath import TOTP

from accounts.models import TOTPDevice, User
from tests.database import dump_every_table, events  # noqa: F401 - for the test modules
from tests.factories import CHEAP_PASSWORD_HASHERS, make_person

PASSWORD = "correct horse battery staple"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


# --- people -------------------------------------------------------------------------------


@pytest.fixture
def owner(db):
    return make_person("quiet-heron", password=PASSWORD)


@pytest.fixture
def outsider(db):
    return make_person("bold-otter", password=PASSWORD)


@pytest.fixture
def admin_user(db):
    return make_person("site-keeper", password=PASSWORD, staff=True)


@dataclass
class Enrolled:
    user: User
    client: Client
    device: TOTPDevice
    backup_codes: list[str]


@pytest.fixture
def owner_with_2fa(owner) -> Enrolled:
    """The owner, signed in, with an authenticator app set up through the pages."""
    client = new_client()
    assert log_in(client, owner.username).status_code == 302
    device, codes = enrol_two_factor(client, owner)
    return Enrolled(owner, client, device, codes)


# --- clients and pages ------------------------------------------------------------------


def new_client(user_agent=FIREFOX) -> Client:
    return Client(headers={"user-agent": user_agent})


def session_cookie(client) -> str | None:
    morsel = client.cookies.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel is not None and morsel.value else None


def log_in(client, handle, password=PASSWORD, **extra):
    """POST the real login form; the response is not followed."""
    return client.post("/accounts/login/", {"login": handle, "password": password, **extra})


def log_in_fully(client, user, *, code=None):
    """Password step, then (for people with 2FA) the code step. Returns the last response."""
    response = log_in(client, user.username)
    assert response.status_code == 302, response.content
    if response["Location"] == "/accounts/login/two-factor/":
        response = client.post("/accounts/login/two-factor/", {"code": code})
        assert response.status_code == 302, response.content
    return response


def signed_in_client(user, user_agent=FIREFOX) -> Client:
    """A browser that signed in through the login form (password only)."""
    client = new_client(user_agent)
    assert log_in(client, user.username).status_code == 302
    return client


def reauthenticate(client, password=PASSWORD):
    """allauth's "confirm it's you" step: counts as recently authenticated for 5 minutes."""
    response = client.post("/accounts/reauthenticate/", {"password": password})
    assert response.status_code == 302, response.content
    return response


def signed_in(client) -> bool:
    return client.get("/account/").status_code == 200


def normalise(html: str, *typed: str) -> str:
    """A page without what legitimately differs between two requests: the CSRF token,
    the CSP nonce, and the values the visitor typed."""
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', 'name="csrfmiddlewaretoken"', html)
    html = re.sub(r'nonce="[^"]*"', 'nonce=""', html)
    for value in typed:
        html = html.replace(f'value="{value}"', 'value="TYPED"')
    return html


# --- two-factor ------------------------------------------------------------------------------


def totp_code(device, *, step=None) -> str:
    """The code the person's app shows now (or at a given 30 s step)."""
    device = TOTPDevice.objects.get(pk=device.pk)
    totp = TOTP(bytes.fromhex(device.key), step=TOTPDevice.STEP, digits=TOTPDevice.DIGITS)
    if step is not None:
        totp.time = step * TOTPDevice.STEP
    return f"{totp.token():06d}"


def current_step() -> int:
    return int(time.time()) // TOTPDevice.STEP


def unused_totp_code(device) -> str:
    """A code the device has not accepted yet: now's, or the next step's (the app accepts
    one step of drift) when now's was already used."""
    device = TOTPDevice.objects.get(pk=device.pk)
    step = max(current_step(), device.last_t + 1)
    assert step <= current_step() + 1, "call allow_next_totp_login() first"
    return totp_code(device, step=step)


def allow_next_totp_login(device):
    """A code is accepted once per 30 s step, and a test cannot wait for the next steps.
    Moving the device's record of the last accepted step back is what time passing does."""
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=current_step() - 2)


def enrol_two_factor(client, user) -> tuple[TOTPDevice, list[str]]:
    """Walk the set-up page with a signed-in client; returns the device and backup codes."""
    page = client.get("/account/two-factor/set-up/")
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    response = client.post("/account/two-factor/set-up/", {"code": totp_code(device)})
    assert response.status_code == 200
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", response.content.decode())
    assert len(codes) == 10
    device.refresh_from_db()
    assert device.confirmed
    return device, codes


# --- the database, raw -----------------------------------------------------------------------


def decoded_sessions() -> str:
    """Session data is only signed and base64-encoded, not encrypted: read it as an
    attacker with the database would."""
    from accounts.models import Session

    store = Session.get_session_store_class()()
    return "\n".join(
        repr(store.decode(data)) for data in Session.objects.values_list("session_data", flat=True)
    )
