"""Who may open what, for every groups view: outsiders and wrong roles get a 404 (never a
403, which would confirm that a private group or a membership exists), anonymous visitors
are sent to sign in, and a refused request changes nothing."""

import re
from dataclasses import dataclass

import pytest
from django.test import Client

from audit.models import Event
from groups import services
from groups.models import Group, Membership, Topic
from tests.groups.conftest import (
    appoint,
    give_place,
    html,
    make_group,
    make_person,
    sign_in,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db


@dataclass
class World:
    admin: object
    a: Group
    b: Group
    fac_a: Membership
    mem_a: Membership
    fac_b: Membership
    mem_b: Membership
    outsider: object


@pytest.fixture
def world(admin):
    a = make_group(admin, "Group Alpha", topic=Topic.GRIEF)
    b = make_group(admin, "Group Bravo", topic=Topic.GRIEF, listed=False)
    return World(
        admin=admin,
        a=a,
        b=b,
        fac_a=appoint(a, make_person("fac-alpha"), "Lantern", actor=admin),
        mem_a=give_place(a, make_person("mem-alpha"), "Quiet Fox"),
        fac_b=appoint(b, make_person("fac-bravo"), "Beacon", actor=admin),
        mem_b=give_place(b, make_person("mem-bravo"), "Brave Owl"),
        outsider=make_person("outsider"),
    )


def valid_edit_data(group):
    return {
        "name": "Renamed",
        "topic": group.topic,
        "description": "Changed.",
        "eligibility": "Changed.",
        "meeting_rhythm": "Never",
        "meeting_time_zone": "UTC",
        "retention": group.retention,
        "crisis_resources": "Changed.",
        "reapply_cooldown_days": "1",
        "guidelines": "Hijacked rule.",
    }


# Every view that needs a place in the group: (method, path after /groups/<slug>/, data).
MEMBER_VIEWS = [
    ("get", "home/", None),
    ("get", "join/", None),
    (
        "post",
        "join/",
        {"pseudonym": "Sneaky", "typed_name": "Sneaky", "guidelines_acknowledged": "on"},
    ),
    ("get", "agreement/", None),
    ("get", "agreement/sign/", None),
    ("post", "agreement/sign/", {"typed_name": "Sneaky", "guidelines_acknowledged": "on"}),
    ("post", "name/", {"pseudonym": "Sneaky Name"}),
    ("get", "leave/", None),
    ("post", "leave/", {}),
]

# Every facilitator (or admin) view of a group.
MANAGER_VIEWS = [
    ("get", "manage/", None),
    ("get", "manage/edit/", None),
    ("post", "manage/edit/", "edit"),
    ("get", "manage/agreement/", None),
    ("post", "manage/agreement/", {"text": "Hijacked agreement.", "summary": ""}),
    ("post", "manage/invitations/", {"note": ""}),
    ("post", "manage/link/", {}),
]

# Site admins only (paths under a group, except creating one).
ADMIN_VIEWS = [
    ("get", "/groups/new/", None),
    ("post", "/groups/new/", "new"),
    ("post", "/groups/{slug}/manage/facilitators/", "appoint"),
    ("post", "/groups/{slug}/manage/facilitators/{facilitator}/remove/", {}),
]


GROUP_VIEWS = MEMBER_VIEWS + MANAGER_VIEWS


def data_for(world, data, group):
    if data == "edit":
        return valid_edit_data(group)
    if data == "new":
        return {
            **valid_edit_data(group),
            "name": "Rogue Group",
            "agreement_text": "Anything.",
        }
    if data == "appoint":
        return {"username": world.outsider.username}
    return data


def request(client, world, group, method, path, data):
    if not path.startswith("/"):
        path = f"/groups/{group.slug}/{path}"
    facilitator = world.fac_a if group == world.a else world.fac_b
    path = path.format(slug=group.slug, facilitator=facilitator.pk)
    send = getattr(client, method)
    if method == "post":
        return send(path, data_for(world, data, group) or {})
    return send(path)


def state():
    """Everything a refused request could have changed."""
    return (
        list(Group.objects.order_by("pk").values()),
        list(Membership.objects.order_by("pk").values()),
        [
            list(group.guidelines.values_list("number", "text"))
            + list(group.agreements.values_list("version", "text"))
            + list(group.invitations.values_list("pk", flat=True))
            for group in Group.objects.order_by("pk")
        ],
        list(Event.objects.values_list("seq", flat=True)),
    )


def assert_refused(response):
    assert response.status_code == 404, (response.status_code, response.get("Location"))


def is_404(response, path):
    return response.status_code == 404


def refusals(client, world, group, views, *, expect=is_404):
    """Request every view; return what went wrong (an empty list when all were refused
    and nothing changed), naming each view, so one test covers a whole list of views."""
    problems = []
    for method, path, data in views:
        before = state()
        response = request(client, world, group, method, path, data)
        if not expect(response, path):
            problems.append(
                f"{method.upper()} {path}: {response.status_code} {response.get('Location', '')}"
            )
        if state() != before:
            problems.append(f"{method.upper()} {path}: changed something")
    return problems


def anonymous_login_redirect(group):
    def expect(response, path):
        return response.status_code == 302 and response["Location"] == (
            f"/accounts/login/?next=/groups/{group.slug}/{path}"
        )

    return expect


# --- positive controls: the people who may, can ---------------------------------------------


def test_a_member_opens_their_own_groups_pages(world):
    client = sign_in(world.mem_a.user)

    for method, path, data in MEMBER_VIEWS:
        if method == "get":
            response = request(client, world, world.a, method, path, data)
            assert response.status_code in (200, 302), path
            if response.status_code == 302:
                assert response["Location"].startswith(f"/groups/{world.a.slug}/"), path
    # The helper the refusal tests rely on does notice a page that is not refused.
    assert refusals(client, world, world.a, [("get", "agreement/", None)]) == [
        "GET agreement/: 200 "
    ]


@pytest.mark.parametrize("who", ["facilitator", "admin"])
def test_facilitators_and_admins_open_the_manage_pages(world, who):
    user = world.fac_a.user if who == "facilitator" else world.admin
    client = sign_in_verified(user)

    for method, path, data in MANAGER_VIEWS:
        if method == "get":
            assert request(client, world, world.a, method, path, data).status_code == 200, path


# --- a member of A ---------------------------------------------------------------------------


def test_a_member_of_a_gets_404_for_every_page_of_b(world):
    client = sign_in(world.mem_a.user)

    assert refusals(client, world, world.b, GROUP_VIEWS) == []


def test_a_member_cannot_do_facilitator_actions_in_their_own_group(world):
    client = sign_in(world.mem_a.user)

    assert refusals(client, world, world.a, MANAGER_VIEWS) == []


# --- a facilitator of A ------------------------------------------------------------------------


def test_a_facilitator_of_a_gets_404_for_every_page_of_b(world):
    client = sign_in_verified(world.fac_a.user)

    assert refusals(client, world, world.b, GROUP_VIEWS) == []


def test_a_refused_invitation_creation_leaves_no_link(world):
    """The invitation a wrong person tried to make must not exist (it would be usable)."""
    client = sign_in_verified(world.fac_a.user)

    assert_refused(client.post(f"/groups/{world.b.slug}/manage/invitations/", {"note": ""}))
    assert not world.b.invitations.exists()


# --- admin-only views ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["outsider", "member", "facilitator"])
def test_only_admins_create_groups_and_appoint_or_remove_facilitators(world, who):
    if who == "facilitator":
        client = sign_in_verified(world.fac_a.user)
    else:
        client = sign_in(world.outsider if who == "outsider" else world.mem_a.user)

    assert refusals(client, world, world.a, ADMIN_VIEWS) == []


def test_an_admin_cannot_remove_a_facilitator_of_another_group_through_this_one(world):
    client = sign_in_verified(world.admin)
    before = state()

    response = client.post(f"/groups/{world.a.slug}/manage/facilitators/{world.fac_b.pk}/remove/")
    assert_refused(response)
    response = client.post(f"/groups/{world.a.slug}/manage/facilitators/{world.mem_a.pk}/remove/")
    assert_refused(response)  # not a facilitator
    assert state() == before


def test_admins_are_not_members(world):
    """Admins audit; they do not enter groups they are not in."""
    client = sign_in_verified(world.admin)

    assert refusals(client, world, world.a, MEMBER_VIEWS) == []


# --- outsiders and people who left ---------------------------------------------------------------


@pytest.mark.parametrize("group", ["a", "b", "missing"])
def test_a_signed_in_outsider_gets_404_everywhere(world, group):
    client = sign_in(world.outsider)
    target = getattr(world, group) if group != "missing" else Group(slug="no-such-group")

    assert refusals(client, world, target, GROUP_VIEWS) == []


def test_a_member_who_left_gets_404(world):
    services.membership_leave(actor=world.mem_a.user, group=world.mem_a.group)
    client = sign_in(world.mem_a.user)

    assert refusals(client, world, world.a, GROUP_VIEWS) == []


def test_a_member_of_b_sees_the_same_404_as_for_a_missing_group(world):
    client = sign_in(world.mem_a.user)

    def page(path):
        response = client.get(path)
        assert response.status_code == 404
        # Nonces and the sign-out form's CSRF token differ on every response.
        body = re.sub(r'nonce="[^"]*"', "", html(response))
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", body)

    for suffix in ("", "home/", "manage/", "agreement/"):
        assert page(f"/groups/{world.b.slug}/{suffix}") == page(f"/groups/no-such-group/{suffix}")


# --- anonymous visitors ---------------------------------------------------------------------


@pytest.mark.parametrize("group", ["a", "b", "missing"])
def test_anonymous_visitors_are_sent_to_sign_in(world, group):
    target = getattr(world, group) if group != "missing" else Group(slug="no-such-group")

    problems = refusals(
        Client(), world, target, GROUP_VIEWS, expect=anonymous_login_redirect(target)
    )

    assert problems == []


def test_anonymous_visitors_are_sent_to_sign_in_from_admin_views(world):
    # Like every private page (issue 21); signed-in non-admins get the 404 (above).
    def sent_to_sign_in(response, path):
        return response.status_code == 302 and response["Location"].startswith(
            "/accounts/login/?next="
        )

    assert refusals(Client(), world, world.a, ADMIN_VIEWS, expect=sent_to_sign_in) == []


def test_anonymous_visitors_see_the_directory_and_listed_groups_only(world):
    client = Client()

    assert client.get("/groups/").status_code == 200
    assert client.get(f"/groups/{world.a.slug}/").status_code == 200
    assert client.get(f"/groups/{world.b.slug}/").status_code == 404
    assert client.get(f"/groups/link/{world.b.link_token}/").status_code == 200
    assert client.get("/groups/mine/").status_code == 302
