"""The public directory: listed groups only, searchable by topic and text, nothing about
members (not even how many, unless the group opts in); unlisted groups only by their link."""

import re
from html import unescape

import pytest
from django.test import Client

from audit.events import Action
from groups.models import Topic
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


@pytest.fixture
def groups(admin):
    return {
        "grief": make_group(
            admin,
            "Evening Grief Circle",
            topic=Topic.GRIEF,
            description="A gentle weekly space for the recently bereaved.",
            eligibility="Adults bereaved in the last two years.",
            meeting_rhythm="Tuesdays, 7-8:30 pm",
            guidelines=["What is shared here stays here.", "No advice unless asked."],
        ),
        "recovery": make_group(
            admin,
            "Sober Mornings",
            topic=Topic.ADDICTION,
            description="Early-day check-ins for people in recovery from alcohol.",
            eligibility="Anyone sober or trying to be.",
            meeting_rhythm="Weekdays, 7 am",
        ),
        "hidden": make_group(
            admin,
            "Survivors Quiet Room",
            topic=Topic.GRIEF,
            description="A gentle room, reached only by invitation.",
            eligibility="Survivors referred by the clinic.",
            listed=False,
        ),
    }


def directory_names(response) -> list[str]:
    assert response.status_code == 200
    return re.findall(r"<h2><a href=\"/groups/[^\"]+/\">([^<]+)</a></h2>", html(response))


def test_it_lists_listed_groups_with_their_public_details(groups):
    response = Client().get("/groups/")

    assert directory_names(response) == ["Evening Grief Circle", "Sober Mornings"]
    page = unescape(html(response))
    assert "A gentle weekly space for the recently bereaved." in page
    assert "Adults bereaved in the last two years." in page
    assert "Tuesdays, 7-8:30 pm" in page
    assert "Survivors Quiet Room" not in page
    assert groups["hidden"].slug not in page


def test_the_public_page_shows_description_eligibility_guidelines_and_rhythm(groups):
    response = Client().get(f"/groups/{groups['grief'].slug}/")

    assert response.status_code == 200
    page = unescape(html(response))
    assert "Adults bereaved in the last two years." in page
    assert "Tuesdays, 7-8:30 pm" in page
    assert '<li value="1">What is shared here stays here.</li>' in page
    assert '<li value="2">No advice unless asked.</li>' in page
    assert "Members keep what is shared confidential." in page  # the agreement's summary
    # It takes no applications: the visitor is told how to ask for an invitation.
    assert "the facilitators can send you a private invitation link" in page
    assert "Apply to join" not in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?topic=grief", ["Evening Grief Circle"]),
        ("?topic=addiction", ["Sober Mornings"]),
        ("?topic=carers", []),
        ("?topic=not-a-topic", ["Evening Grief Circle", "Sober Mornings"]),
        ("?q=bereaved", ["Evening Grief Circle"]),  # description
        ("?q=SOBER", ["Sober Mornings"]),  # name, any case
        ("?q=trying+to+be", ["Sober Mornings"]),  # eligibility
        ("?q=gentle", ["Evening Grief Circle"]),  # the unlisted group matches too, unseen
        ("?q=referred+by+the+clinic", []),
        ("?topic=addiction&q=bereaved", []),
        ("?topic=grief&q=gentle", ["Evening Grief Circle"]),
    ],
)
def test_it_searches_by_topic_and_text_but_never_finds_unlisted_groups(groups, query, expected):
    response = Client().get(f"/groups/{query}")

    assert directory_names(response) == expected
    if not expected:
        assert "No groups match" in html(response)


def test_member_counts_are_hidden_unless_the_group_opts_in(admin, groups):
    grief = groups["grief"]
    appoint(grief, make_person("fac-one"), "Lantern", actor=admin)
    give_place(grief, make_person("member-one"), "Quiet Fox")
    give_place(grief, make_person("member-two"), "Brave Owl")
    give_place(grief, make_person("member-three"))  # has a place, not signed yet

    for path in ("/groups/", f"/groups/{grief.slug}/"):
        page = html(Client().get(path))
        assert not re.search(r"\d+ members?\b", page), path
        for pseudonym in ("Lantern", "Quiet Fox", "Brave Owl"):
            assert pseudonym not in page

    grief.show_member_count = True
    grief.save(update_fields=["show_member_count"])

    directory = html(Client().get("/groups/"))
    detail = html(Client().get(f"/groups/{grief.slug}/"))
    # Everyone holding a place counts, and both pages give the same number.
    assert "4 members" in directory
    assert "4 members" in detail
    # The other group has not opted in.
    assert len(re.findall(r"\d+ members?\b", directory)) == 1
    for page in (directory, detail):
        for pseudonym in ("Lantern", "Quiet Fox", "Brave Owl"):
            assert pseudonym not in page


def test_departed_members_are_not_counted(admin, groups):
    grief = groups["grief"]
    grief.show_member_count = True
    grief.save(update_fields=["show_member_count"])
    from groups import services

    give_place(grief, make_person("member-one"), "Quiet Fox")
    leaving = give_place(grief, make_person("member-two"), "Brave Owl")
    services.membership_leave(actor=leaving.user, group=leaving.group)

    assert "1 member<" in html(Client().get(f"/groups/{grief.slug}/"))
    assert "1 member<" in html(Client().get("/groups/"))


def test_an_unlisted_group_is_404_by_slug_but_open_by_its_private_link(groups):
    hidden = groups["hidden"]

    assert Client().get(f"/groups/{hidden.slug}/").status_code == 404
    by_link = Client().get(f"/groups/link/{hidden.link_token}/")
    assert by_link.status_code == 200
    assert "Survivors Quiet Room" in html(by_link)
    assert "Survivors referred by the clinic." in html(by_link)
    assert Client().get("/groups/link/not-a-real-token/").status_code == 404


def test_the_404_for_an_unlisted_group_is_the_same_as_for_no_group(groups):
    def normalised(response):
        assert response.status_code == 404
        return re.sub(r'nonce="[^"]*"', "", html(response))

    client = Client()
    assert normalised(client.get(f"/groups/{groups['hidden'].slug}/")) == normalised(
        client.get("/groups/no-such-group/")
    )


def test_replacing_the_private_link_kills_the_old_one(admin, groups):
    hidden = groups["hidden"]
    old_token = hidden.link_token
    facilitator = make_person("fac-one")
    appoint(hidden, facilitator, "Lantern", actor=admin)
    client = sign_in_verified(facilitator)

    manage = client.get(f"/groups/{hidden.slug}/manage/")
    assert f"/groups/link/{old_token}/" in html(manage)

    response = client.post(f"/groups/{hidden.slug}/manage/link/")

    assert response.status_code == 302
    hidden.refresh_from_db()
    assert hidden.link_token != old_token
    assert Client().get(f"/groups/link/{old_token}/").status_code == 404
    assert Client().get(f"/groups/link/{hidden.link_token}/").status_code == 200
    assert f"/groups/link/{hidden.link_token}/" in html(
        client.get(f"/groups/{hidden.slug}/manage/")
    )
    [event] = [
        e for e in events(Action.GROUP_EDITED, group_id=hidden.pk) if e.actor_id == facilitator.pk
    ]
    assert event.extra == {"fields": ["link_token"]}
    assert old_token not in str(event.extra)


def test_a_signed_in_member_is_pointed_to_their_group(groups):
    person = make_person("member-one")
    give_place(groups["grief"], person, "Quiet Fox")
    client = sign_in(person)

    member_view = html(client.get(f"/groups/{groups['grief'].slug}/"))
    assert f'href="/groups/{groups["grief"].slug}/home/"' in member_view
    other_view = html(client.get(f"/groups/{groups['recovery'].slug}/"))
    assert f'href="/groups/{groups["recovery"].slug}/home/"' not in other_view


def test_the_directory_is_in_alphabetical_order(admin):
    for name in ("Zeta Circle", "Alpha Circle", "Mu Circle", "Beta Circle"):
        make_group(admin, name)

    response = Client().get("/groups/")

    assert directory_names(response) == ["Alpha Circle", "Beta Circle", "Mu Circle", "Zeta Circle"]
