"""In a real browser: a thread's page open while the group's retention takes its older
posts, and while an author deletes their account, changes without a reload and says why
the text is gone."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import connections
from django.test import RequestFactory
from django.utils import timezone
from playwright.sync_api import expect

from accounts.sessions import SessionStore
from board import services
from board.models import Post, Removal
from groups.models import Group, Retention
from privacy.services import account_delete
from tests.e2e.test_board_journey import board_url, mark_no_reload, still_same_document
from tests.e2e.test_moderation_journey import build, sign_in_as_member


def purge() -> None:
    try:
        services.posts_purge_expired()
    finally:
        connections.close_all()


def delete_account(user) -> None:
    """The deletion the account page's form makes (its re-authentication is tested in
    tests/privacy), through the same service, closing this thread's connection after."""
    request = RequestFactory().post("/account/delete/")
    request.user = user
    request.session = SessionStore()
    try:
        account_delete(user=user, request=request)
    finally:
        connections.close_all()


def test_an_open_thread_loses_expired_posts_and_says_why_without_a_reload(
    page, context, live_server_url
):
    group, _lantern, _device, river, fern, _meeting = build()
    thread = services.thread_start(
        actor=river.user, group=group, title="An old title", body="Old words."
    )
    services.post_reply(actor=fern.user, thread=thread, body="An old reply.")
    services.post_reply(actor=fern.user, thread=thread, body="A new reply.")
    services.post_reply(actor=river.user, thread=thread, body="River's newest words.")
    sign_in_as_member(context, live_server_url, fern.user)
    with page.expect_websocket(lambda ws: "/board/1/" in ws.url):
        page.goto(f"{board_url(live_server_url, group)}{thread.number}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("An old title")
    mark_no_reload(page)

    Group.objects.filter(pk=group.pk).update(retention=Retention.DAYS_7)
    Post.objects.filter(thread=thread, number__in=[1, 2]).update(
        created_at=timezone.now() - timedelta(days=8)
    )
    with ThreadPoolExecutor(1) as other:
        # Off the test's thread: its event loop (Playwright's) can't send the broadcast.
        other.submit(purge).result()

    expect(page.locator("#post-1")).to_have_count(0, timeout=5000)
    expect(page.locator("#post-2")).to_have_count(0)
    expect(page.get_by_role("heading", level=1)).to_have_text(Removal.RETENTION.label)
    expect(page.locator("#post-3")).to_contain_text("A new reply.")

    # River deletes their account: their post stays in place, saying why it is empty.
    with ThreadPoolExecutor(1) as other:
        other.submit(delete_account, river.user).result()

    expect(page.locator("#post-4")).to_contain_text(Removal.ACCOUNT_DELETED.label, timeout=5000)
    expect(page.get_by_text("River's newest words.")).to_have_count(0)
    assert still_same_document(page)
