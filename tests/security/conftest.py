"""Fixtures for the hardening tests (issue 18): people, groups and places built through
the app's own services (the screening tests' builders), and clients that sign in through
the real pages."""

import pytest

# The accounts tests' people (owner_with_2fa: signed in, authenticator set up).
from tests.accounts.conftest import outsider, owner, owner_with_2fa  # noqa: F401
from tests.database import dump_every_table, events  # noqa: F401 - for the test modules
from tests.factories import CHEAP_PASSWORD_HASHERS
from tests.screening.conftest import World, appoint, give_place, make_group, make_person


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


@pytest.fixture
def admin(db):
    return make_person("site-keeper", staff=True)


@pytest.fixture
def world(admin) -> World:
    from groups.models import Topic

    group = make_group(admin, "Evening Grief Circle")
    other = make_group(admin, "Morning Recovery Room", topic=Topic.ADDICTION)
    return World(
        admin=admin,
        group=group,
        facilitator=appoint(group, make_person("fac-lantern"), "Lantern", actor=admin),
        co_facilitator=appoint(group, make_person("fac-beacon"), "Beacon", actor=admin),
        member=give_place(group, make_person("member-fox"), "Quiet Fox"),
        applicant=make_person("applicant-heron"),
        other_group=other,
        other_facilitator=appoint(other, make_person("fac-other"), "Harbour", actor=admin),
    )
