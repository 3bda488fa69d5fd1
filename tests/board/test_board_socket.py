"""The board's live updates (board/consumers.py): readers on the board's list or on a
thread hear of new threads, replies and hidden posts without a reload; the socket has the
pages' door and the room's enforcement (muted read only; suspension, removal, a new
agreement and signing out close it), and its refusals and bad frames say why."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from board import services
from board.models import Post, ThreadRead
from groups.models import Membership, Status
from moderation import services as moderation_services
from supportgroups.realtime import send_membership_changed
from tests.board.conftest import (
    make_person,
    publish_new_agreement,
    signed_in_client,
    submitted_application,
    take_step,
)
from tests.html import without_random_tokens
from tests.sockets import (  # noqa: F401 - fixtures for pytest
    CLOSE_MEMBERSHIP_CHANGED,
    CLOSE_NOT_ALLOWED,
    CLOSE_SIGNED_OUT,
    Socket,
    _channel_layer_per_test,
    close_worker_connections,
    cookie_of,
    run,
)

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]


def board_path(scene, number: int | None = None) -> str:
    tail = f"{number}/" if number else ""
    return f"/ws/groups/{scene.group.slug}/board/{tail}"


def cookie_for(user, *, verified: bool = True) -> str:
    return cookie_of(signed_in_client(user, verified=verified))


async def cookie(membership, *, verified: bool = True) -> str:
    return await run(cookie_for, membership.user, verified=verified)


# --- the happy path ---------------------------------------------------------------------------


async def test_a_new_thread_and_a_reply_reach_readers_without_a_reload(scene):
    async with Socket(board_path(scene), await cookie(scene.birch)) as birch_list:
        assert birch_list.hello == {
            "type": "hello",
            "pseudonym": "Birch",
            "may_post": True,
            "heartbeat_seconds": birch_list.hello["heartbeat_seconds"],
        }
        thread = await run(scene.start, scene.ash, "Wednesday, not Tuesday", "A hard night.")
        started = await birch_list.expect("thread")
        assert started["thread"] == thread.number and started["pinned"] is False
        assert "Wednesday, not Tuesday" in started["html"] and "Ash" in started["html"]
        assert f'href="/groups/{scene.group.slug}/board/{thread.number}/"' in started["html"]

        async with Socket(board_path(scene, thread.number), await cookie(scene.birch)) as page:
            await run(
                services.post_reply, actor=scene.facilitator.user, thread=thread, body="Here."
            )
            reply = await page.expect("post")
            assert (reply["thread"], reply["post"]) == (thread.number, 2)
            assert "Lantern" in reply["html"] and "Here." in reply["html"]
            assert 'id="post-2"' in reply["html"] and "Report this post" in reply["html"]
            # The list moves the thread up, with its new count.
            moved = await birch_list.expect("thread")
            assert "2 posts" in moved["html"]
            # A reply in another thread is not this page's.
            other = await run(scene.start, scene.ash, "Another", "Elsewhere.")
            await run(services.post_reply, actor=scene.birch.user, thread=other, body="Not here.")
            await page.expect_quiet()


async def test_a_hidden_post_and_a_hidden_thread_start_are_hidden_live(scene):
    thread = await run(scene.start, scene.ash, "A title to hide", "Words to hide.")
    async with (
        Socket(board_path(scene), await cookie(scene.birch)) as board,
        Socket(board_path(scene, thread.number), await cookie(scene.birch)) as page,
    ):
        post = await run(Post.objects.get, thread=thread, number=1)
        await run(
            moderation_services.post_hide,
            post=post,
            actor=scene.facilitator.user,
            guideline_number=1,
        )
        changed = await page.expect("post_changed")
        assert "Hidden by a facilitator." in changed["html"]
        assert "Words to hide" not in changed["html"]
        # In place on the list: hiding a post moves no thread to the top.
        listed = await board.expect("thread_updated")
        assert "Hidden by a facilitator" in listed["html"]
        assert "A title to hide" not in listed["html"]


async def test_pinning_locking_and_closing_reach_the_thread_page(scene):
    thread = await run(scene.start, scene.ash)
    async with Socket(board_path(scene, thread.number), await cookie(scene.ash)) as page:
        await run(
            services.thread_set_state,
            actor=scene.facilitator.user,
            thread=thread,
            state="closed",
            value=True,
        )
        changed = await page.expect("thread_changed")
        assert changed["may_reply"] is False and changed["title"] == "A hard night"
        assert changed["state"] == "Closed: it takes no more replies. "
        # Why it takes no replies, in the page's words: closed, not locked.
        assert changed["no_reply"] == "This thread is closed: it takes no more replies."
        await run(
            services.thread_set_state,
            actor=scene.facilitator.user,
            thread=thread,
            state="closed",
            value=False,
        )
        assert (await page.expect("thread_changed"))["may_reply"] is True
        await run(
            services.thread_set_state,
            actor=scene.facilitator.user,
            thread=thread,
            state="locked",
            value=True,
        )
        locked = await page.expect("thread_changed")
        assert locked["no_reply"] == (
            "A facilitator has locked this thread for now: it takes no replies."
        )


# --- enforcement ------------------------------------------------------------------------------


async def test_a_muted_reader_keeps_reading_and_is_told(scene):
    thread = await run(scene.start, scene.ash)
    async with Socket(board_path(scene, thread.number), await cookie(scene.birch)) as page:
        await run(take_step, scene, scene.birch, "mute")
        status = await page.expect("status")
        assert status["may_post"] is False and "muted" in status["message"]
        await run(services.post_reply, actor=scene.ash.user, thread=thread, body="Still here?")
        assert "Still here?" in (await page.expect("post"))["html"]
        # Muted is read only, also where the socket is not asked: the service refuses.
        with pytest.raises(services.BoardError):
            await run(services.post_reply, actor=scene.birch.user, thread=thread, body="Me too")
        await run(take_step, scene, scene.birch, "unmute")
        assert (await page.expect("status"))["may_post"] is True


@pytest.mark.parametrize(
    "step,reason",
    [("suspend", "suspended"), ("remove", "not_a_member"), ("agreement", "agreement_required")],
)
async def test_suspension_removal_and_a_new_agreement_close_the_socket(scene, step, reason):
    thread = await run(scene.start, scene.ash)
    async with (
        Socket(board_path(scene), await cookie(scene.birch)) as board,
        Socket(board_path(scene, thread.number), await cookie(scene.birch)) as page,
    ):
        if step == "agreement":
            await run(publish_new_agreement, scene)
        else:
            length = {"minutes": 60} if step == "suspend" else {}
            await run(take_step, scene, scene.birch, step, **length)
        for socket in (board, page):
            closed = await socket.expect("closed")
            assert closed["reason"] == reason and closed["message"]
            await socket.expect_close(CLOSE_MEMBERSHIP_CHANGED)


async def test_signing_out_closes_the_socket(scene):
    client = await run(signed_in_client, scene.birch.user)
    async with Socket(board_path(scene), await run(cookie_of, client)) as board:
        await run(client.post, "/accounts/logout/")
        assert (await board.expect("signed_out"))["reason"]
        await board.expect_close(CLOSE_SIGNED_OUT)


async def test_a_removed_reader_gets_nothing_more_even_if_the_notice_was_lost(scene):
    """The events carry numbers only and each is checked again against the database: a
    removal whose notice never reached this socket still stops the next post reaching it."""
    thread = await run(scene.start, scene.ash)
    async with Socket(board_path(scene, thread.number), await cookie(scene.birch)) as page:
        # Removed without telling the socket (as if the channel layer lost the notice).
        await run(remove_quietly, scene.birch)
        await run(services.post_reply, actor=scene.ash.user, thread=thread, body="Secret now.")
        closed = await page.expect("closed")
        assert closed["reason"] == "not_a_member"
        await page.expect_close(CLOSE_MEMBERSHIP_CHANGED)
    assert not any("Secret now." in str(frame) for frame in page.frames)


def remove_quietly(membership) -> None:
    Membership.objects.filter(pk=membership.pk).update(status=Status.REMOVED)


# --- refusals ---------------------------------------------------------------------------------


def outsider_cookie(scene, kind: str) -> str | None:
    if kind == "anonymous":
        return None
    if kind == "other_group_member":
        return cookie_for(scene.other_member.user)
    if kind == "applicant":
        applicant = make_person("applicant-heron")
        submitted_application(scene.group, applicant)
        return cookie_for(applicant)
    if kind == "removed":
        take_step(scene, scene.birch, "remove")
        return cookie_for(scene.birch.user)
    if kind == "suspended":
        take_step(scene, scene.birch, "suspend", minutes=60)
        return cookie_for(scene.birch.user)
    if kind == "unsigned":
        publish_new_agreement(scene)
        return cookie_for(scene.birch.user)
    if kind == "other_facilitator":
        return cookie_for(scene.other_facilitator.user)
    if kind == "unverified_facilitator":
        return cookie_for(scene.facilitator.user, verified=False)
    raise AssertionError(kind)


REFUSALS = {
    "anonymous": "signed_out",
    "other_group_member": "not_a_member",
    "applicant": "not_a_member",
    "removed": "not_a_member",
    "suspended": "suspended",
    "unsigned": "agreement_required",
    "other_facilitator": "not_a_member",
    "unverified_facilitator": "two_factor_required",
}


@pytest.mark.parametrize("on_thread", [False, True], ids=["board", "thread"])
@pytest.mark.parametrize("kind", sorted(REFUSALS))
async def test_outsiders_and_wrong_roles_are_refused_and_told_why(scene, kind, on_thread):
    thread = await run(scene.start, scene.ash, "Ash's thread", "Ash's words")
    path = board_path(scene, thread.number if on_thread else None)
    async with Socket(path, await run(outsider_cookie, scene, kind)) as socket:
        assert socket.connected is False and socket.code == CLOSE_NOT_ALLOWED
        assert socket.refused["reason"] == REFUSALS[kind] and socket.refused["message"]
        assert "Ash" not in without_random_tokens(str(socket.frames))


async def test_a_thread_of_another_group_is_no_thread_here(scene):
    other = await run(scene.start, scene.other_member, "Cedar's", "Cedar's words")
    await run(scene.start, scene.ash)  # thread 1 here is Ash's; ask for 2
    cedar = await run(cookie_for, scene.other_member.user)
    path = f"/ws/groups/{scene.group.slug}/board/{other.number + 1}/"
    async with Socket(path, await cookie(scene.ash)) as socket:
        assert socket.refused["reason"] == "no_such_thread"
    async with Socket(path, cedar) as socket:
        assert socket.refused["reason"] == "not_a_member"


async def test_another_sites_page_cannot_open_it(scene):
    async with Socket(
        board_path(scene), await cookie(scene.ash), origin=b"https://evil.example"
    ) as s:
        assert s.connected is False


# --- bad input --------------------------------------------------------------------------------


async def test_bad_frames_get_an_error_and_the_socket_survives(scene):
    thread = await run(scene.start, scene.ash)
    async with Socket(board_path(scene, thread.number), await cookie(scene.birch)) as page:
        for text, code in [
            ("not json", "invalid_json"),
            ("[1, 2]", "invalid_frame"),
            ('{"type": "send", "body": "x"}', "unknown_type"),
            ('{"type": "read", "post": "1"}', "invalid_post"),
            ('{"type": "read", "post": true}', "invalid_post"),
            ('{"type": "ping", "pad": "' + "x" * 2000 + '"}', "frame_too_large"),
        ]:
            await page.send_text(text)
            await page.expect_error(code)
        await page.still_usable()


# --- read markers -----------------------------------------------------------------------------


async def test_a_reply_read_live_moves_the_read_marker(scene):
    thread = await run(scene.start, scene.ash)
    await run(services.post_reply, actor=scene.ash.user, thread=thread, body="Two")
    async with Socket(board_path(scene, thread.number), await cookie(scene.birch)) as page:
        await page.send({"type": "read", "post": 2})
        await page.still_usable()
        assert await run(lambda: ThreadRead.objects.get(membership=scene.birch).read_up_to) == 2
        # Beyond the last post, or backwards: clamped, never moved back.
        await page.send({"type": "read", "post": 99})
        await page.send({"type": "read", "post": 1})
        await page.still_usable()
        assert await run(lambda: ThreadRead.objects.get(membership=scene.birch).read_up_to) == 2
        # A real reply read after that still moves it.
        await run(services.post_reply, actor=scene.ash.user, thread=thread, body="Three")
        assert (await page.expect("post"))["post"] == 3
        await page.send({"type": "read", "post": 3})
        await page.still_usable()
        assert await run(lambda: ThreadRead.objects.get(membership=scene.birch).read_up_to) == 3


def mute_briefly(membership, seconds: float) -> None:
    """A mute that ends in a moment (as a 10-minute one does, later), told to the sockets."""
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).update(
            status=Status.MUTED, muted_until=timezone.now() + timedelta(seconds=seconds)
        )
        send_membership_changed(user_id=membership.user_id, group_id=membership.group_id)


async def test_a_mute_that_ends_lets_the_open_page_post_again(scene):
    async with Socket(board_path(scene), await cookie(scene.birch)) as board:
        await run(mute_briefly, scene.birch, 0.5)
        muted = await board.expect("status")
        assert muted["may_post"] is False
        # The page's notice, its end as an instant the page shows in the reader's zone.
        until = (await run(Membership.objects.get, pk=scene.birch.pk)).muted_until
        assert 'id="board-muted"' in muted["notice"]
        assert f'<time datetime="{until:%Y-%m-%dT%H:%M:%S}' in muted["notice"]
        assert "data-local" in muted["notice"]
        # Nobody tells the socket: it looks again itself when the mute ends.
        assert (await board.expect("status", timeout=5))["may_post"] is True
