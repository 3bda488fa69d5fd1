"""Fixtures for the board tests: a group with a facilitator and two members, and the
outsiders of the issue, all built through the apps' own services."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from accounts.models import User
from board import services
from board.models import Thread
from groups import services as group_services
from groups.models import Group, Membership
from moderation import services as moderation_services
from tests.database import dump_every_table, events  # noqa: F401 - for the test modules
from tests.factories import (  # noqa: F401 - the builders, for the test modules
    CHEAP_PASSWORD_HASHERS,
    appoint,
    give_place,
    make_group,
    make_person,
    signed_in_client,
    submitted_application,
)


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


@dataclass
class Scene:
    admin: User
    group: Group
    other_group: Group
    facilitator: Membership  # Lantern
    ash: Membership
    birch: Membership
    other_member: Membership  # in the other group only
    other_facilitator: Membership

    def start(self, membership: Membership, title="A hard night", body="I could not sleep."):
        return services.thread_start(
            actor=membership.user, group=membership.group, title=title, body=body
        )


@pytest.fixture
def scene(db) -> Scene:
    admin = make_person("site-keeper", staff=True)
    group = make_group(admin, "Evening Grief Circle")
    other_group = make_group(admin, "Morning Recovery Circle")
    return Scene(
        admin=admin,
        group=group,
        other_group=other_group,
        facilitator=appoint(group, make_person("fac-lantern"), "Lantern", actor=admin),
        ash=give_place(group, make_person("member-ash"), "Ash"),
        birch=give_place(group, make_person("member-birch"), "Birch"),
        other_member=give_place(other_group, make_person("member-cedar"), "Cedar"),
        other_facilitator=appoint(other_group, make_person("fac-beacon"), "Beacon", actor=admin),
    )


def take_step(scene: Scene, membership: Membership, kind: str, **kwargs) -> None:
    """A facilitator's moderation step, through moderation's service."""
    moderation_services.action_take(
        membership=membership, actor=scene.facilitator.user, kind=kind, guideline_number=1, **kwargs
    )


def publish_new_agreement(scene: Scene) -> None:
    group_services.agreement_publish(
        group=scene.group, actor=scene.facilitator.user, text="Version two: still confidential."
    )


def thread_count(group: Group) -> int:
    return Thread.objects.filter(group=group).count()
