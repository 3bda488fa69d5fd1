"""Invitations: a facilitator makes a single-use link, shown once and stored hashed; it
gives one person a place, once, before it expires, and never beyond the group's capacity."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.utils import timezone

from audit.events import Action
from groups import services
from groups.models import Invitation, Membership, Role, Status
from tests.groups.conftest import (
    appoint,
    events,
    give_place,
    html,
    make_group,
    make_person,
    sign_in,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db

NOTE = "referral from the Tuesday clinic"


@pytest.fixture
def group(admin):
    return make_group(admin, listed=False)


@pytest.fixture
def facilitator(admin, group):
    user = make_person("fac-one")
    appoint(group, user, "Lantern", actor=admin)
    return user


@pytest.fixture
def token(group, facilitator):
    _, token = services.invitation_create(group=group, actor=facilitator, note=NOTE)
    return token


def accept(client, token):
    return client.post(f"/groups/invitation/{token}/")


def test_a_facilitator_creates_a_link_shown_once_and_stored_hashed(group, facilitator):
    client = sign_in_verified(facilitator)

    response = client.post(f"/groups/{group.slug}/manage/invitations/", {"note": NOTE})

    assert response.status_code == 200
    match = re.search(r'data-testid="invitation-link">([^<]+)</code>', html(response))
    assert match
    link = match.group(1)
    token = re.fullmatch(r"http://testserver/groups/invitation/([^/]+)/", link).group(1)
    invitation = Invitation.objects.get()
    assert invitation.group == group
    assert invitation.note == NOTE
    assert invitation.created_by == facilitator
    assert invitation.used_at is None
    assert invitation.token_hash != token and token not in invitation.token_hash
    assert timedelta(days=13) < invitation.expires_at - timezone.now() <= timedelta(days=14)
    [event] = events(Action.MEMBERSHIP_CHANGED, group_id=group.pk)
    assert event.actor_id == facilitator.pk
    assert event.extra == {"invitation": "created"}
    assert token not in str(event.extra) and NOTE not in str(event.extra)
    # Shown once: the manage page does not show it again.
    assert token not in html(client.get(f"/groups/{group.slug}/manage/"))


def test_a_long_note_is_refused(group, facilitator):
    client = sign_in_verified(facilitator)

    response = client.post(
        f"/groups/{group.slug}/manage/invitations/", {"note": "x" * 101}, follow=True
    )

    assert "Please keep the note under 100 characters." in html(response)
    assert not Invitation.objects.exists()


def test_an_invited_person_accepts_and_takes_a_place(group, token):
    person = make_person("new-person")
    client = sign_in(person)

    page = client.get(f"/groups/invitation/{token}/")
    assert page.status_code == 200
    text = unescape(html(page))
    assert f"You're invited to {group.name}" in text
    assert "What is shared here stays here." in text  # the guidelines, before joining
    assert NOTE not in text  # the note is for facilitators only

    response = accept(client, token)

    assert response.status_code == 302
    assert response["Location"] == f"/groups/{group.slug}/join/"
    membership = Membership.objects.get(group=group, user=person)
    assert (membership.role, membership.status, membership.pseudonym) == (
        Role.MEMBER,
        Status.PENDING_AGREEMENT,
        "",
    )
    assert Invitation.objects.get().used_at is not None
    [event] = events(Action.MEMBERSHIP_CREATED, subject_id=person.pk)
    assert (event.actor_id, event.group_id, event.target_id, event.extra) == (
        person.pk,
        group.pk,
        str(membership.pk),
        {"via": "invitation"},
    )


def test_an_invitation_works_once(group, token):
    first = make_person("new-person")
    accept(sign_in(first), token)
    second = make_person("second-person")
    client = sign_in(second)

    page = client.get(f"/groups/invitation/{token}/")
    assert "This invitation has expired or has already been used." in html(page)
    assert "Accept the invitation" not in html(page)
    response = accept(client, token)

    assert response.status_code == 200
    assert "This invitation has expired or has already been used." in html(response)
    assert not Membership.objects.filter(user=second).exists()
    assert not events(Action.MEMBERSHIP_CREATED, subject_id=second.pk)


def test_an_invitation_expires(group, token):
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    person = make_person("new-person")
    client = sign_in(person)

    assert "has expired" in html(client.get(f"/groups/invitation/{token}/"))
    response = accept(client, token)

    assert "This invitation has expired or has already been used." in html(response)
    assert not Membership.objects.filter(user=person).exists()


def test_accepting_with_a_place_already_says_so_and_keeps_the_invitation(group, token):
    person = make_person("new-person")
    give_place(group, person, "Quiet Fox")
    client = sign_in(person)

    response = accept(client, token)

    assert response.status_code == 200
    assert "You already have a place in this group." in html(response)
    assert Invitation.objects.get().used_at is None  # still usable by whoever it was for
    membership = Membership.objects.get(user=person)
    assert (membership.status, membership.pseudonym) == (Status.ACTIVE, "Quiet Fox")
    assert len(events(Action.MEMBERSHIP_CREATED, subject_id=person.pk)) == 1


def test_a_full_group_takes_nobody_more(admin, facilitator):
    full = make_group(admin, "Small Circle", capacity=2)
    appoint(full, make_person("fac-two"), "Beacon", actor=admin)  # facilitators don't count
    give_place(full, make_person("member-one"), "Quiet Fox")
    give_place(full, make_person("member-two"))  # a place held, not yet signed
    _, token = services.invitation_create(group=full, actor=admin)
    person = make_person("new-person")
    client = sign_in(person)

    response = accept(client, token)

    assert response.status_code == 200
    assert "This group is full" in html(response)
    assert not Membership.objects.filter(user=person).exists()
    assert Invitation.objects.get(group=full).used_at is None

    # Once someone leaves, there is room again.
    services.membership_leave(
        actor=Membership.objects.get(user__username="member-one").user,
        group=Membership.objects.get(user__username="member-one").group,
    )
    assert accept(client, token).status_code == 302
    assert Membership.objects.get(user=person).status == Status.PENDING_AGREEMENT


def test_an_unknown_invitation_is_404(group):
    client = sign_in(make_person("new-person"))

    assert client.get("/groups/invitation/not-a-token/").status_code == 404
    assert accept(client, "not-a-token").status_code == 404


def test_signing_in_comes_first(token):
    response = Client().get(f"/groups/invitation/{token}/")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/groups/invitation/{token}/"
    assert Client().post(f"/groups/invitation/{token}/").status_code == 302
    assert Invitation.objects.get().used_at is None
