"""The board and thread pages ask the database the same number of questions whatever
the board's size (10 or 1,000 posts)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from board.models import Post, Thread
from board.services import post_reply
from tests.board.conftest import signed_in_client

pytestmark = pytest.mark.django_db


def fill(scene, posts: int) -> Thread:
    """``posts`` posts by both members, half of them starting their own thread."""
    now = timezone.now()
    threads = Thread.objects.bulk_create(
        Thread(group=scene.group, number=n, title=f"Thread {n}", author=scene.ash, last_post_at=now)
        for n in range(1, posts // 2 + 1)
    )
    first = threads[0]
    Post.objects.bulk_create(
        [Post(thread=t, number=1, author=scene.ash, body="First") for t in threads]
        + [
            Post(thread=first, number=n, author=scene.birch, body="Reply")
            for n in range(2, posts - len(threads) + 2)
        ]
    )
    return first


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("page", ["index", "thread"])
def test_the_same_number_of_queries_at_10_and_1000_posts(scene, page):
    client = signed_in_client(scene.ash.user)
    counts = []
    for size in (10, 1000):
        Thread.objects.all().delete()
        first = fill(scene, size)
        assert Post.objects.count() == size
        url = f"/groups/{scene.group.slug}/board/" + (
            f"{first.number}/" if page == "thread" else ""
        )
        queries(client, url)  # warm the per-session caches
        counts.append(queries(client, url))
    assert counts[0] == counts[1]


def test_opening_a_read_thread_again_writes_nothing(scene):
    """The read marker comes with the thread (one query): a visit with nothing new neither
    writes nor asks again; a visit after a new post moves it with one UPDATE."""
    thread = scene.start(scene.ash)
    client = signed_in_client(scene.birch.user)
    url = f"/groups/{scene.group.slug}/board/{thread.number}/"
    client.get(url)  # the first visit makes the marker

    def statements() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return [q["sql"] for q in captured if "board_threadread" in q["sql"]]

    assert len(statements()) == 1  # read with the thread, nothing else
    scene.start(scene.ash, title="Elsewhere")  # not this thread
    post_reply(actor=scene.ash.user, thread=thread, body="New")
    moved = statements()
    assert len(moved) == 2 and moved[1].startswith("UPDATE"), moved
