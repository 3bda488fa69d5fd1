"""Issue 18, point 4: a facilitator meets the members' gate (a name chosen in the group and
its current agreement signed) before any private page of that group."""

import pytest
from django.contrib.messages import get_messages

from audit.events import Action
from groups import services as group_services
from meetings import services as meeting_services
from tests.database import events
from tests.screening.conftest import make_person, sign_in_verified, submitted

pytestmark = pytest.mark.django_db


def private_pages(group, application, meeting):
    slug = group.slug
    return [
        f"/moderation/{slug}/",
        f"/screening/review/{slug}/",
        f"/screening/review/{slug}/{application.pk}/",
        f"/screening/review/{slug}/questions/",
        f"/groups/{slug}/manage/",
        f"/meetings/group/{slug}/",
        f"/meetings/{meeting.pk}/attendance/",
    ]


@pytest.fixture
def scene(world):
    from datetime import timedelta

    from django.utils import timezone

    application = submitted(world.group, world.applicant)
    starts = timezone.now() + timedelta(days=1)
    (meeting,) = meeting_services.meeting_schedule(
        group=world.group,
        actor=world.facilitator.user,
        title="Tuesday circle",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        recurrence="none",
        occurrences=1,
    )
    return world, application, meeting


def test_a_facilitator_without_a_name_is_sent_to_choose_one(scene):
    world, application, meeting = scene
    newcomer = make_person("fac-newcomer")
    group_services.facilitator_appoint(group=world.group, actor=world.admin, user=newcomer)
    client = sign_in_verified(newcomer)

    for path in private_pages(world.group, application, meeting):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == f"/groups/{world.group.slug}/join/", path
        told = [str(m) for m in get_messages(response.wsgi_request)]
        assert any("choose your name" in m and world.group.name in m for m in told), told

    # Nor may they act through those pages.
    refused = client.post(
        f"/screening/review/{world.group.slug}/{application.pk}/", {"decision": "approve"}
    )
    assert refused.status_code == 302
    assert not events(Action.APPLICATION_ANSWERS_VIEWED, actor=newcomer)


def test_a_facilitator_who_has_not_signed_the_new_agreement_is_sent_to_sign(scene):
    world, application, meeting = scene
    group_services.agreement_publish(
        group=world.group, actor=world.co_facilitator.user, text="A second version."
    )
    client = sign_in_verified(world.facilitator.user)

    for path in private_pages(world.group, application, meeting):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == f"/groups/{world.group.slug}/agreement/sign/", path

    group_services.agreement_sign(
        actor=world.facilitator.user,
        group=world.facilitator.group,
        typed_name="Lantern",
        guidelines_acknowledged=True,
    )
    assert client.get(f"/moderation/{world.group.slug}/").status_code == 200


def test_a_facilitator_through_the_gate_sees_the_pages(scene):
    world, application, meeting = scene
    client = sign_in_verified(world.facilitator.user)

    for path in private_pages(world.group, application, meeting):
        assert client.get(path).status_code == 200, path
    assert events(Action.APPLICATION_ANSWERS_VIEWED, actor=world.facilitator.user)


def test_the_gate_is_per_group(scene):
    world, application, meeting = scene
    # Facilitating another group without a name there changes nothing here.
    group_services.facilitator_appoint(
        group=world.other_group, actor=world.admin, user=world.facilitator.user
    )
    client = sign_in_verified(world.facilitator.user)

    assert client.get(f"/moderation/{world.group.slug}/").status_code == 200
    assert client.get(f"/moderation/{world.other_group.slug}/")["Location"] == (
        f"/groups/{world.other_group.slug}/join/"
    )


def test_the_combined_dashboard_shows_a_gated_group_only_its_step(scene):
    world, application, meeting = scene
    group_services.facilitator_appoint(
        group=world.other_group, actor=world.admin, user=world.facilitator.user
    )
    client = sign_in_verified(world.facilitator.user)

    page = client.get("/moderation/").content.decode()

    assert f"/moderation/{world.group.slug}/" in page  # through the gate: counts
    assert f"/moderation/{world.other_group.slug}/" not in page
    assert f"/groups/{world.other_group.slug}/join/" in page
    assert "1</strong> application waiting" in page  # this group's, not the other's
    assert page.count('class="counts"') == 1


def test_outsiders_still_get_not_found(scene):
    world, application, meeting = scene
    client = sign_in_verified(world.other_facilitator.user)

    for path in private_pages(world.group, application, meeting):
        assert client.get(path).status_code == 404, path
