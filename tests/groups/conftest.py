"""Fixtures for the groups tests: people, groups and places built through the app's own
services, and clients that sign in through the real pages (password, then the 2FA code for
admins and facilitators)."""

from dataclasses import dataclass

import pytest
from django.test import Client

from accounts.models import TOTPDevice, User
from groups import services
from groups.models import Group, Membership, Topic
from tests.database import events  # noqa: F401 - for the test modules
from tests.factories import CHEAP_PASSWORD_HASHERS, totp_code, totp_device

PASSWORD = "lantern harbour quietly 42"


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


# --- people ---------------------------------------------------------------------------------


def make_person(handle, *, staff=False, superuser=False, **contact) -> User:
    user = User.objects.create_user(
        username=handle, password=PASSWORD, is_staff=staff or superuser, is_superuser=superuser
    )
    if contact:
        if "email" in contact:
            user.set_recovery_email(contact.pop("email"))
        for name, value in contact.items():
            setattr(user, name, value)
        user.save()
    return user


@pytest.fixture
def admin(db):
    return make_person("site-keeper", staff=True)


@pytest.fixture
def superuser(db):
    return make_person("root-keeper", superuser=True)


# --- groups and places ----------------------------------------------------------------------


def make_group(actor, name="Evening Grief Circle", **overrides) -> Group:
    fields = {
        "topic": Topic.GRIEF,
        "description": f"A gentle weekly space: {name}.",
        "eligibility": "Adults who have lost someone close.",
        "meeting_rhythm": "Tuesdays, 7-8:30 pm",
        "listed": True,
        "requires_screening": False,
        "crisis_resources": "Call your local emergency number.",
        "guidelines": ["What is shared here stays here.", "Speak from your own experience."],
        "agreement_text": "I keep what is said here confidential.",
        "agreement_summary": "Members keep what is shared confidential.",
    }
    fields.update(overrides)
    return services.group_create(actor=actor, name=name, **fields)


def give_place(group, user, pseudonym=None, *, actor=None) -> Membership:
    """A member's place; with a pseudonym, also chosen and signed (active)."""
    membership = services.membership_create(group=group, user=user, actor=actor, reason="test")
    if pseudonym is not None:
        membership = services.membership_take_place(
            membership=membership,
            pseudonym=pseudonym,
            typed_name=pseudonym,
            guidelines_acknowledged=True,
        )
    return membership


def appoint(group, user, pseudonym=None, *, actor) -> Membership:
    membership = services.facilitator_appoint(group=group, actor=actor, user=user)
    if pseudonym is not None:
        membership = services.membership_take_place(
            membership=membership,
            pseudonym=pseudonym,
            typed_name=pseudonym,
            guidelines_acknowledged=True,
        )
    return membership


# --- clients that sign in through the pages -----------------------------------------------------


def sign_in(user, *, two_factor=None, client=None) -> Client:
    """Sign in through the login page; with two_factor (default: when the person has an
    app), also through the code page. Returns the signed-in client."""
    client = client or Client()
    response = client.post("/accounts/login/", {"login": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    if two_factor is None:
        two_factor = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    if two_factor:
        assert response["Location"] == "/accounts/login/two-factor/", response["Location"]
        device = totp_device(user)
        response = client.post("/accounts/login/two-factor/", {"code": totp_code(device)})
        assert response.status_code == 302, response.content.decode()[:2000]
        assert response["Location"] != "/accounts/login/two-factor/"
    # Show (and so use up) the "signed in" message here, so pages compared or searched in
    # a test hold only what they hold for anyone. "/" is open even before 2FA set-up.
    client.get("/")
    return client


def sign_in_verified(user) -> Client:
    """An admin or facilitator, signed in with their second factor (set up if needed)."""
    totp_device(user)
    return sign_in(user, two_factor=True)


@dataclass
class Person:
    user: User
    client: Client


# --- audit --------------------------------------------------------------------------------------


def html(response) -> str:
    return response.content.decode()
