"""Fixtures for the groups tests: people, groups and places built through the app's own
services, and clients that sign in through the real pages (password, then the 2FA code for
admins and facilitators)."""

from dataclasses import dataclass

import pytest
from django.test import Client

from accounts.models import TOTPDevice, User
from tests import factories
from tests.database import events  # noqa: F401 - for the test modules
from tests.factories import (  # noqa: F401 - the builders, for the test modules
    CHEAP_PASSWORD_HASHERS,
    PASSWORD,
    appoint,
    give_place,
    make_group,
    make_person,
    sign_in_through_pages,
    totp_code,
    totp_device,
)


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


# --- people, groups and places (built in tests/factories.py) -----------------------------------


@pytest.fixture
def admin(db):
    return make_person("site-keeper", staff=True)


@pytest.fixture
def superuser(db):
    return make_person("root-keeper", superuser=True)


# --- clients that sign in through the pages -----------------------------------------------------


def sign_in(user, *, two_factor=None, client=None) -> Client:
    """Signed in the quick way (tests/factories.py); with two_factor (default: when the
    person has an app) the session passed the second factor too. Tests of signing in
    itself use ``sign_in_through_pages``."""
    client = client or Client()
    if two_factor is None:
        two_factor = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    return factories.sign_in(client, user, verified=two_factor)


def sign_in_verified(user) -> Client:
    """An admin or facilitator, signed in with their second factor (set up if needed)."""
    return sign_in(user, two_factor=True)


@dataclass
class Person:
    user: User
    client: Client


# --- audit --------------------------------------------------------------------------------------


def html(response) -> str:
    return response.content.decode()
