"""Why a post's text or a thread's title is gone, said honestly: deleted by its author,
removed under the group's retention period, or removed with its author's account (a
reason stored when it goes, the same on the page, in the export and in frames); read
markers go when a place ends; a muted member and a locked or closed thread are told
plainly instead of offered forms the server refuses."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from board import services
from board.models import Post, Removal, Thread, ThreadRead
from groups import services as group_services
from groups.models import Group, Membership, Retention
from moderation import services as moderation_services
from tests.board.conftest import signed_in_client, take_step
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

# As the pages and frames show them (HTML-escaped).
RETENTION_LABEL = escape(Removal.RETENTION.label)
ACCOUNT_LABEL = escape(Removal.ACCOUNT_DELETED.label)
AUTHOR_LABEL = escape(Removal.AUTHOR.label)


def thread_page(client, scene, thread) -> str:
    url = reverse("board:thread", kwargs={"slug": scene.group.slug, "number": thread.number})
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def board_page(client, scene) -> str:
    return client.get(reverse("board:index", kwargs={"slug": scene.group.slug})).content.decode()


def delete_account(user) -> None:
    client = signed_in_client(user)
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    assert client.post("/account/delete/", {"confirm": "delete my account"}).status_code == 200


def age(thread: Thread, number: int, days: float) -> None:
    Post.objects.filter(thread=thread, number=number).update(
        created_at=timezone.now() - timedelta(days=days)
    )


# --- the reason, stored and shown --------------------------------------------------------------


def test_a_title_taken_by_retention_says_so_not_deleted_by_its_author(scene):
    Group.objects.filter(pk=scene.group.pk).update(retention=Retention.DAYS_7)
    thread = scene.start(scene.ash, title="An old title", body="Old words")
    age(thread, 1, 8)
    services.post_reply(actor=scene.birch.user, thread=thread, body="A recent reply")

    services.posts_purge_expired()

    assert Thread.objects.get(pk=thread.pk).title_removed == Removal.RETENTION
    birch = signed_in_client(scene.birch.user)
    for page in (thread_page(birch, scene, thread), board_page(birch, scene)):
        assert RETENTION_LABEL in page
        assert AUTHOR_LABEL not in page and "An old title" not in page


def test_posts_and_titles_removed_with_an_account_say_so(scene):
    thread = scene.start(scene.ash, title="Ash's title", body="Ash's words")
    services.post_reply(actor=scene.birch.user, thread=thread, body="Birch's reply stays")
    services.post_reply(actor=scene.ash.user, thread=thread, body="Ash's second words")
    # A post Ash had deleted still says Ash deleted it.
    services.post_delete(actor=scene.ash.user, post=Post.objects.get(thread=thread, number=3))

    delete_account(scene.ash.user)

    reasons = dict(Post.objects.filter(thread=thread).values_list("number", "removed"))
    assert reasons == {1: Removal.ACCOUNT_DELETED, 2: "", 3: Removal.AUTHOR}
    assert Thread.objects.get(pk=thread.pk).title_removed == Removal.ACCOUNT_DELETED
    page = thread_page(signed_in_client(scene.birch.user), scene, thread)
    assert page.count(ACCOUNT_LABEL) == 2  # the heading and the first post
    assert page.count(AUTHOR_LABEL) == 1  # the third post only
    assert escape("Birch's reply stays") in page
    assert ACCOUNT_LABEL in board_page(signed_in_client(scene.birch.user), scene)


def test_a_post_deleted_by_its_author_stores_the_reason(scene):
    thread = scene.start(scene.ash, title="My title", body="My words")
    services.post_delete(actor=scene.ash.user, post=thread.posts.get())
    assert Post.objects.get(thread=thread).removed == Removal.AUTHOR
    assert Thread.objects.get(pk=thread.pk).title_removed == Removal.AUTHOR
    page = thread_page(signed_in_client(scene.birch.user), scene, thread)
    assert page.count(AUTHOR_LABEL) == 2


def test_the_export_lists_the_members_deleted_posts_with_the_same_reason(scene):
    thread = scene.start(scene.ash, title="My title", body="My words")
    services.post_reply(actor=scene.ash.user, thread=thread, body="Kept words")
    services.post_delete(actor=scene.ash.user, post=Post.objects.get(thread=thread, number=1))
    client = signed_in_client(scene.ash.user)
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    data = json.loads(client.post("/account/export/").content)
    assert [(p["post"], p["body"], p["text_removed"]) for p in data["board_posts"]] == [
        (1, None, Removal.AUTHOR.label),
        (2, "Kept words", None),
    ]
    assert "My words" not in json.dumps(data) and "My title" not in json.dumps(data)


# --- read markers end with the place -----------------------------------------------------------


def read_everything(scene, membership) -> Thread:
    thread = scene.start(scene.facilitator, title="Read me", body="Words")
    services.thread_mark_read(actor=membership.user, thread=thread, up_to=1)
    assert ThreadRead.objects.filter(membership=membership).count() == 1
    return thread


def test_leaving_a_group_deletes_ones_read_markers(scene):
    read_everything(scene, scene.birch)
    other = read_everything(scene, scene.ash)
    group_services.membership_leave(actor=scene.birch.user, group=scene.group)
    assert not ThreadRead.objects.filter(membership=scene.birch).exists()
    assert list(ThreadRead.objects.values_list("membership", "thread")) == [
        (scene.ash.pk, other.pk)
    ]


def test_the_rule_that_forgets_read_markers_is_on_the_membership_table():
    """The rule lives in the database (board/migrations/0003): a migration that rebuilds
    groups_membership must not lose it (SQLite drops triggers on a rebuild; the SQLite
    side: tests/supportgroups/test_embedded_default.py)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgenabled FROM pg_trigger"
            " WHERE tgname = 'board_forget_reads_of_ended_place' AND NOT tgisinternal"
        )
        assert cursor.fetchall() == [("groups_membership", "O")]


def test_being_removed_deletes_ones_read_markers_but_a_mute_or_suspension_keeps_them(scene):
    read_everything(scene, scene.birch)
    read_everything(scene, scene.ash)
    take_step(scene, scene.ash, "mute", minutes=60)
    take_step(scene, scene.ash, "suspend", minutes=60)
    assert ThreadRead.objects.filter(membership=scene.ash).count() == 1
    take_step(scene, scene.birch, "remove")
    assert not ThreadRead.objects.filter(membership=scene.birch).exists()
    assert ThreadRead.objects.filter(membership=scene.ash).count() == 1


def test_deleting_the_account_deletes_its_read_markers(scene):
    read_everything(scene, scene.birch)
    delete_account(scene.birch.user)
    assert not Membership.objects.filter(pk=scene.birch.pk).exists()
    assert not ThreadRead.objects.exists()


# --- muted members and threads that take no replies ---------------------------------------------


def test_a_muted_member_is_told_until_when_and_offered_no_form(scene):
    take_step(scene, scene.birch, "mute", minutes=60)
    until = Membership.objects.get(pk=scene.birch.pk).muted_until
    shown = until.strftime("%-d %b %Y, %H:%M")
    birch = signed_in_client(scene.birch.user)
    url = reverse("board:new_thread", kwargs={"slug": scene.group.slug})

    page = birch.get(url).content.decode()
    assert f'A facilitator has muted you until <time datetime="{until.isoformat()}' in page
    assert shown in page
    assert 'name="title"' not in page and '<form method="post" novalidate>' not in page
    # Nothing on the page speaks as if a thread were about to be written.
    assert "It will be shown as written by" not in page
    # The board's list and a thread say the same.
    thread = scene.start(scene.ash)
    assert shown in board_page(birch, scene)
    assert shown in thread_page(birch, scene, thread)
    # The server still refuses, and says until when.
    refused = birch.post(url, {"title": "T", "body": "B"})
    assert shown in refused.content.decode()
    assert Thread.objects.count() == 1
    with pytest.raises(services.BoardError) as error:
        services.thread_start(actor=scene.birch.user, group=scene.group, title="T", body="B")
    assert error.value.code == "muted" and shown in error.value.message


def test_a_suspended_member_is_told_until_when_on_every_board_page(scene):
    thread = scene.start(scene.ash)
    take_step(scene, scene.birch, "suspend", minutes=60 * 24)
    until = Membership.objects.get(pk=scene.birch.pk).suspended_until
    shown = until.strftime("%-d %b %Y, %H:%M")
    birch = signed_in_client(scene.birch.user)
    for url in (
        reverse("board:index", kwargs={"slug": scene.group.slug}),
        reverse("board:new_thread", kwargs={"slug": scene.group.slug}),
        reverse("board:thread", kwargs={"slug": scene.group.slug, "number": thread.number}),
    ):
        response = birch.get(url)
        page = response.content.decode()
        assert response.status_code == 403
        assert (
            f'You are suspended from this group until <time datetime="{until.isoformat()}' in page
        )
        assert shown in page and "its board is closed to you until then." in page
        # The group's help lines stay in reach, as on the room's page.
        assert "If you need help now" in page
        assert str(escape(scene.group.crisis_resources)).splitlines()[0] in page
        assert 'name="title"' not in page and 'name="body"' not in page
    # The server refuses a post sent anyway, in the same words.
    with pytest.raises(services.BoardError) as error:
        services.thread_start(actor=scene.birch.user, group=scene.group, title="T", body="B")
    assert error.value.code == "suspended" and shown in error.value.message


def test_a_member_who_may_post_gets_the_form(scene):
    page = signed_in_client(scene.birch.user).get(
        reverse("board:new_thread", kwargs={"slug": scene.group.slug})
    )
    assert 'name="title"' in page.content.decode() and "muted you" not in page.content.decode()


@pytest.mark.parametrize(
    "state,words",
    [
        ("locked", "A facilitator has locked this thread for now: it takes no replies."),
        ("closed", "This thread is closed: it takes no more replies."),
    ],
)
def test_a_locked_or_closed_thread_offers_no_reply_box_and_says_why(scene, state, words):
    thread = scene.start(scene.ash)
    services.thread_set_state(actor=scene.facilitator.user, thread=thread, state=state, value=True)
    page = thread_page(signed_in_client(scene.birch.user), scene, thread)
    assert words in page and 'id="board-reply"' not in page
    # A facilitator may still reply to a locked thread, not to a closed one.
    page = thread_page(signed_in_client(scene.facilitator.user), scene, thread)
    assert ('id="board-reply"' in page) is (state == "locked")


def kept(page: str, name: str) -> str | None:
    """The read-only copy of a refused post's field, as the page shows it."""
    found = re.search(rf'<textarea id="kept-{name}" readonly[^>]*>(.*?)</textarea>', page, re.S)
    return found.group(1) if found else None


def test_a_thread_refused_because_of_a_mute_keeps_what_was_written(scene):
    """Muted while the form was open: the refusal says why and gives the text back."""
    birch = signed_in_client(scene.birch.user)
    url = reverse("board:new_thread", kwargs={"slug": scene.group.slug})
    take_step(scene, scene.birch, "mute", minutes=60)
    page = birch.post(url, {"title": "My own title", "body": "Words I took time over."})
    page = page.content.decode()
    assert "A facilitator has muted you" in page
    assert kept(page, "title") == "My own title"
    assert kept(page, "body") == "Words I took time over."
    assert not Thread.objects.exists()


@pytest.mark.parametrize("state", ["locked", "closed", "muted"])
def test_a_refused_reply_keeps_what_was_written(scene, state):
    thread = scene.start(scene.ash)
    birch = signed_in_client(scene.birch.user)
    if state == "muted":
        take_step(scene, scene.birch, "mute", minutes=60)
    else:
        services.thread_set_state(
            actor=scene.facilitator.user, thread=thread, state=state, value=True
        )
    url = reverse("board:reply", kwargs={"slug": scene.group.slug, "number": thread.number})
    page = birch.post(url, {"body": "A reply I took time over."}).content.decode()
    assert kept(page, "body") == "A reply I took time over."
    assert Post.objects.filter(thread=thread).count() == 1


def test_a_reported_posts_text_stays_in_the_open_report_until_it_is_resolved(scene):
    """The README's promise: account deletion takes the post's text, but an open report's
    copy stays as evidence until a facilitator resolves the report, then goes."""
    thread = scene.start(scene.ash, "A title", "Words that were reported.")
    post = Post.objects.get(thread=thread, number=1)
    report = moderation_services.post_report_file(
        actor=scene.birch.user, post=post, guideline_number=1
    )
    delete_account(scene.ash.user)
    assert Post.objects.get(pk=post.pk).body is None
    report.refresh_from_db()
    assert report.message_body == "Words that were reported."
    moderation_services.report_resolve(report=report, actor=scene.facilitator.user, action="none")
    report.refresh_from_db()
    assert report.message_body is None
