"""Fixtures for the moderation tests: people, groups, places, meetings and messages built
through the app's own services; sessions (members signed in plainly, facilitators through
the real password + authenticator pages); and the socket cookies those sessions give.
The websocket wrapper and the fixtures socket tests need come from tests/sockets.py.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html import unescape

import pytest
from django.db import connection
from django.test import Client

from accounts.models import User
from groups.models import Group, Membership, Retention
from meetings.models import Meeting, Message
from tests import factories
from tests.database import events  # noqa: F401 - for the test modules
from tests.factories import (  # noqa: F401 - the builders, for the test modules
    PASSWORD,
    appoint,
    give_place,
    make_person,
    post,
    schedule,
    sign_in_through_pages,
    submitted_application,
    totp_code,
    totp_device,
)
from tests.sockets import (  # noqa: F401 - fixtures for pytest, the rest for the test modules
    CLOSE_MEMBERSHIP_CHANGED,
    CLOSE_NOT_ALLOWED,
    CLOSE_ROOM_CLOSED,
    Socket,
    _channel_layer_per_test,
    _cheap_argon2,
    close_worker_connections,
    cookie_of,
    room_path,
    run,
)

TWO_FACTOR_SET_UP = "/account/two-factor/set-up/"

RULES = [
    "What is shared here stays here.",
    "Speak from your own experience; no advice unless asked.",
    "Be kind: never mock or judge anyone.",
]

# What only the account knows: it must never reach another member or facilitator, except
# the phone and emergency contact through the audited break-glass reveal.
RIVER_PHONE = "+44 7700 900123"
RIVER_EMERGENCY = "Sam Okafor (sister), 07700 900456"


# --- people, groups, places -------------------------------------------------------------------


# Groups here keep their chat for 30 days and have three rules, unless a test says otherwise.
make_group = functools.partial(factories.make_group, retention=Retention.DAYS_30, guidelines=RULES)


def fresh(obj):  # noqa: ANN001, ANN201
    return type(obj).objects.get(pk=obj.pk)


# --- sessions ---------------------------------------------------------------------------------


def member_client(user: User) -> Client:
    """A signed-in session (members need no second factor)."""
    return factories.sign_in(Client(), user, verified=False)


def verified_client(user: User) -> Client:
    """Signed in with password and authenticator code, the quick way (tests/factories.py).
    Tests of signing in itself use ``sign_in_through_pages``."""
    return factories.sign_in(Client(), user, verified=True)


# --- the world most tests start from ----------------------------------------------------------


@dataclass
class World:
    admin: User  # staff, with a confirmed recovery email
    group: Group
    facilitator: Membership  # "Lantern": 2FA, confirmed recovery email
    river: Membership  # member A
    fern: Membership  # member B
    other_group: Group
    # Facilitator of the other group and a plain member ("Harbour") of this one.
    other_facilitator: Membership
    harbour: Membership
    stranger: Membership  # member of the other group only
    meeting: Meeting  # open now
    fern_message: Message  # seq 1, by Fern
    river_message: Message  # seq 2, by River

    @property
    def slug(self) -> str:
        return self.group.slug

    @property
    def path(self) -> str:
        return room_path(self.meeting)


def build_world(**group_overrides) -> World:
    admin = make_person("site-keeper", staff=True, email="keeper@example.org")
    totp_device(admin)
    group = make_group(admin, **group_overrides)
    lantern_user = make_person("fac-login-handle", email="lantern.private@example.org")
    totp_device(lantern_user)
    facilitator = appoint(group, lantern_user, "Lantern", actor=admin)
    river = give_place(
        group,
        make_person(
            "river-login-handle",
            email="river.private@example.org",
            phone=RIVER_PHONE,
            emergency_contact=RIVER_EMERGENCY,
        ),
        "River",
    )
    fern = give_place(group, make_person("fern-login-handle"), "Fern")
    other_group = make_group(admin, "Morning Recovery Circle")
    beacon_user = make_person("beacon-login-handle", email="beacon.private@example.org")
    totp_device(beacon_user)
    other_facilitator = appoint(other_group, beacon_user, "Beacon", actor=admin)
    harbour = give_place(group, beacon_user, "Harbour")
    stranger = give_place(other_group, make_person("stranger-login-handle"), "Stranger")
    meeting = schedule(group, lantern_user)
    fern_message = post(meeting, fern, "Honestly, you are all pathetic.")
    river_message = post(meeting, river, "That hurt to read.")
    return World(
        admin=admin,
        group=group,
        facilitator=facilitator,
        river=river,
        fern=fern,
        other_group=other_group,
        other_facilitator=other_facilitator,
        harbour=harbour,
        stranger=stranger,
        meeting=meeting,
        fern_message=fern_message,
        river_message=river_message,
    )


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.fixture
def fac(world) -> Client:
    """Lantern, 2FA-verified."""
    return verified_client(world.facilitator.user)


@pytest.fixture
def unverified_facilitator(world) -> Membership:
    """A facilitator of the group who has not set up 2FA yet."""
    return appoint(world.group, make_person("ember-login-handle"), "Ember", actor=world.admin)


# --- pages ------------------------------------------------------------------------------------


def html(response) -> str:  # noqa: ANN001
    return unescape(response.content.decode())


def text_of(response) -> str:  # noqa: ANN001
    """The page's visible text, tags dropped and whitespace collapsed."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()
    return re.sub(r" ([,.;:)])", r"\1", text)


def urls(world: World, *, report_id: int = 1, flag_id: int = 1) -> dict[str, str]:
    slug, member = world.slug, world.fern.pk
    return {
        "dashboard": "/moderation/",
        "group": f"/moderation/{slug}/",
        "member": f"/moderation/{slug}/members/{member}/",
        "reveal": f"/moderation/{slug}/members/{member}/reveal/",
        "report": f"/moderation/{slug}/reports/{report_id}/",
        "handle_flag": f"/moderation/{slug}/flags/{flag_id}/handled/",
    }


# --- sockets ----------------------------------------------------------------------------------


async def member_cookie(membership: Membership) -> str:
    return await run(lambda: cookie_of(member_client(membership.user)))


async def facilitator_cookie(membership: Membership) -> str:
    return await run(lambda: cookie_of(verified_client(membership.user)))


# --- the database, raw ------------------------------------------------------------------------


def raw_rows(table: str) -> str:
    """Every column of every row of one table, as the database stores it."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {quote(table)}")
        return "\n".join(" | ".join(str(value) for value in row) for row in cursor.fetchall())
