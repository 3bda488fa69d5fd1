"""Unread counts per group on "My groups": others' posts past the member's read marker of
each thread (moved by opening the thread, or by a reply read live: test_board_socket.py),
that still say something; the same number of queries whatever the number of groups and
posts."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from board import services
from board.models import Post, Thread, ThreadRead
from moderation import services as moderation_services
from tests.board.conftest import (
    appoint,
    give_place,
    make_group,
    make_person,
    publish_new_agreement,
    signed_in_client,
)

pytestmark = pytest.mark.django_db

MINE = reverse("groups:mine")


def board_line(client, group) -> str | None:
    """The board's line in the group's card on "My groups", or None."""
    page = client.get(MINE).content.decode()
    card = re.search(rf"<h2><a [^>]*>{re.escape(group.name)}</a></h2>(.*?)</li>", page, re.S)
    assert card, page
    line = re.search(r'<p class="board-unread">(.*?)</p>', card.group(1), re.S)
    return re.sub(r"<[^>]+>", "", line.group(1)) if line else None


def open_thread(client, scene, thread, after: int = 0):
    url = reverse("board:thread", kwargs={"slug": scene.group.slug, "number": thread.number})
    assert client.get(url + (f"?after={after}" if after else "")).status_code == 200


def test_others_new_posts_count_until_the_thread_is_opened(scene):
    birch = signed_in_client(scene.birch.user)
    assert board_line(birch, scene.group) == "Board: nothing new"

    thread = scene.start(scene.ash)
    services.post_reply(actor=scene.birch.user, thread=thread, body="My own reply")
    services.post_reply(actor=scene.ash.user, thread=thread, body="Thank you")
    # Ash's two posts; Birch's own reply is not news to Birch.
    assert board_line(birch, scene.group) == "Board: 2 new posts"
    open_thread(birch, scene, thread)
    assert board_line(birch, scene.group) == "Board: nothing new"
    services.post_reply(actor=scene.ash.user, thread=thread, body="One more")
    assert board_line(birch, scene.group) == "Board: 1 new post"
    # Ash has read everything Birch wrote? Not yet: Birch's reply is new to Ash.
    assert board_line(signed_in_client(scene.ash.user), scene.group) == "Board: 1 new post"


def test_hidden_and_deleted_posts_are_not_news(scene):
    thread = scene.start(scene.ash)
    reply = services.post_reply(actor=scene.facilitator.user, thread=thread, body="Hidden")
    gone = services.post_reply(actor=scene.ash.user, thread=thread, body="Deleted")
    moderation_services.post_hide(post=reply, actor=scene.facilitator.user, guideline_number=1)
    services.post_delete(actor=scene.ash.user, post=gone)
    assert board_line(signed_in_client(scene.birch.user), scene.group) == "Board: 1 new post"


def test_the_read_marker_only_moves_forward(scene):
    thread = scene.start(scene.ash)
    for n in range(60):
        Post.objects.create(thread=thread, number=n + 2, author=scene.ash, body=f"Reply {n}")
    Thread.objects.filter(pk=thread.pk).update(last_post_number=61)
    thread.refresh_from_db()
    birch = signed_in_client(scene.birch.user)
    open_thread(birch, scene, thread, after=50)  # the last page: posts 51-61
    assert ThreadRead.objects.get(membership=scene.birch).read_up_to == 61
    open_thread(birch, scene, thread)  # the first page again: 1-50
    assert ThreadRead.objects.get(membership=scene.birch).read_up_to == 61


def test_each_group_counts_its_own_board_and_a_closed_board_shows_nothing(scene):
    # Birch is in the other group too (another name there).
    give_place(scene.other_group, scene.birch.user, "Willow")
    other_place = scene.birch.user.memberships.get(group=scene.other_group)
    scene.start(scene.ash)
    scene.start(scene.other_member)
    scene.start(scene.other_member, title="Two", body="Two")
    birch = signed_in_client(scene.birch.user)
    assert board_line(birch, scene.group) == "Board: 1 new post"
    assert board_line(birch, scene.other_group) == "Board: 2 new posts"
    # Someone only in the other group sees nothing of this group's board.
    cedar_page = signed_in_client(scene.other_member.user).get(MINE).content.decode()
    assert scene.group.name not in cedar_page
    # Suspended, or a new agreement to sign: no count (the board is closed to them).
    moderation_services.action_take(
        membership=other_place,
        actor=scene.other_facilitator.user,
        kind="suspend",
        guideline_number=1,
        minutes=60,
    )
    assert board_line(birch, scene.other_group) is None
    publish_new_agreement(scene)
    assert board_line(birch, scene.group) is None


def test_the_same_number_of_queries_for_one_small_and_many_large_boards(scene):
    admin = scene.admin
    reader = scene.birch.user
    client = signed_in_client(reader)
    client.get(MINE)  # warm the per-session caches

    unread_statements = []

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(MINE).status_code == 200
        unread_statements.extend(q["sql"] for q in captured if "board_post" in q["sql"])
        return len(captured)

    thread = scene.start(scene.ash)
    Post.objects.bulk_create(
        Post(thread=thread, number=n, author=scene.ash, body="x") for n in range(2, 11)
    )
    small = count()
    for n in range(3):
        group = make_group(admin, f"Another circle {n}")
        writer = appoint(group, make_person(f"writer-{n}"), "Writer", actor=admin)
        give_place(group, reader, f"Reader {n}")
        big = services.thread_start(actor=writer.user, group=group, title="T", body="B")
        Post.objects.bulk_create(
            Post(thread=big, number=k, author=writer, body="x") for k in range(2, 1001)
        )
    assert count() == small
    # Nor does the counting statement grow with the groups (it once listed every place's
    # id three times, and building it cost "My groups" more per row than drawing it).
    small_statement, many_statement = unread_statements
    assert many_statement.count(",") == small_statement.count(",")
