"""The board: threads and replies under each member's pseudonym for the group, readable
and writable by exactly those who may enter the group's meetings today; muted members
read only; facilitators pin, lock and close; keyset pages; what is audited."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from audit.events import Action
from board import services
from board.models import Post, Thread
from board.selectors import POSTS_PER_PAGE, THREADS_PER_PAGE, board_threads
from tests.board.conftest import events, publish_new_agreement, signed_in_client, take_step

pytestmark = pytest.mark.django_db


def board_url(scene, name="board:index", **kwargs):
    return reverse(name, kwargs={"slug": scene.group.slug, **kwargs})


def test_it_starts_a_thread_under_the_pseudonym_and_shows_it_to_the_group(scene):
    ash = signed_in_client(scene.ash.user)
    response = ash.post(
        board_url(scene, "board:new_thread"),
        {"title": "A hard night", "body": "I could not sleep at all."},
    )
    thread = Thread.objects.get(group=scene.group)
    assert response.status_code == 302
    assert response["Location"] == board_url(scene, "board:thread", number=thread.number)
    assert thread.number == 1 and thread.author == scene.ash

    birch = signed_in_client(scene.birch.user)
    board = birch.get(board_url(scene)).content.decode()
    assert "A hard night" in board and "Ash" in board
    assert "the board is not end-to-end encrypted" in board
    assert "the people who run this site could read it" in board
    page = birch.get(board_url(scene, "board:thread", number=1)).content.decode()
    assert "I could not sleep at all." in page
    assert "member-ash" not in page  # the account handle never shows


def test_the_board_and_a_thread_keep_the_groups_help_in_reach(scene):
    """A member writing at night may need the group's crisis lines more than an answer:
    the room and the group's home show them, and so do the board's pages."""
    thread = scene.start(scene.ash)
    birch = signed_in_client(scene.birch.user)
    for url in (board_url(scene), board_url(scene, "board:thread", number=thread.number)):
        page = birch.get(url).content.decode()
        assert "If you need help now" in page
        assert escape(scene.group.crisis_resources).splitlines()[0] in page
        assert reverse("moderation:raise_flag", args=[scene.group.slug]) in page


def test_it_replies_under_the_repliers_pseudonym(scene):
    thread = scene.start(scene.ash)
    birch = signed_in_client(scene.birch.user)
    response = birch.post(
        board_url(scene, "board:reply", number=thread.number), {"body": "Me too."}
    )
    assert response.status_code == 302
    reply = Post.objects.get(thread=thread, number=2)
    assert reply.author == scene.birch and reply.body == "Me too."
    page = birch.get(board_url(scene, "board:thread", number=thread.number)).content.decode()
    assert "Birch" in page and "Me too." in page


def test_it_numbers_threads_per_group_so_urls_say_nothing_across_groups(scene):
    scene.start(scene.other_member)
    scene.start(scene.other_member)
    first_here = scene.start(scene.ash)
    assert first_here.number == 1  # not 3: the other group's board is not counted


@pytest.mark.parametrize("field,value", [("title", ""), ("body", "   "), ("title", "x" * 121)])
def test_it_rerenders_the_form_with_a_message_on_bad_input(scene, field, value):
    ash = signed_in_client(scene.ash.user)
    data = {"title": "A title", "body": "Some words.", field: value}
    response = ash.post(board_url(scene, "board:new_thread"), data)
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert not Thread.objects.exists()


def test_a_muted_member_reads_but_cannot_post(scene):
    thread = scene.start(scene.ash)
    take_step(scene, scene.birch, "mute", minutes=60)
    birch = signed_in_client(scene.birch.user)
    page = birch.get(board_url(scene, "board:thread", number=thread.number))
    assert page.status_code == 200 and b"I could not sleep." in page.content
    assert b"muted you" in page.content and b"Reply as" not in page.content

    # The server refuses, whatever the page showed.
    response = birch.post(board_url(scene, "board:reply", number=thread.number), {"body": "Hi"})
    assert response.status_code == 200 and b"muted you" in response.content
    birch.post(board_url(scene, "board:new_thread"), {"title": "T", "body": "B"})
    assert Post.objects.count() == 1
    with pytest.raises(services.BoardError) as refused:
        services.post_reply(actor=scene.birch.user, thread=thread, body="Hi")
    assert refused.value.code == "muted"


def test_a_lapsed_mute_lets_the_member_post_again(scene, settings):
    from datetime import timedelta

    from django.utils import timezone

    from groups.models import Membership

    take_step(scene, scene.birch, "mute", minutes=60)
    Membership.objects.filter(pk=scene.birch.pk).update(
        muted_until=timezone.now() - timedelta(minutes=1)
    )
    thread = scene.start(scene.birch)
    assert thread.author == scene.birch


def test_facilitators_pin_lock_and_close_threads(scene):
    older = scene.start(scene.ash, title="Older")
    newer = scene.start(scene.birch, title="Newer")
    lantern = signed_in_client(scene.facilitator.user)
    url = board_url(scene, "board:thread_state", number=older.number)
    assert lantern.post(url, {"state": "pinned", "value": "on"}).status_code == 302
    assert [t.number for t in board_threads(scene.group.pk).threads] == [older.number, newer.number]

    lantern.post(url, {"state": "locked", "value": "on"})
    with pytest.raises(services.BoardError) as refused:
        services.post_reply(actor=scene.birch.user, thread=older, body="Hi")
    assert refused.value.code == "thread_locked"
    # A facilitator may still write in a locked thread (to say why it is locked).
    services.post_reply(actor=scene.facilitator.user, thread=older, body="Let's pause here.")

    lantern.post(url, {"state": "closed", "value": "on"})
    with pytest.raises(services.BoardError) as refused:
        services.post_reply(actor=scene.facilitator.user, thread=older, body="Hi")
    assert refused.value.code == "thread_closed"
    lantern.post(url, {"state": "locked"})  # no value: unlock
    older.refresh_from_db()
    assert (older.pinned, older.locked, older.closed) == (True, False, True)

    changes = events(Action.BOARD_THREAD_CHANGED)
    assert len(changes) == 4 and all(e.actor_id == scene.facilitator.user_id for e in changes)


def test_members_cannot_pin_lock_or_close(scene):
    thread = scene.start(scene.ash)
    ash = signed_in_client(scene.ash.user)
    url = board_url(scene, "board:thread_state", number=thread.number)
    assert ash.post(url, {"state": "closed", "value": "on"}).status_code == 404
    with pytest.raises(services.BoardError):
        services.thread_set_state(actor=scene.ash.user, thread=thread, state="closed", value=True)
    with pytest.raises(services.BoardError):
        services.thread_set_state(
            actor=scene.other_facilitator.user, thread=thread, state="closed", value=True
        )
    thread.refresh_from_db()
    assert not thread.closed


def test_deleting_a_post_deletes_its_text_and_keeps_the_replies(scene):
    thread = scene.start(scene.ash, title="Title to go", body="Text to go")
    services.post_reply(actor=scene.birch.user, thread=thread, body="A reply that stays")
    ash = signed_in_client(scene.ash.user)
    url = board_url(scene, "board:delete_post", number=thread.number, post_number=1)
    assert ash.get(url).status_code == 200
    assert ash.post(url).status_code == 302

    first = Post.objects.get(thread=thread, number=1)
    assert first.body is None and first.deleted_at is not None
    thread.refresh_from_db()
    assert thread.title is None
    page = ash.get(board_url(scene, "board:thread", number=thread.number)).content.decode()
    assert "[deleted by its author]" in page and "A reply that stays" in page
    assert "Text to go" not in page
    (event,) = events(Action.BOARD_POST_DELETED)
    assert event.actor_id == scene.ash.user_id and "Text" not in str(event.extra)


def test_only_the_author_deletes_a_post(scene):
    thread = scene.start(scene.ash)
    for someone in (scene.birch, scene.facilitator, scene.other_member):
        client = signed_in_client(someone.user)
        url = board_url(scene, "board:delete_post", number=thread.number, post_number=1)
        assert client.post(url).status_code == 404
        with pytest.raises(services.BoardError):
            services.post_delete(actor=someone.user, post=thread.posts.get())
    assert Post.objects.get().body == "I could not sleep."


def test_starting_a_thread_is_audited_without_its_text(scene):
    thread = scene.start(scene.ash, title="Secret title", body="Secret body")
    (event,) = events(Action.BOARD_THREAD_STARTED)
    assert (event.actor_id, event.group_id) == (scene.ash.user_id, scene.group.pk)
    assert event.extra == {"thread": thread.number}
    assert "Secret" not in repr(event.__dict__)


def test_the_board_pages_through_threads_and_posts_by_keyset(scene, settings):
    for index in range(THREADS_PER_PAGE + 3):
        Thread.objects.create(group=scene.group, number=index + 1, title=f"T{index + 1}")
    client = signed_in_client(scene.ash.user)
    first = client.get(board_url(scene))
    first_page = board_threads(scene.group.pk)
    assert len(first_page.threads) == THREADS_PER_PAGE and first_page.next_after
    second = board_threads(scene.group.pk, after=first_page.next_after)
    numbers = [t.number for t in first_page.threads + second.threads]
    assert sorted(numbers) == list(range(1, THREADS_PER_PAGE + 4)) and second.next_after is None
    assert first.status_code == 200 and b"Older threads" in first.content
    # A malformed key is the first page, not an error.
    assert client.get(board_url(scene) + "?after=not-a-key").status_code == 200

    thread = scene.start(scene.ash)
    for _ in range(POSTS_PER_PAGE + 1):
        Post.objects.create(
            thread=thread, number=thread.posts.count() + 1, author=scene.ash, body="x"
        )
    page = client.get(board_url(scene, "board:thread", number=thread.number))
    assert page.content.decode().count('class="board-post"') == POSTS_PER_PAGE
    later = client.get(
        board_url(scene, "board:thread", number=thread.number) + f"?after={POSTS_PER_PAGE}"
    )
    assert later.content.decode().count('class="board-post"') == 2


def test_posting_is_rate_limited(scene):
    thread = scene.start(scene.ash)
    for _ in range(services.RATE_LIMIT_POSTS - 1):
        services.post_reply(actor=scene.ash.user, thread=thread, body="again")
    with pytest.raises(services.BoardError) as refused:
        services.post_reply(actor=scene.ash.user, thread=thread, body="again")
    assert refused.value.code == "rate_limited"


def test_a_new_agreement_closes_the_board_until_signed(scene):
    thread = scene.start(scene.ash)
    publish_new_agreement(scene)
    ash = signed_in_client(scene.ash.user)
    response = ash.get(board_url(scene, "board:thread", number=thread.number))
    assert response.status_code == 302 and response["Location"] == reverse(
        "groups:sign", kwargs={"slug": scene.group.slug}
    )
    with pytest.raises(services.BoardError) as refused:
        services.post_reply(actor=scene.ash.user, thread=thread, body="Hi")
    assert refused.value.code == "agreement_required"


def test_an_empty_thread_or_reply_is_told_what_to_write_in_plain_words(scene):
    # A first-time member who presses Post too soon reads what is missing, not "This
    # field is required."
    ash = signed_in_client(scene.ash.user)
    page = ash.post(board_url(scene, "board:new_thread"), {"title": "", "body": " "})
    text = page.content.decode()
    assert "Give your thread a title" in text and "Write what you want to say" in text
    assert "This field is required" not in text
    thread = scene.start(scene.birch)
    reply = ash.post(board_url(scene, "board:reply", number=thread.number), {"body": ""})
    assert "Write your reply" in reply.content.decode()
    assert "This field is required" not in reply.content.decode()
    assert Post.objects.count() == 1
