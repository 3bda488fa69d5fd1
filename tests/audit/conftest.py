"""Fixtures for the audit console tests: people, groups, applications and reveals built
through the app's own services; clients that sign in through the real pages (password,
then the authenticator code for admins and facilitators); and a clock that can be moved.

Moving the clock: the log is append-only (PostgreSQL refuses UPDATE, and DELETE outside a
pruning), so an "old" event cannot be made by editing ``created_at`` afterwards. Instead
``clock_shifted`` moves Django's clock (``django.utils.timezone.now``) while the real
services run, exactly as if they had run that long ago (or later): ``record_event``
stamps the row with the shifted time and hashes it, so the chain stays honest.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass
from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import Event
from groups.models import Group, Membership
from moderation import services as moderation_services
from screening import services as screening_services
from screening.models import Application
from tests import factories
from tests.database import events  # noqa: F401 - for the test modules
from tests.factories import (  # noqa: F401 - the builders, for the test modules
    CHEAP_PASSWORD_HASHERS,
    PASSWORD,
    appoint,
    give_place,
    make_person,
    sign_in_through_pages,
    submitted_application,
    take_place,
    totp_code,
    totp_device,
)

RIVER_PHONE = "+44 7700 900123"
RIVER_EMERGENCY = "Sam Okafor (sister), 07700 900456"
REVEAL_REASON = "They told us they were unsafe tonight; we have a duty to warn."


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


# --- the clock --------------------------------------------------------------------------------


@contextlib.contextmanager
def clock_shifted(delta: timedelta):
    """Django's clock runs ``delta`` away from the real one inside the block."""
    real_now = timezone.now
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: real_now() + delta)
        yield


# --- people, groups, places -------------------------------------------------------------------


# Groups here are screened unless a test says otherwise.
make_group = functools.partial(factories.make_group, requires_screening=True)


def open_answers(application: Application, facilitator: Membership, ip: str | None = None):
    """What the review page does each time a facilitator opens an application."""
    screening_services.application_record_view(
        application=application, actor=facilitator.user, ip=ip
    )


def reveal(member: Membership, facilitator: Membership, ip: str | None = None):
    return moderation_services.contact_reveal(
        membership=member, actor=facilitator.user, reason=REVEAL_REASON, ip=ip
    )


# --- signing in through the pages -------------------------------------------------------------


def verified_client(user: User, **client_kwargs) -> Client:
    """Signed in with password and authenticator code, the quick way (tests/factories.py).
    Tests of what signing in records use ``sign_in_through_pages``."""
    return factories.sign_in(Client(**client_kwargs), user, verified=True)


def member_client(user: User) -> Client:
    return factories.sign_in(Client(), user, verified=False)


# --- the world most tests start from ----------------------------------------------------------


@dataclass
class World:
    admin: User  # staff, 2FA, confirmed recovery email
    group: Group  # "Evening Grief Circle", screened
    other_group: Group  # "Morning Recovery Circle"
    lantern: Membership  # facilitator of group, 2FA
    beacon: Membership  # facilitator of other_group, 2FA
    river: Membership  # member of group, with an emergency contact
    heron: User  # applicant to group
    wren: User  # applicant to other_group
    heron_application: Application
    wren_application: Application


def build_world() -> World:
    admin = make_person("site-keeper", staff=True, email="keeper@example.org")
    totp_device(admin)
    group = make_group(admin, "Evening Grief Circle")
    other_group = make_group(admin, "Morning Recovery Circle")
    lantern_user = make_person("fac-lantern", email="lantern.private@example.org")
    totp_device(lantern_user)
    lantern = appoint(group, lantern_user, "Lantern", actor=admin)
    beacon_user = make_person("fac-beacon")
    totp_device(beacon_user)
    beacon = appoint(other_group, beacon_user, "Beacon", actor=admin)
    river = give_place(
        group,
        make_person("river-handle", phone=RIVER_PHONE, emergency_contact=RIVER_EMERGENCY),
        "River",
    )
    heron = make_person("heron-applicant")
    wren = make_person("wren-applicant")
    return World(
        admin=admin,
        group=group,
        other_group=other_group,
        lantern=lantern,
        beacon=beacon,
        river=river,
        heron=heron,
        wren=wren,
        heron_application=submitted_application(group, heron),
        wren_application=submitted_application(other_group, wren),
    )


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.fixture
def admin_client(world) -> Client:
    """The admin, signed in with password and authenticator code."""
    return verified_client(world.admin)


# --- reading pages and the log ----------------------------------------------------------------


def text_of(response) -> str:  # noqa: ANN001
    """The page's visible text, tags dropped and whitespace collapsed."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def last_event() -> Event:
    return Event.objects.order_by("-seq").first()


def shown_seqs(response) -> list[int]:  # noqa: ANN001
    """The seq of each row the page lists, in page order."""
    return [event.seq for event, _ in response.context["rows"]]


def shown_lines(response) -> list[str]:  # noqa: ANN001
    """The plain-language line of each row the page lists, in page order."""
    return [text for _, text in response.context["rows"]]
