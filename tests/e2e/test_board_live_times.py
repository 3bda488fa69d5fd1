"""A reply that arrives live on an open thread reads its time like the posts the page
came with: in the reader's own zone, named ("… EST"), not in the server's UTC wording
("5 Dec 2026, 19:42 UTC") beside "Sat, Dec 5, 2026, 02:42 PM EST"."""

import re
from concurrent.futures import ThreadPoolExecutor

from django.db import connections
from playwright.sync_api import expect

from board import services as board_services
from tests.e2e.test_everyday_pages import signed_in_context
from tests.e2e.test_moderation_journey import build


def test_a_reply_arriving_live_shows_its_time_in_the_readers_zone(browser, live_server_url):
    group, _lantern, _device, river, fern, _meeting = build()
    thread = board_services.thread_start(
        actor=fern.user, group=group, title="A hard night", body="I could not sleep."
    )
    context = signed_in_context(
        browser, live_server_url, river.user, timezone_id="America/New_York", locale="en-US"
    )
    try:
        page = context.new_page()
        with page.expect_websocket(lambda ws: "/board/" in ws.url):
            page.goto(f"{live_server_url}/groups/{group.slug}/board/{thread.number}/")
        in_new_york = re.compile(r"\b(EST|EDT)$")
        expect(page.locator("#post-1 time")).to_have_text(in_new_york)

        # Fern replies from elsewhere: in another thread, since the broadcast on commit
        # cannot run in this one while Playwright's loop is marked as running.
        def reply():
            try:
                board_services.post_reply(actor=fern.user, thread=thread, body="Still awake.")
            finally:
                connections.close_all()  # this thread's own connection

        with ThreadPoolExecutor(1) as other:
            other.submit(reply).result()
        expect(page.locator("#post-2")).to_contain_text("Still awake.")
        expect(page.locator("#post-2 time")).to_have_text(in_new_york)
    finally:
        context.close()
