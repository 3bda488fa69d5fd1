"""The board's privacy: retention by the group's setting (the scheduled command, with a
progress line), the member's export holds their own posts, account deletion removes the
text of their posts, and a raw dump of the database never holds post text."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.events import Action
from board.models import Post, Thread
from board.services import post_delete, post_reply, posts_purge_expired, thread_mark_read
from groups.models import Group, Retention
from meetings.services import meeting_close
from tests.board.conftest import dump_every_table, events, signed_in_client
from tests.factories import PASSWORD, schedule
from tests.html import without_random_tokens

pytestmark = pytest.mark.django_db


def reauthenticate(client):
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302


def age(post_or_thread, days: float) -> None:
    """Move a post's writing time back (instead of waiting)."""
    when = timezone.now() - timedelta(days=days)
    Post.objects.filter(pk=post_or_thread.pk).update(created_at=when)


def test_retention_deletes_posts_older_than_the_groups_policy(scene, capsys):
    Group.objects.filter(pk=scene.group.pk).update(retention=Retention.DAYS_7)
    old = scene.start(scene.ash, title="Old thread", body="Old words")
    age(old.posts.get(), 8)
    kept = scene.start(scene.birch, title="New thread", body="New words")
    reply = post_reply(actor=scene.ash.user, thread=kept, body="A new reply")
    # The other group keeps its posts for 90 days by its own setting.
    Group.objects.filter(pk=scene.other_group.pk).update(retention=Retention.DAYS_90)
    elsewhere = scene.start(scene.other_member, body="Elsewhere")
    age(elsewhere.posts.get(), 8)

    call_command("purge_expired_board_posts")
    out = capsys.readouterr().out
    assert "Boards: 1/2 groups" in out and "Boards: 2/2 groups, 1 post(s) deleted" in out
    assert "Deleted 1 board post(s) and 1 emptied thread(s) across 2 board(s)." in out

    assert not Thread.objects.filter(pk=old.pk).exists()
    assert set(Post.objects.values_list("body", flat=True)) == {
        "New words",
        "A new reply",
        "Elsewhere",
    }
    assert reply.pk in Post.objects.values_list("pk", flat=True)
    (purged,) = events(Action.BOARD_POSTS_PURGED)
    assert purged.group_id == scene.group.pk and purged.extra == {
        "posts_deleted": 1,
        "threads_deleted": 1,
    }
    # Running it again changes nothing and records nothing.
    assert posts_purge_expired().posts_deleted == 0
    assert len(events(Action.BOARD_POSTS_PURGED)) == 1


def test_retention_takes_a_threads_title_with_its_first_post(scene):
    Group.objects.filter(pk=scene.group.pk).update(retention=Retention.DAYS_7)
    thread = scene.start(scene.ash, title="An old title", body="Old words")
    age(thread.posts.get(), 8)
    post_reply(actor=scene.birch.user, thread=thread, body="A recent reply")

    posts_purge_expired()

    kept = Thread.objects.get(pk=thread.pk)
    assert kept.title is None
    assert list(kept.posts.values_list("body", flat=True)) == ["A recent reply"]


def test_under_delete_when_the_meeting_ends_posts_go_once_a_meeting_has_ended(scene):
    Group.objects.filter(pk=scene.group.pk).update(retention=Retention.MEETING_END)
    before = scene.start(scene.ash, body="Before the meeting")
    age(before.posts.get(), 2)
    assert posts_purge_expired().posts_deleted == 0  # no meeting has ended yet

    meeting = schedule(scene.group, scene.facilitator.user)  # open now
    assert posts_purge_expired().posts_deleted == 0  # still running
    meeting_close(meeting=meeting, actor=scene.facilitator.user)
    after = scene.start(scene.birch, body="After the meeting")
    assert posts_purge_expired(now=timezone.now()).posts_deleted == 1
    assert list(Post.objects.values_list("body", flat=True)) == ["After the meeting"]
    assert Thread.objects.get().pk == after.pk


def test_the_export_holds_the_members_own_posts_and_nobody_elses(scene):
    thread = scene.start(scene.ash, title="My thread", body="My first words")
    post_reply(actor=scene.birch.user, thread=thread, body="Birch's words")
    post_reply(actor=scene.ash.user, thread=thread, body="My second words")
    client = signed_in_client(scene.ash.user)
    reauthenticate(client)
    data = json.loads(client.post("/account/export/").content)
    assert [(p["thread_title"], p["body"]) for p in data["board_posts"]] == [
        ("My thread", "My first words"),
        (None, "My second words"),
    ]
    assert data["board_posts"][0]["group"] == scene.group.name
    assert "Birch" not in json.dumps(data)


def test_the_export_holds_how_far_the_member_has_read_each_thread(scene):
    thread = scene.start(scene.birch, title="Birch's thread", body="Birch's words")
    post_reply(actor=scene.birch.user, thread=thread, body="More from Birch")
    thread_mark_read(actor=scene.ash.user, thread=Thread.objects.get(pk=thread.pk), up_to=2)
    client = signed_in_client(scene.ash.user)
    reauthenticate(client)
    data = json.loads(client.post("/account/export/").content)
    assert data["board_threads_read"] == [
        {"group": scene.group.name, "thread": thread.number, "read_up_to_post": 2}
    ]


def test_deleting_the_account_removes_the_text_of_the_persons_posts(scene):
    thread = scene.start(scene.ash, title="Ash's title", body="Ash's words")
    post_reply(actor=scene.birch.user, thread=thread, body="Birch's reply stays")
    client = signed_in_client(scene.ash.user)
    reauthenticate(client)
    response = client.post("/account/delete/", {"confirm": "delete my account"})
    assert response.status_code == 200

    first, second = Post.objects.order_by("number")
    assert (first.body, first.author_id) == (None, None)
    assert second.body == "Birch's reply stays"
    thread.refresh_from_db()
    assert thread.title is None and thread.author_id is None
    page = signed_in_client(scene.birch.user).get(
        f"/groups/{scene.group.slug}/board/{thread.number}/"
    )
    assert b"[removed]" in page.content and "Ash" not in without_random_tokens(page.content)
    dump = dump_every_table()
    assert "Ash's words" not in dump and "Ash's title" not in dump


def test_a_raw_dump_of_the_database_holds_no_post_text(scene):
    thread = scene.start(scene.ash, title="Unmistakable title", body="Unmistakable body")
    post_reply(actor=scene.birch.user, thread=thread, body="Unmistakable reply")
    client = signed_in_client(scene.ash.user)
    assert b"Unmistakable reply" in client.get(f"/groups/{scene.group.slug}/board/1/").content
    dump = dump_every_table()
    for text in ("Unmistakable title", "Unmistakable body", "Unmistakable reply"):
        assert text not in dump


def test_deleting_a_post_takes_its_text_out_of_the_database(scene):
    thread = scene.start(scene.ash, title="Gone title", body="Gone body")
    post_delete(actor=scene.ash.user, post=thread.posts.get())
    # The ciphertext is gone too (not just hidden): nothing for a key to open later.
    assert Post.objects.filter(body__isnull=False).count() == 0
    assert Thread.objects.filter(title__isnull=False).count() == 0
