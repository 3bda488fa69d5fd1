"""Fixtures for the meetings tests: people, groups, places and meetings built through the
app's own services, and session cookies (plain, or 2FA-verified through the real sign-in
pages). The websocket wrapper and the fixtures socket tests need come from tests/sockets.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
from django.db import transaction
from django.test import Client

from accounts.models import TOTPDevice, User
from groups.models import Group, Membership, Retention
from meetings.models import Meeting
from supportgroups.realtime import broadcast_on_commit, user_group_name
from tests import factories
from tests.database import dump_every_table, events  # noqa: F401 - for the test modules
from tests.factories import (  # noqa: F401 - the builders, for the test modules
    PASSWORD,
    appoint,
    give_place,
    make_person,
    schedule,
    sign_in_through_pages,
    totp_code,
    totp_device,
)
from tests.sockets import (  # noqa: F401 - fixtures for pytest, the rest for the test modules
    CLOSE_MEMBERSHIP_CHANGED,
    CLOSE_NOT_ALLOWED,
    CLOSE_ROOM_CLOSED,
    CLOSE_SIGNED_OUT,
    Socket,
    _channel_layer_per_test,
    _cheap_argon2,
    close_worker_connections,
    cookie_of,
    room_path,
    run,
)

# --- people, groups, places -------------------------------------------------------------------


# Groups here keep their chat for 30 days unless a test says otherwise.
make_group = functools.partial(factories.make_group, retention=Retention.DAYS_30)


def set_status(membership: Membership, status: str, *, notify: bool = True) -> None:
    """What the moderation service will do when it exists: change the membership's status
    and, after commit, tell the person's sockets. (There is no moderation service yet, so
    the tests change the row directly and broadcast as groups.services does.)"""
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).update(status=status)
        if notify:
            broadcast_on_commit(
                user_group_name(membership.user_id),
                {"type": "group.membership_changed", "group": membership.group_id},
            )


# --- sessions ---------------------------------------------------------------------------------


def session_cookie(user: User) -> str:
    """A signed-in session made by force_login: never 2FA-verified."""
    client = Client()
    client.force_login(user)
    return cookie_of(client)


async def cookie(membership: Membership) -> str:
    """A session cookie of the membership's person (from async tests)."""
    return await run(session_cookie, membership.user)


def sign_in(user: User) -> Client:
    """Signed in the quick way (tests/factories.py), 2FA-verified when the person has an
    authenticator. Tests of signing in itself use ``sign_in_through_pages``."""
    verified = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    return factories.sign_in(Client(), user, verified=verified)


def sign_in_verified(user: User) -> Client:
    """A facilitator with an authenticator app, signed in with both steps."""
    return factories.sign_in(Client(), user, verified=True)


# --- the world most tests start from ----------------------------------------------------------


@dataclass
class World:
    admin: User
    group: Group
    facilitator: Membership
    river: Membership  # an active member
    fern: Membership  # another active member
    other_group: Group
    stranger: Membership  # an active member of the other group only
    meeting: Meeting  # open now

    @property
    def path(self) -> str:
        return room_path(self.meeting)


def build_world(**group_overrides) -> World:
    admin = make_person("site-keeper", staff=True)
    group = make_group(admin, **group_overrides)
    facilitator = appoint(group, make_person("fac-login-handle"), "Lantern", actor=admin)
    river = give_place(group, make_person("river-login-handle"), "River")
    fern = give_place(group, make_person("fern-login-handle"), "Fern")
    other_group = make_group(admin, "Morning Recovery Circle")
    stranger = give_place(other_group, make_person("stranger-login-handle"), "Stranger")
    meeting = schedule(group, facilitator.user)
    return World(admin, group, facilitator, river, fern, other_group, stranger, meeting)


@pytest.fixture
def world() -> World:
    return build_world()
