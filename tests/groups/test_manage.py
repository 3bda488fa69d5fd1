"""Running groups: admins create them and appoint or remove facilitators; facilitators edit
their own group; 2FA is required for both; the Django admin's one identity-revealing page
says so and is audited."""

import re
from html import unescape

import pytest

from accounts.models import TOTPDevice
from audit.events import Action
from groups import services
from groups.models import Group, Retention, Role, Status, Topic
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

SET_UP = "/account/two-factor/set-up/"


def new_group_data(**overrides):
    data = {
        "name": "Thursday Carers Circle",
        "topic": Topic.CARERS,
        "description": "For people caring for a relative.",
        "eligibility": "Unpaid carers, any age over 16.",
        "meeting_rhythm": "Thursdays, 6 pm",
        "meeting_time_zone": "Europe/London",
        "listed": "on",
        "capacity": "10",
        "retention": Retention.DAYS_7,
        "crisis_resources": "Carers helpline: 0800 000 000.",
        "reapply_cooldown_days": "14",
        "guidelines": (
            "Confidentiality first.\n\n  Listen without judging.  \nNo advice unless asked."
        ),
        "agreement_text": "I will keep what I hear here to myself.",
        "agreement_summary": "Members keep what they hear confidential.",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


# --- creating groups ----------------------------------------------------------------------------


def test_an_admin_creates_a_group_with_guidelines_and_agreement_v1(admin):
    client = sign_in_verified(admin)
    assert client.get("/groups/new/").status_code == 200

    response = client.post("/groups/new/", new_group_data())

    group = Group.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/groups/{group.slug}/manage/"
    assert group.slug == "thursday-carers-circle"
    assert (group.topic, group.listed, group.capacity, group.retention) == (
        Topic.CARERS,
        True,
        10,
        Retention.DAYS_7,
    )
    assert group.reapply_cooldown_days == 14
    assert group.show_member_count is False
    assert group.requires_screening is False
    assert [(g.number, g.text) for g in group.guidelines.all()] == [
        (1, "Confidentiality first."),
        (2, "Listen without judging."),
        (3, "No advice unless asked."),
    ]
    [agreement] = group.agreements.all()
    assert (agreement.version, agreement.text, agreement.summary) == (
        1,
        "I will keep what I hear here to myself.",
        "Members keep what they hear confidential.",
    )
    [created] = events(Action.GROUP_CREATED)
    assert (created.actor_id, created.group_id, created.target_id) == (
        admin.pk,
        group.pk,
        str(group.pk),
    )
    [guidelines] = events(Action.GROUP_EDITED, group_id=group.pk)
    assert guidelines.extra == {"fields": ["guidelines"], "rules": 3}
    [published] = events(Action.AGREEMENT_PUBLISHED, group_id=group.pk)
    assert published.extra == {"version": 1}
    manage = html(client.get(response["Location"]))
    assert "Manage Thursday Carers Circle" in manage


def test_two_groups_with_one_name_get_different_addresses(admin):
    first = make_group(admin, "Evening Circle")
    second = make_group(admin, "Evening Circle")

    assert (first.slug, second.slug) == ("evening-circle", "evening-circle-2")


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"name": ""}, "This field is required."),
        ({"guidelines": "  \n \n"}, "This field is required."),
        ({"guidelines": "x" * 501}, "Each guideline can be at most 500 characters."),
        ({"agreement_text": ""}, "This field is required."),
        ({"topic": "astrology"}, "Select a valid choice."),
        ({"retention": "forever"}, "Select a valid choice."),
        ({"capacity": "-1"}, "Ensure this value is greater than or equal to 0."),
    ],
)
def test_a_group_with_bad_input_is_not_created(admin, overrides, field_error):
    client = sign_in_verified(admin)

    response = client.post("/groups/new/", new_group_data(**overrides))

    assert response.status_code == 200
    assert field_error in unescape(html(response))
    assert not Group.objects.exists()
    assert not events(Action.GROUP_CREATED)


# --- facilitators ------------------------------------------------------------------------------


@pytest.fixture
def group(admin):
    return make_group(admin)


def test_an_admin_appoints_a_facilitator_by_login_handle(admin, group):
    person = make_person("fac-one")
    client = sign_in_verified(admin)

    response = client.post(
        f"/groups/{group.slug}/manage/facilitators/", {"username": "  FAC-One "}, follow=True
    )

    assert "Facilitator appointed." in html(response)
    membership = group.memberships.get(user=person)
    assert (membership.role, membership.status, membership.pseudonym) == (
        Role.FACILITATOR,
        Status.PENDING_AGREEMENT,
        "",
    )
    [event] = events(Action.FACILITATOR_APPOINTED)
    assert (event.actor_id, event.subject_id, event.group_id, event.target_id) == (
        admin.pk,
        person.pk,
        group.pk,
        str(membership.pk),
    )
    # The manage page lists them without their handle.
    page = html(client.get(f"/groups/{group.slug}/manage/"))
    assert "(not chosen a name yet)" in page
    assert "fac-one" not in page.lower()


def test_appointing_an_unknown_handle_says_so(admin, group):
    client = sign_in_verified(admin)

    response = client.post(
        f"/groups/{group.slug}/manage/facilitators/", {"username": "nobody-here"}, follow=True
    )

    assert "No active account has that login handle." in html(response)
    assert not group.memberships.exists()
    assert not events(Action.FACILITATOR_APPOINTED)


def test_appointing_a_member_keeps_their_name(admin, group):
    person = make_person("member-one")
    membership = give_place(group, person, "Quiet Fox")

    services.facilitator_appoint(group=group, actor=admin, user=person)

    membership.refresh_from_db()
    assert (membership.role, membership.status, membership.pseudonym) == (
        Role.FACILITATOR,
        Status.ACTIVE,
        "Quiet Fox",
    )


def test_an_appointed_facilitator_must_set_up_two_factor_first(admin, group):
    person = make_person("fac-one")
    give_place(group, person, "Quiet Fox")
    client = sign_in(person)  # a member: no second factor needed yet
    assert client.get(f"/groups/{group.slug}/home/").status_code == 200

    services.facilitator_appoint(group=group, actor=admin, user=person)

    for path in (
        f"/groups/{group.slug}/manage/",
        f"/groups/{group.slug}/manage/agreement/",
        f"/groups/{group.slug}/agreement/",
        f"/groups/{group.slug}/agreement/sign/",
        "/groups/mine/",
        "/groups/",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == SET_UP, path
    refused = client.post(f"/groups/{group.slug}/manage/agreement/", {"text": "Hijack"})
    assert refused["Location"] == SET_UP
    assert group.agreements.count() == 1
    refused = client.post(f"/groups/{group.slug}/manage/invitations/", {"note": ""})
    assert refused["Location"] == SET_UP
    assert not group.invitations.exists()


@pytest.mark.parametrize("appointed_after_sign_in", [True, False])
def test_the_member_area_also_needs_two_factor_for_facilitators(
    admin, group, appointed_after_sign_in
):
    person = make_person("fac-one")
    if appointed_after_sign_in:
        give_place(group, person, "Quiet Fox")
        client = sign_in(person)
        services.facilitator_appoint(group=group, actor=admin, user=person)
    else:
        appoint(group, person, "Quiet Fox", actor=admin)
        client = sign_in(person, two_factor=False)

    response = client.get(f"/groups/{group.slug}/home/")

    assert (response.status_code, response.get("Location")) == (302, SET_UP)


def test_an_unverified_facilitator_signing_in_is_sent_to_set_up(admin, group):
    person = make_person("fac-one")
    appoint(group, person, actor=admin)
    client = sign_in(person, two_factor=False)

    response = client.get(f"/groups/{group.slug}/manage/")

    assert response.status_code == 302
    assert response["Location"] == SET_UP
    assert client.get(SET_UP).status_code == 200


def test_an_unverified_admin_is_sent_to_set_up(admin, group):
    client = sign_in(admin, two_factor=False)

    for path in ("/groups/new/", f"/groups/{group.slug}/manage/"):
        response = client.get(path)
        assert (response.status_code, response["Location"]) == (302, SET_UP)
    refused = client.post("/groups/new/", new_group_data())
    assert refused["Location"] == SET_UP
    assert Group.objects.count() == 1


def test_a_facilitator_with_two_factor_reaches_the_manage_page(admin, group):
    person = make_person("fac-one")
    appoint(group, person, "Lantern", actor=admin)
    client = sign_in_verified(person)

    response = client.get(f"/groups/{group.slug}/manage/")

    assert response.status_code == 200
    page = html(response)
    assert "Manage Evening Grief Circle" in page
    # Facilitators may not appoint or remove facilitators.
    assert "/manage/facilitators/" not in page


def test_an_admin_removes_a_facilitator(admin, group):
    person = make_person("fac-one")
    membership = appoint(group, person, "Lantern", actor=admin)
    facilitator_client = sign_in_verified(person)
    client = sign_in_verified(admin)

    response = client.post(
        f"/groups/{group.slug}/manage/facilitators/{membership.pk}/remove/", follow=True
    )

    assert "Lantern is no longer a facilitator." in html(response)
    membership.refresh_from_db()
    assert (membership.role, membership.status) == (Role.MEMBER, Status.ACTIVE)
    [event] = events(Action.FACILITATOR_REMOVED)
    assert (event.actor_id, event.subject_id, event.group_id, event.target_id) == (
        admin.pk,
        person.pk,
        group.pk,
        str(membership.pk),
    )
    assert facilitator_client.get(f"/groups/{group.slug}/manage/").status_code == 404
    assert facilitator_client.get(f"/groups/{group.slug}/home/").status_code == 200
    # Removing again: there is no such facilitator any more.
    again = client.post(f"/groups/{group.slug}/manage/facilitators/{membership.pk}/remove/")
    assert again.status_code == 404


# --- editing -------------------------------------------------------------------------------------


def edit_data(group, **overrides):
    data = {
        "name": group.name,
        "topic": group.topic,
        "description": group.description,
        "eligibility": group.eligibility,
        "meeting_rhythm": group.meeting_rhythm,
        "meeting_time_zone": group.meeting_time_zone,
        "listed": "on" if group.listed else None,
        "requires_screening": "on" if group.requires_screening else None,
        "capacity": "" if group.capacity is None else str(group.capacity),
        "show_member_count": "on" if group.show_member_count else None,
        "retention": group.retention,
        "crisis_resources": group.crisis_resources,
        "reapply_cooldown_days": str(group.reapply_cooldown_days),
        "guidelines": "\n".join(g.text for g in group.guidelines.all()),
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


@pytest.fixture
def facilitator(admin, group):
    person = make_person("fac-one")
    appoint(group, person, "Lantern", actor=admin)
    return person


def test_a_facilitator_edits_their_group_audited(group, facilitator):
    client = sign_in_verified(facilitator)
    form = client.get(f"/groups/{group.slug}/manage/edit/")
    assert form.status_code == 200
    assert "What is shared here stays here.\nSpeak from your own experience." in html(form)

    response = client.post(
        f"/groups/{group.slug}/manage/edit/",
        edit_data(group, meeting_rhythm="Wednesdays, 8 pm", show_member_count="on", capacity="8"),
    )

    assert response.status_code == 302
    group.refresh_from_db()
    assert (group.meeting_rhythm, group.show_member_count, group.capacity) == (
        "Wednesdays, 8 pm",
        True,
        8,
    )
    [event] = events(Action.GROUP_EDITED, actor_id=facilitator.pk)
    assert event.group_id == group.pk
    assert sorted(event.extra["fields"]) == ["capacity", "meeting_rhythm", "show_member_count"]
    assert [g.text for g in group.guidelines.all()] == [
        "What is shared here stays here.",
        "Speak from your own experience.",
    ]


def test_editing_guidelines_renumbers_them_audited(group, facilitator):
    client = sign_in_verified(facilitator)

    client.post(
        f"/groups/{group.slug}/manage/edit/",
        edit_data(group, guidelines="Be kind.\nWhat is shared here stays here.\nNo recording."),
    )

    assert [(g.number, g.text) for g in group.guidelines.all()] == [
        (1, "Be kind."),
        (2, "What is shared here stays here."),
        (3, "No recording."),
    ]
    [event] = events(Action.GROUP_EDITED, actor_id=facilitator.pk)
    assert event.extra == {"fields": ["guidelines"], "rules": 3}


def test_saving_without_changes_records_nothing(group, facilitator):
    client = sign_in_verified(facilitator)

    response = client.post(f"/groups/{group.slug}/manage/edit/", edit_data(group))

    assert response.status_code == 302
    assert not events(Action.GROUP_EDITED, actor_id=facilitator.pk)


def test_bad_edits_are_refused_and_nothing_changes(group, facilitator):
    client = sign_in_verified(facilitator)

    response = client.post(
        f"/groups/{group.slug}/manage/edit/", edit_data(group, name="", guidelines="")
    )

    assert response.status_code == 200
    # Each at its field and again in the summary at the top of the form.
    assert html(response).count("This field is required.") == 2 * 2
    group.refresh_from_db()
    assert group.name == "Evening Grief Circle"
    assert group.guidelines.count() == 2
    assert not events(Action.GROUP_EDITED, actor_id=facilitator.pk)


# --- the Django admin ----------------------------------------------------------------------


def test_opening_a_membership_in_the_django_admin_is_recorded(superuser, group):
    person = make_person("member-one")
    membership = give_place(group, person, "Quiet Fox")
    client = sign_in_verified(superuser)

    response = client.get(f"/admin/groups/membership/{membership.pk}/change/")

    assert response.status_code == 200
    page = unescape(html(response))
    assert "It is recorded in the access log and the member can see that it happened." in page
    assert f"account {person.pk}" in page  # the account behind the pseudonym
    [event] = events(Action.MEMBERSHIP_IDENTITY_VIEWED)
    assert (event.actor_id, event.subject_id, event.group_id, event.target_id) == (
        superuser.pk,
        person.pk,
        group.pk,
        str(membership.pk),
    )
    assert event.ip  # admins can later see where it came from
    # The member sees it under "Who has seen my data".
    activity = unescape(html(sign_in(person).get("/account/activity/")))
    assert "An administrator looked up which account is behind your place" in activity


def test_the_membership_list_in_the_django_admin_shows_no_accounts(superuser, group):
    person = make_person("member-one")
    give_place(group, person, "Quiet Fox")
    client = sign_in_verified(superuser)

    response = client.get("/admin/groups/membership/")

    assert response.status_code == 200
    assert "Quiet Fox" in html(response)
    assert "member-one" not in html(response)
    assert f"account {person.pk}" not in html(response)
    assert not events(Action.MEMBERSHIP_IDENTITY_VIEWED)


def test_an_unverified_superuser_sees_no_membership_and_nothing_is_recorded(superuser, group):
    membership = give_place(group, make_person("member-one"), "Quiet Fox")
    TOTPDevice.objects.filter(user=superuser).delete()
    client = sign_in(superuser, two_factor=False)

    response = client.get(f"/admin/groups/membership/{membership.pk}/change/")

    assert response.status_code == 302
    assert "member-one" not in html(response)
    assert not events(Action.MEMBERSHIP_IDENTITY_VIEWED)


def test_an_admin_without_permission_to_view_memberships_records_nothing(admin, group):
    """Staff without the view permission get 403: nothing was shown, so the member must not
    be told that an administrator looked."""
    membership = give_place(group, make_person("member-one"), "Quiet Fox")
    client = sign_in_verified(admin)

    response = client.get(f"/admin/groups/membership/{membership.pk}/change/")

    assert response.status_code == 403
    assert not events(Action.MEMBERSHIP_IDENTITY_VIEWED)


def test_the_manage_page_never_shows_invitation_tokens_or_handles(admin, group, facilitator):
    _, token = services.invitation_create(group=group, actor=facilitator, note="clinic")
    give_place(group, make_person("member-one"), "Quiet Fox")
    client = sign_in_verified(admin)

    page = html(client.get(f"/groups/{group.slug}/manage/"))

    assert token not in page
    assert not re.search(r"member-one|fac-one|site-keeper", page)
