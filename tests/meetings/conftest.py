"""Fixtures for the meetings tests: people, groups, places and meetings built through the
app's own services, and session cookies (plain, or 2FA-verified through the real sign-in
pages). The websocket wrapper and the fixtures socket tests need come from tests/sockets.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts.models import User
from groups import services as group_services
from groups.models import Group, Membership, Retention, Role, Topic
from meetings import services as meeting_services
from meetings.models import Meeting
from supportgroups.realtime import broadcast_on_commit, user_group_name
from tests.database import dump_every_table, events  # noqa: F401 - for the test modules
from tests.factories import totp_code, totp_device
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

PASSWORD = "lantern harbour quietly 42"


# --- people, groups, places -------------------------------------------------------------------


def make_person(handle: str, *, staff: bool = False) -> User:
    return User.objects.create_user(username=handle, password=PASSWORD, is_staff=staff)


def make_group(actor: User, name: str = "Evening Grief Circle", **overrides) -> Group:
    fields = {
        "topic": Topic.GRIEF,
        "description": f"A gentle weekly space: {name}.",
        "eligibility": "Adults who have lost someone close.",
        "meeting_rhythm": "Tuesdays, 7-8:30 pm",
        "listed": True,
        "requires_screening": False,
        "retention": Retention.DAYS_30,
        "crisis_resources": "Call the Night Line on 0800 555 0199, any time.",
        "guidelines": ["What is shared here stays here.", "Speak from your own experience."],
        "agreement_text": "I keep what is said here confidential.",
        "agreement_summary": "Members keep what is shared confidential.",
    }
    fields.update(overrides)
    return group_services.group_create(actor=actor, name=name, **fields)


def give_place(group: Group, user: User, pseudonym: str | None = None) -> Membership:
    """A place in the group; with a pseudonym, also chosen and signed (active)."""
    membership = group_services.membership_create(group=group, user=user, actor=None, reason="test")
    if pseudonym is not None:
        membership = group_services.membership_take_place(
            membership=membership,
            pseudonym=pseudonym,
            typed_name=pseudonym,
            guidelines_acknowledged=True,
        )
    return membership


def appoint(group: Group, user: User, pseudonym: str, *, actor: User) -> Membership:
    membership = group_services.facilitator_appoint(group=group, actor=actor, user=user)
    return group_services.membership_take_place(
        membership=membership,
        pseudonym=pseudonym,
        typed_name=pseudonym,
        guidelines_acknowledged=True,
    )


def schedule(
    group: Group,
    actor: User,
    *,
    starts_in: timedelta = timedelta(minutes=-5),
    lasts: timedelta = timedelta(hours=1),
    title: str = "Tuesday meeting",
) -> Meeting:
    """One meeting; by default it started five minutes ago, so its room is open.

    The service takes it from a facilitator of the group: from the group's first one when
    ``actor`` (say the admin who made the group) is not one."""
    starts_at = timezone.now() + starts_in
    if not Membership.objects.filter(user=actor, group=group, role=Role.FACILITATOR).exists():
        facilitator = Membership.objects.filter(group=group, role=Role.FACILITATOR).first()
        if facilitator is None:
            facilitator = group_services.facilitator_appoint(group=group, actor=actor, user=actor)
        actor = facilitator.user
    return meeting_services.meeting_schedule(
        group=group,
        actor=actor,
        title=title,
        starts_at=starts_at,
        ends_at=starts_at + lasts,
    )[0]


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
    """Sign in through the login page (and, for people with an authenticator, its code)."""
    client = Client()
    response = client.post("/accounts/login/", {"login": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    if response["Location"] == "/accounts/login/two-factor/":
        code = totp_code(totp_device(user))
        response = client.post("/accounts/login/two-factor/", {"code": code})
        assert response.status_code == 302, response.content.decode()[:2000]
        assert response["Location"] != "/accounts/login/two-factor/"
    return client


def sign_in_verified(user: User) -> Client:
    """A facilitator with an authenticator app, signed in with both steps."""
    totp_device(user)
    return sign_in(user)


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
