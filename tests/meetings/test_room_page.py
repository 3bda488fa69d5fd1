"""The room's page (/meetings/<id>/): members get the room with the guidelines and crisis
resources; others get a 404; members who must (re-)sign are sent to do so."""

from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.utils import dateformat, timezone

from groups import services as group_services
from groups.models import Membership, Status
from tests.meetings.conftest import (
    build_world,
    give_place,
    make_person,
    schedule,
    set_status,
    sign_in,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def page(membership_or_user, meeting):
    user = getattr(membership_or_user, "user", membership_or_user)
    client = Client()
    client.force_login(user)
    return client.get(f"/meetings/{meeting.pk}/")


def html(response) -> str:
    return response.content.decode()


def test_a_member_gets_the_room_with_guidelines_and_crisis_resources(world):
    response = page(world.river, world.meeting)
    assert response.status_code == 200
    body = html(response)
    assert f'data-socket-path="/ws/meetings/{world.meeting.pk}/"' in body
    assert "What is shared here stays here." in body
    assert "Speak from your own experience." in body
    assert "Call the Night Line on 0800 555 0199, any time." in body
    assert "River" in body  # "Message as River"
    assert 'aria-live="polite"' in body  # new messages are announced
    assert "river-login-handle" not in body
    assert "no-store" in response["Cache-Control"]


def test_a_facilitator_with_two_factor_gets_the_room(world):
    client = sign_in_verified(world.facilitator.user)
    response = client.get(f"/meetings/{world.meeting.pk}/")
    assert response.status_code == 200
    assert "Lantern" in html(response)


def test_a_muted_member_still_gets_the_room(world):
    set_status(world.river, Status.MUTED, notify=False)
    assert page(world.river, world.meeting).status_code == 200


def test_a_member_of_another_group_gets_404(world):
    assert page(world.stranger, world.meeting).status_code == 404


def test_someone_with_no_place_anywhere_gets_404(world):
    assert page(make_person("nobody-login-handle"), world.meeting).status_code == 404


@pytest.mark.parametrize("status", [Status.REMOVED, Status.LEFT])
def test_a_former_member_gets_404(world, status):
    set_status(world.river, status, notify=False)
    assert page(world.river, world.meeting).status_code == 404


def test_an_unknown_meeting_is_404(world):
    client = Client()
    client.force_login(world.river.user)
    assert client.get("/meetings/999999/").status_code == 404


def test_an_anonymous_visitor_is_sent_to_sign_in(world):
    response = Client().get(f"/meetings/{world.meeting.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_member_who_has_not_signed_the_new_agreement_is_sent_to_sign_it(world):
    group_services.agreement_publish(
        group=world.group, actor=world.admin, text="Version two: no screenshots, ever."
    )
    response = page(world.river, world.meeting)
    assert response.status_code == 302
    assert response["Location"] == f"/groups/{world.group.slug}/agreement/sign/"


def test_a_member_without_a_pseudonym_is_sent_to_take_their_place(world):
    pending = give_place(world.group, make_person("pending-login-handle"))
    response = page(pending, world.meeting)
    assert response.status_code == 302
    assert response["Location"] == f"/groups/{world.group.slug}/join/"


def test_a_suspended_member_is_told_so_and_still_sees_crisis_resources(world):
    set_status(world.river, Status.SUSPENDED, notify=False)
    response = page(world.river, world.meeting)
    assert response.status_code == 200
    body = html(response)
    assert "suspended" in body
    assert "data-socket-path" not in body
    assert "Call the Night Line" in body


def test_a_suspension_with_an_end_says_until_when(world):
    # "For now" left a frightened member guessing; the board already said until when.
    until = timezone.now() + timedelta(days=3)
    Membership.objects.filter(pk=world.river.pk).update(
        status=Status.SUSPENDED, suspended_until=until
    )
    body = unescape(html(page(world.river, world.meeting)))
    when = dateformat.format(timezone.localtime(until), "j M Y, H:i e")
    assert f"You are suspended from this group's meetings until {when}." in body
    assert "for now" not in body


def test_a_meeting_that_has_not_opened_says_when_it_opens(world):
    later = schedule(world.group, world.facilitator.user, starts_in=timedelta(days=2))
    response = page(world.river, later)
    assert response.status_code == 200
    body = html(response)
    assert "The room opens at" in body
    assert "data-socket-path" not in body


def test_a_meeting_that_has_ended_says_so(world):
    past = schedule(world.group, world.facilitator.user, starts_in=timedelta(hours=-3))
    response = page(world.river, past)
    assert response.status_code == 200
    assert "This meeting has ended." in html(response)
    assert "data-socket-path" not in html(response)


def test_the_members_page_is_not_shown_to_a_facilitator_without_two_factor(world):
    client = Client()
    client.force_login(world.facilitator.user)
    response = client.get(f"/meetings/{world.meeting.pk}/")
    assert response.status_code == 302
    assert "two-factor" in response["Location"]


def test_a_member_signed_in_through_the_pages_gets_the_room(world):
    client = sign_in(world.fern.user)
    assert client.get(f"/meetings/{world.meeting.pk}/").status_code == 200
