"""Deleting a post, the group's retention and account deletion reach open board pages
without a reload (board sockets), each saying why the text is gone, after commit."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.html import escape

from board import services
from board.models import Post, Removal
from groups.models import Group, Retention
from tests.board.conftest import signed_in_client
from tests.board.test_board_socket import board_path, cookie
from tests.factories import PASSWORD
from tests.html import without_random_tokens
from tests.sockets import (  # noqa: F401 - fixtures for pytest
    CLOSE_MEMBERSHIP_CHANGED,
    Socket,
    _channel_layer_per_test,
    close_worker_connections,
    run,
)

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]

# As the pages and frames show them (HTML-escaped).
RETENTION_LABEL = escape(Removal.RETENTION.label)
ACCOUNT_LABEL = escape(Removal.ACCOUNT_DELETED.label)
AUTHOR_LABEL = escape(Removal.AUTHOR.label)


def delete_account(user) -> None:
    client = signed_in_client(user)
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    assert client.post("/account/delete/", {"confirm": "delete my account"}).status_code == 200


def expire(thread, numbers: list[int]) -> None:
    Group.objects.filter(pk=thread.group_id).update(retention=Retention.DAYS_7)
    Post.objects.filter(thread=thread, number__in=numbers).update(
        created_at=timezone.now() - timedelta(days=8)
    )


async def test_a_post_deleted_by_its_author_changes_on_open_pages(scene):
    thread = await run(scene.start, scene.ash, "A title to delete", "Words to delete.")
    async with (
        Socket(board_path(scene), await cookie(scene.birch)) as board,
        Socket(board_path(scene, thread.number), await cookie(scene.birch)) as page,
    ):
        post = await run(Post.objects.get, thread=thread, number=1)
        await run(services.post_delete, actor=scene.ash.user, post=post)
        changed = await page.expect("post_changed")
        assert changed["removed"] == Removal.AUTHOR
        assert AUTHOR_LABEL in changed["html"] and AUTHOR_LABEL in changed["title"]
        assert "Words to delete" not in str(changed)
        listed = await board.expect("thread_updated")
        assert AUTHOR_LABEL in listed["html"] and "A title to delete" not in listed["html"]


async def test_account_deletion_reaches_open_pages_with_its_reason(scene):
    thread = await run(scene.start, scene.ash, "Ash's title", "Ash's words.")
    await run(services.post_reply, actor=scene.birch.user, thread=thread, body="Birch here.")
    await run(services.post_reply, actor=scene.ash.user, thread=thread, body="Ash again.")
    async with (
        Socket(board_path(scene), await cookie(scene.birch)) as board,
        Socket(board_path(scene, thread.number), await cookie(scene.birch)) as page,
    ):
        await run(delete_account, scene.ash.user)
        first = await page.expect("post_changed")
        third = await page.expect("post_changed")
        assert (first["post"], third["post"]) == (1, 3)
        for frame in (first, third):
            assert frame["removed"] == Removal.ACCOUNT_DELETED
            assert ACCOUNT_LABEL in frame["html"] and "Ash" not in without_random_tokens(
                frame["html"]
            )
            assert ACCOUNT_LABEL in frame["title"]
        listed = await board.expect("thread_updated")
        assert ACCOUNT_LABEL in listed["html"] and "Ash's title" not in listed["html"]
        # One frame for the thread, not one per post.
        await board.expect_quiet()


async def test_retention_takes_posts_off_open_pages(scene):
    thread = await run(scene.start, scene.ash, "An old title", "Old words.")
    await run(services.post_reply, actor=scene.birch.user, thread=thread, body="Old reply.")
    await run(services.post_reply, actor=scene.ash.user, thread=thread, body="A new reply.")
    emptied = await run(scene.start, scene.birch, "All old", "All old words.")
    await run(expire, thread, [1, 2])
    await run(expire, emptied, [1])
    async with (
        Socket(board_path(scene), await cookie(scene.birch)) as board,
        Socket(board_path(scene, thread.number), await cookie(scene.birch)) as page,
        Socket(board_path(scene, emptied.number), await cookie(scene.birch)) as gone_page,
    ):
        await run(services.posts_purge_expired)
        removed = await page.expect("posts_removed")
        assert removed["posts"] == [1, 2] and RETENTION_LABEL in removed["title"]
        kept, dropped = await board.expect_both("thread_updated", "thread_removed")
        assert dropped["thread"] == emptied.number
        assert RETENTION_LABEL in kept["html"] and "An old title" not in kept["html"]
        closed = await gone_page.expect("closed")
        assert closed["reason"] == "no_such_thread"
        await gone_page.expect_close(CLOSE_MEMBERSHIP_CHANGED)


async def test_account_deletion_updates_the_list_in_place_with_one_event_for_the_group(scene):
    """Threads across the board lose their author's text: the list is told once per
    thread with ``thread_updated`` (replace in place: no thread moves to the top, which
    ``thread`` frames do), from one event for the group; a thread page only hears of
    its own thread's posts."""
    older = await run(scene.start, scene.ash, "Ash's older title", "Older words.")
    newer = await run(scene.start, scene.ash, "Ash's newer title", "Newer words.")
    untouched = await run(scene.start, scene.birch, "Birch's title", "Birch's words.")
    async with (
        Socket(board_path(scene), await cookie(scene.birch)) as board,
        Socket(board_path(scene, untouched.number), await cookie(scene.birch)) as other_page,
    ):
        await run(delete_account, scene.ash.user)
        first = await board.expect("thread_updated")
        second = await board.expect("thread_updated")
        assert (first["thread"], second["thread"]) == (older.number, newer.number)
        assert all(ACCOUNT_LABEL in frame["html"] for frame in (first, second))
        await board.expect_quiet()
        await other_page.expect_quiet()


async def test_retention_updates_the_list_in_place(scene):
    thread = await run(scene.start, scene.ash, "An old title", "Old words.")
    await run(services.post_reply, actor=scene.birch.user, thread=thread, body="A new reply.")
    await run(scene.start, scene.birch, "A newer thread", "Newer words.")
    await run(expire, thread, [1])
    async with Socket(board_path(scene), await cookie(scene.birch)) as board:
        await run(services.posts_purge_expired)
        updated = await board.expect("thread_updated")
        assert updated["thread"] == thread.number and RETENTION_LABEL in updated["html"]
        await board.expect_quiet()
