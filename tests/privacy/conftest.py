# The people and sign-in helpers of the account tests: a member's own data is theirs.
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from groups.models import Group, Membership
from meetings import services as meeting_services
from privacy import services as privacy_services
from tests.accounts.conftest import _cheap_argon2, admin_user, outsider, owner  # noqa: F401
from tests.audit.conftest import clock_shifted
from tests.factories import (
    PASSWORD,
    appoint,
    give_place,
    make_group,
    make_person,
    schedule,
    signed_in_client,
    submitted_application,
)

# What only River's account holds: it leaves the app only in a package River agreed to
# (or one the law required), never on another member's or facilitator's page.
RIVER_PHONE = "+44 7700 900123"
RIVER_EMERGENCY = "Sam Okafor (sister), 07700 900456"
RIVER_EMAIL = "river@example.org"
RECIPIENT = "Dr A. Patel, Riverside Clinic"
PURPOSE = "Continuity of care after the group ends."


@dataclass
class Scene:
    admin: User
    group: Group  # screened; River applied and has a place
    facilitator: Membership  # Lantern
    river: Membership
    fern: Membership  # another member of the group
    other_group: Group
    other_facilitator: Membership  # Beacon, of the other group
    other_member: Membership  # Heron, of the other group

    def client(self, user: User, *, verified: bool = True) -> Client:
        return signed_in_client(user, verified=verified)


@pytest.fixture
def scene(db) -> Scene:
    admin = make_person("site-keeper", staff=True)
    group = make_group(admin, "Evening Grief Circle", requires_screening=True)
    other_group = make_group(admin, "Morning Recovery Circle")
    facilitator = appoint(group, make_person("fac-lantern"), "Lantern", actor=admin)
    river_user = make_person(
        "member-river", email=RIVER_EMAIL, phone=RIVER_PHONE, emergency_contact=RIVER_EMERGENCY
    )
    submitted_application(group, river_user)
    river = give_place(group, river_user, "River")
    fern = give_place(group, make_person("member-fern"), "Fern")
    other_facilitator = appoint(other_group, make_person("fac-beacon"), "Beacon", actor=admin)
    other_member = give_place(other_group, make_person("member-heron"), "Heron")
    meeting = schedule(group, facilitator.user, title="Tuesday circle")
    meeting_services.presence_join(meeting=meeting, membership=river, channel_name="test.river")
    return Scene(
        admin=admin,
        group=group,
        facilitator=facilitator,
        river=river,
        fern=fern,
        other_group=other_group,
        other_facilitator=other_facilitator,
        other_member=other_member,
    )


def ask(scene: Scene, *, items=("attendance",), summary=None, days=30, membership=None):
    """Lantern asks River (or ``membership``) for consent, through the service."""
    return privacy_services.consent_request(
        actor=scene.facilitator.user,
        membership=membership or scene.river,
        items=list(items),
        recipient=RECIPIENT,
        purpose=PURPOSE,
        summary=summary,
        valid_until=timezone.localdate() + timedelta(days=days),
    )


def approve(consent):
    """River agrees to exactly what the page showed."""
    from privacy.packages import content_sha256

    return privacy_services.consent_approve(
        actor=consent.membership.user,
        consent=consent,
        shown_sha256=content_sha256(privacy_services.consent_preview(consent)),
    )


__all__ = ["PASSWORD", "Scene", "ask", "approve", "clock_shifted"]
