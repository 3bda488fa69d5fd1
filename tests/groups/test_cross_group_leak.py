"""No cross-group linkage: two people who share two groups, under different pseudonyms in
each, crawl everything they can reach. Nothing shows the other's account (handle, email,
phone, emergency contact), nor the other's name from another group, nor a group of the
other's that they are not in; nor do the frames of the boards' live sockets."""

import json
import re
from collections import deque
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urlsplit

import pytest

from board import services as board_services
from board.models import Thread
from groups import services
from groups.models import Group, Invitation, Membership, link_token_index
from tests.groups.conftest import (
    PASSWORD,
    appoint,
    give_place,
    make_group,
    make_person,
    sign_in_verified,
)
from tests.sockets import (  # noqa: F401 - fixtures for the socket test
    Socket,
    _channel_layer_per_test,
    close_worker_connections,
    cookie_of,
    run,
)

pytestmark = pytest.mark.django_db

# Pages that would end the session or change something just by being opened.
NOT_CRAWLED = ("/leave/", "/accounts/logout/", "/account/two-factor/set-up/")


@dataclass
class Someone:
    user: object
    identity: list[str]
    pseudonyms: dict[str, str] = field(default_factory=dict)  # group slug -> name there


@pytest.fixture
def scene(admin):
    g1 = make_group(admin, "Thursday Recovery Circle", show_member_count=True)
    g2 = make_group(admin, "Night Owls Grief Group")
    g3 = make_group(admin, "Carers Quiet Room", listed=False)

    alice = Someone(
        make_person(
            "alice-lindqvist",
            email="alice.lindqvist@example.org",
            phone="+44 7700 900123",
            emergency_contact="Ingrid Lindqvist, +44 7700 900456",
        ),
        [
            "alice-lindqvist",
            "alice.lindqvist@example.org",
            "7700 900123",
            "7700 900456",
            "lindqvist",
        ],
    )
    bob = Someone(
        make_person(
            "bob-okonkwo",
            email="bob.okonkwo@example.net",
            phone="+1 202 555 0147",
            emergency_contact="Chidi Okonkwo, 202-555-0199",
        ),
        [
            "bob-okonkwo",
            "bob.okonkwo@example.net",
            "202 555 0147",
            "202-555-0199",
            "okonkwo",
        ],
    )
    # Alice facilitates group 1 and is a member of group 2; Bob the other way round, and
    # he is also in an unlisted group 3 that Alice knows nothing about.
    alice_facilitates = appoint(g1, alice.user, "Morning Lark", actor=admin)
    give_place(g2, alice.user, "Silver Birch")
    give_place(g1, bob.user, "River Stone")
    bob_facilitates = appoint(g2, bob.user, "Copper Kettle", actor=admin)
    give_place(g3, bob.user, "Hidden Heron")
    alice.pseudonyms = {g1.slug: "Morning Lark", g2.slug: "Silver Birch"}
    bob.pseudonyms = {g1.slug: "River Stone", g2.slug: "Copper Kettle", g3.slug: "Hidden Heron"}
    # Something for each to sign again, and an invitation to open.
    services.agreement_publish(group=g1, actor=alice.user, text="Version two for group 1.")
    services.agreement_publish(group=g2, actor=bob.user, text="Version two for group 2.")
    # Facilitators sign their new versions (they see their groups' private pages only
    # then); as members elsewhere, they still have one to sign.
    for membership, name in (
        (alice_facilitates, "Morning Lark"),
        (bob_facilitates, "Copper Kettle"),
    ):
        services.agreement_sign(
            actor=membership.user,
            group=membership.group,
            typed_name=name,
            guidelines_acknowledged=True,
        )
    # Each writes on the boards they may use (under that group's name), so the crawl
    # below reads threads, replies and their report and delete pages too.
    g1_thread = board_services.thread_start(
        actor=alice.user, group=g1, title="Welcome to the board", body="Write here any day."
    )
    g2_thread = board_services.thread_start(
        actor=bob.user, group=g2, title="Night thoughts", body="Who else is up?"
    )
    board_services.thread_start(actor=bob.user, group=g3, title="Quiet", body="Only here.")
    # The other facilitator replies as a member there, once signed again (so from here
    # on nobody has a version left to sign: the sign pages still answer, and are crawled).
    for person, group in ((bob, g1), (alice, g2)):
        services.agreement_sign(
            actor=person.user,
            group=group,
            typed_name=person.pseudonyms[group.slug],
            guidelines_acknowledged=True,
        )
    board_services.post_reply(actor=bob.user, thread=g1_thread, body="A reply in group 1.")
    board_services.post_reply(actor=alice.user, thread=g2_thread, body="A reply in group 2.")
    return {"g1": g1, "g2": g2, "g3": g3, "alice": alice, "bob": bob}


def group_of(path: str) -> Group | None:
    """The group a page is about, if any: its pseudonyms are the ones it may show."""
    match = re.match(r"^/groups/(link|invitation)/([^/]+)/", path)
    if match:
        kind, token = match.groups()
        if kind == "link":
            return Group.objects.filter(link_token_index=link_token_index(token)).first()
        invitation = services.invitation_by_token(token)
        return invitation.group if invitation else None
    # Any app's page about a group names it by slug (/groups/<slug>/, /moderation/<slug>/,
    # /meetings/group/<slug>/); a meeting's pages by the meeting's number.
    segments = urlsplit(path).path.strip("/").split("/")
    group = Group.objects.filter(slug__in=segments).first()
    if group is None and len(segments) > 1 and segments[0] == "meetings":
        from meetings.models import Meeting

        if segments[1].isdigit():
            meeting = Meeting.objects.filter(pk=int(segments[1])).first()
            group = meeting.group if meeting else None
    return group


def links(page: str) -> set[str]:
    found = set()
    for href in re.findall(r'href="(/[^"#]*)"', page):
        href = unescape(href)
        if href.startswith("/static/") or urlsplit(href).path in NOT_CRAWLED:
            continue
        found.add(href)
    return found


def crawl(client, seeds) -> dict[str, str]:
    """Every page reachable from the seeds by following links (and redirects)."""
    pages, queue = {}, deque(seeds)
    while queue:
        path = queue.popleft()
        if path in pages:
            continue
        assert len(pages) < 300, "the crawl is running away"
        response = client.get(path)
        assert response.status_code in (200, 302, 404), (path, response.status_code)
        text = response.content.decode()
        if response.status_code == 302:
            text += "\n" + response["Location"]
            target = response["Location"]
            if target.startswith("/") and urlsplit(target).path not in NOT_CRAWLED:
                queue.append(target)
        pages[path] = text
        queue.extend(links(text) - pages.keys())
    return pages


def everything_seen_by(person: Someone, scene) -> dict[str, str]:
    """The pages and JSON a person can reach, plus the answers to what they may post."""
    client = sign_in_verified(person.user)
    g1, g2, g3 = scene["g1"], scene["g2"], scene["g3"]
    seeds = ["/", "/groups/", "/groups/mine/", "/account/", "/groups/?q=group", "/groups/?q=owl"]
    for group in (g1, g2, g3):
        seeds += [
            f"/groups/{group.slug}/{suffix}"
            for suffix in (
                "",
                "home/",
                "join/",
                "agreement/",
                "agreement/sign/",
                "leave/",
                "board/",
                "board/1/",
            )
        ]
        seeds += [f"/groups/{group.slug}/manage/{suffix}" for suffix in ("", "edit/", "agreement/")]
        if person.pseudonyms.get(group.slug):  # private links only to one's own groups
            seeds.append(f"/groups/link/{group.link_token}/")
    # Invitations each facilitator made, opened by both.
    for invitation_group, maker in ((g1, scene["alice"]), (g2, scene["bob"])):
        _, token = services.invitation_create(group=invitation_group, actor=maker.user)
        seeds.append(f"/groups/invitation/{token}/")
    pages = crawl(client, seeds)

    # What comes back from forms: a new invitation link, refusals, signing again.
    facilitated = g1 if person is scene["alice"] else g2
    member_of = g2 if person is scene["alice"] else g1
    posted = {
        "invitation": client.post(f"/groups/{facilitated.slug}/manage/invitations/", {"note": ""}),
        "bad name": client.post(f"/groups/{member_of.slug}/name/", {"pseudonym": "ab"}),
        "bad signature": client.post(
            f"/groups/{member_of.slug}/agreement/sign/",
            {"typed_name": "Nobody", "guidelines_acknowledged": "on"},
        ),
        "bad agreement": client.post(f"/groups/{facilitated.slug}/manage/agreement/", {}),
    }
    for name, response in posted.items():
        pages[f"POST {name} ({urlsplit(response.request['PATH_INFO']).path})"] = (
            response.content.decode()
        )
    # The data export (JSON) after confirming the password.
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    pages.update(crawl(client, ["/account/export/", "/account/delete/"]))
    export = client.post("/account/export/")
    assert export["Content-Type"] == "application/json"
    json.loads(export.content)
    pages["POST /account/export/"] = export.content.decode()
    return pages


def forbidden_on(path: str, other: Someone) -> list[str]:
    group = group_of(path.split(" (")[-1].rstrip(")") if path.startswith("POST") else path)
    here = group.slug if group else None
    return other.identity + [name for slug, name in other.pseudonyms.items() if slug != here]


@pytest.mark.parametrize(("viewer", "other"), [("alice", "bob"), ("bob", "alice")])
def test_nothing_about_the_other_person_leaks_anywhere(scene, viewer, other):
    pages = everything_seen_by(scene[viewer], scene)

    # The crawl really went everywhere a person goes (or the test would prove nothing).
    for slug in (scene["g1"].slug, scene["g2"].slug):
        for suffix in ("home/", "agreement/", "agreement/sign/", "manage/"):
            assert f"/groups/{slug}/{suffix}" in pages
    for path in ("/account/", "/account/activity/", "/account/contact/", "/account/sessions/"):
        assert path in pages
    assert len(pages) > 40
    # ...the board of the group each facilitates too: its thread and the other's reply.
    own = scene["g1"] if viewer == "alice" else scene["g2"]
    assert scene[other].pseudonyms[own.slug] in unescape(pages[f"/groups/{own.slug}/board/1/"])
    assert any(f"/groups/{own.slug}/board/1/" in path and "delete" in path for path in pages)

    leaks = []
    for path, page in pages.items():
        text = unescape(page).lower()
        for secret in forbidden_on(path, scene[other]):
            if secret.lower() in text:
                leaks.append(f"{secret!r} on {path}")
        if viewer == "alice":
            # Bob's unlisted group is invisible to Alice: not its name, address or link.
            for secret in (scene["g3"].name, scene["g3"].slug, scene["g3"].link_token):
                if secret.lower() in text:
                    leaks.append(f"{secret!r} on {path}")
    assert leaks == []
    # Each person does see the other in a shared group, by that group's name only.
    own_group = scene["g1"] if viewer == "alice" else scene["g2"]
    assert scene[other].pseudonyms[own_group.slug] in pages[f"/groups/{own_group.slug}/manage/"]


def test_a_facilitators_manage_page_does_not_reveal_other_groups(scene):
    g1 = scene["g1"]
    client = sign_in_verified(scene["alice"].user)

    page = unescape(client.get(f"/groups/{g1.slug}/manage/").content.decode())

    assert "River Stone" in page
    for other_group in ("g2", "g3"):
        group = scene[other_group]
        assert group.name not in page
        assert group.slug not in page
    for name in ("Copper Kettle", "Hidden Heron", "Silver Birch"):
        assert name not in page
    # Facilitator and member counts of this group only.
    assert "Members (2)" in page


def test_names_are_unique_per_group_only_so_a_refusal_reveals_nothing(scene):
    """Refusing a name because someone uses it in *another* group would tell who is there."""
    client = sign_in_verified(scene["alice"].user)
    g2 = scene["g2"]

    response = client.post(f"/groups/{g2.slug}/name/", {"pseudonym": "Hidden Heron"})

    assert response.status_code == 302
    assert scene["alice"].user.memberships.get(group=g2).pseudonym == "Hidden Heron"


def test_an_invitation_does_not_remember_who_used_it():
    """Its private note must not become a way to tell who is behind a pseudonym."""
    relations = {f.name for f in Invitation._meta.get_fields() if f.is_relation}
    assert relations == {"group", "created_by"}
    assert not any(
        f.related_model is Invitation for f in Membership._meta.get_fields() if f.is_relation
    )


# --- the boards' live frames ------------------------------------------------------------------


async def frames_seen_live(scene) -> dict[str, list[dict]]:
    """Both people keep every board they may open (its list and its first thread) open,
    while both write in every group they are in: each socket's frames, by its path."""
    alice, bob = scene["alice"], scene["bob"]
    opened = {}
    for name, person in (("alice", alice), ("bob", bob)):
        cookie = await run(lambda user: cookie_of(sign_in_verified(user)), person.user)
        for slug in person.pseudonyms:
            for tail in ("", "1/"):
                path = f"/ws/groups/{slug}/board/{tail}"
                opened[f"{name} {path}"] = Socket(path, cookie)
    for socket in opened.values():
        await socket.__aenter__()
        assert socket.connected, socket.refused
    try:
        for person in (alice, bob):
            for slug in person.pseudonyms:
                group = await run(Group.objects.get, slug=slug)
                await run(
                    board_services.thread_start,
                    actor=person.user,
                    group=group,
                    title=f"Live in {group.name}",
                    body="Said live.",
                )
                first = await run(Thread.objects.get, group=group, number=1)
                await run(board_services.post_reply, actor=person.user, thread=first, body="More.")
        for socket in opened.values():
            while not await socket.communicator.receive_nothing(timeout=0.3):
                await socket.receive()
    finally:
        for socket in opened.values():
            await socket.__aexit__(None, None, None)
    return {path: socket.frames for path, socket in opened.items()}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
@pytest.mark.parametrize(("viewer", "other"), [("alice", "bob"), ("bob", "alice")])
async def test_nothing_about_the_other_person_leaks_through_the_boards_sockets(
    scene, viewer, other
):
    seen = await frames_seen_live(scene)
    mine = {path: frames for path, frames in seen.items() if path.startswith(viewer)}
    # The sockets really carried the other's posts in the groups they share.
    shared = scene["g1"] if viewer == "alice" else scene["g2"]
    own_list = mine[f"{viewer} /ws/groups/{shared.slug}/board/"]
    assert any(scene[other].pseudonyms[shared.slug] in f.get("html", "") for f in own_list)
    assert any(f["type"] == "post" for f in mine[f"{viewer} /ws/groups/{shared.slug}/board/1/"])

    leaks = []
    for path, frames in mine.items():
        here = path.split("/")[3]
        forbidden = scene[other].identity + [
            name for slug, name in scene[other].pseudonyms.items() if slug != here
        ]
        if viewer == "alice":
            forbidden += [scene["g3"].name, scene["g3"].slug, scene["g3"].link_token]
        text = unescape(json.dumps(frames, ensure_ascii=False)).lower()
        leaks += [f"{secret!r} on {path}" for secret in forbidden if secret.lower() in text]
    assert leaks == []
    # And Bob's unlisted group's board refuses Alice without a word about it.
    if viewer == "alice":
        cookie = await run(lambda user: cookie_of(sign_in_verified(user)), scene["alice"].user)
        async with Socket(f"/ws/groups/{scene['g3'].slug}/board/", cookie) as socket:
            assert socket.refused["reason"] == "not_a_member"
            assert scene["g3"].name not in json.dumps(socket.frames)
