"""Issue 20's journey on the group board, in real browsers: member A (River) starts a
thread; member B (Fern, another browser) sees it appear without a reload and replies under
Fern's name, which appears on River's open page; Fern reports River's post citing rule 2;
the facilitator hides it from the dashboard (and mutes River, in the same decision); both
see it hidden, without a reload; River's mute blocks posting on the server, whatever the
page does."""

import re

from playwright.sync_api import expect

from board.models import Post, Thread
from groups.models import Membership, Status
from moderation.models import Report
from tests.e2e.test_moderation_journey import (  # noqa: F401 - browsers is a fixture
    RULES,
    browsers,
    build,
    sign_in_as_member,
    sign_in_with_second_factor,
)

TITLE = "A hard Wednesday"
BODY = "I could not wait for Tuesday's meeting to say it: today was hard."
REPLY = "Thank you for writing. I had a hard one too."


def board_url(live_server_url, group):
    return f"{live_server_url}/groups/{group.slug}/board/"


def mark_no_reload(page):
    page.evaluate("() => { window.__sameDocument = true; }")


def still_same_document(page) -> bool:
    return page.evaluate("() => window.__sameDocument === true")


def test_a_thread_and_a_reply_appear_live_then_a_reported_post_is_hidden_and_muted(
    page,
    context,
    browsers,  # noqa: F811 - the fixture imported above
    live_server_url,
):
    group, lantern, device, river, fern, _meeting = build()
    sign_in_as_member(context, live_server_url, river.user)
    fern_browser = browsers()
    sign_in_as_member(fern_browser.context, live_server_url, fern.user)
    fern_page = fern_browser.page

    # Fern has the board open.
    with fern_page.expect_websocket(lambda ws: "/board/" in ws.url) as opened:
        fern_page.goto(board_url(live_server_url, group))
    fern_socket = opened.value
    expect(fern_page.get_by_text("Nothing here yet.")).to_be_visible()
    mark_no_reload(fern_page)

    # River starts a thread (a plain form), and lands on it.
    page.goto(board_url(live_server_url, group))
    page.get_by_role("link", name="Start a thread").click()
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("What you want to say").fill(BODY)
    with page.expect_websocket(lambda ws: "/board/1/" in ws.url):
        page.get_by_role("button", name="Post").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(page.locator("#post-1")).to_contain_text("River")

    # Fern's open board shows it, without a reload, and says so to a screen reader.
    thread_link = fern_page.locator("#board-threads").get_by_role("link", name=TITLE)
    expect(thread_link).to_be_visible(timeout=5000)
    expect(fern_page.locator("#thread-1")).to_contain_text("River")
    expect(fern_page.locator("#board-status")).to_have_text(f"Updated just now: {TITLE}")
    expect(fern_page.get_by_text("Nothing here yet.")).to_have_count(0)
    assert still_same_document(fern_page)
    assert not fern_socket.is_closed()

    # Fern opens it and replies under Fern's name; River's open thread shows the reply.
    mark_no_reload(page)
    thread_link.click()
    fern_page.get_by_label("Your reply").fill(REPLY)
    fern_page.get_by_role("button", name="Reply as Fern").click()
    expect(fern_page.locator("#post-2")).to_contain_text("Fern")
    reply = page.locator("#post-2")
    expect(reply).to_contain_text(REPLY, timeout=5000)
    expect(reply.locator(".board-post__meta")).to_contain_text("Fern")
    expect(page.locator("#board-status")).to_have_text("New reply from Fern.")
    assert still_same_document(page)
    thread = Thread.objects.get(group=group)
    assert list(thread.posts.values_list("author__pseudonym", flat=True)) == ["River", "Fern"]

    # Fern reports River's post, citing rule 2.
    fern_page.locator("#post-1").get_by_role("link", name="Report this post").click()
    fern_page.get_by_label(f"2. {RULES[1]}").check()
    fern_page.get_by_label("Anything the facilitators should know").fill("It hurt to read.")
    fern_page.get_by_role("button", name="Send the report").click()
    expect(fern_page).to_have_url(re.compile(r"/board/1/"))
    report = Report.objects.get()
    assert (report.reporter_id, report.reported_id, report.guideline_number) == (
        fern.pk,
        river.pk,
        2,
    )
    assert report.post == Post.objects.get(thread=thread, number=1)
    mark_no_reload(fern_page)

    # Lantern, signed in with the second factor, hides it from the dashboard, and mutes
    # River in the same decision.
    lantern_browser = browsers()
    lantern_page = lantern_browser.page
    sign_in_with_second_factor(lantern_page, live_server_url, "fac-login-handle", device)
    lantern_page.goto(f"{live_server_url}/moderation/{group.slug}/")
    lantern_page.get_by_role("link", name="Board post by River").click()
    expect(lantern_page.get_by_text(BODY)).to_be_visible()
    lantern_page.get_by_label("Hide the post").check()
    lantern_page.get_by_label("Outcome for the author").select_option(label="Mute the member")
    lantern_page.get_by_label("Note").fill("Please take a break; rule 2.")
    lantern_page.get_by_role("button", name="Resolve").click()
    expect(lantern_page.get_by_text("The report is resolved.")).to_be_visible()

    # Both open pages show it hidden at once, the thread's title with it (it started it).
    for reader in (page, fern_page):
        first = reader.locator("#post-1")
        expect(first).to_contain_text("Hidden by a facilitator.", timeout=5000)
        expect(reader.get_by_role("heading", level=1)).to_have_text("Hidden by a facilitator")
        expect(reader.get_by_text(BODY)).to_have_count(0)
        expect(reader.get_by_text(TITLE)).to_have_count(0)
        expect(reader.locator("#post-2")).to_contain_text(REPLY)  # the reply stays
        assert still_same_document(reader)
    # River's page turns read-only and says why; Fern's does not.
    expect(page.locator("#board-reply")).to_be_hidden()
    expect(page.locator("#board-status")).to_contain_text("A facilitator has muted you")
    expect(fern_page.locator("#board-reply")).to_be_visible()
    # A reload (or a late reader) never brings the text back.
    fern_page.reload()
    expect(fern_page.locator("#post-1")).to_contain_text("Hidden by a facilitator.")
    expect(fern_page.get_by_text(BODY)).to_have_count(0)
    fern_page.goto(board_url(live_server_url, group))
    expect(fern_page.locator("#thread-1")).to_contain_text("Hidden by a facilitator")
    expect(fern_page.get_by_text(TITLE)).to_have_count(0)

    # Not just the page: River's form, shown again and sent, is refused by the server.
    assert Membership.objects.get(pk=river.pk).status == Status.MUTED
    page.evaluate("() => { document.getElementById('board-reply').hidden = false; }")
    page.get_by_label("Your reply").fill("Sent anyway.")
    page.get_by_role("button", name="Reply as River").click()
    expect(page.get_by_text("A facilitator has muted you").first).to_be_visible()
    assert [p.body for p in thread.posts.all()] == [BODY, REPLY]
    # The new-thread page says so instead of offering a form (a post sent anyway is
    # refused by the server: tests/board/test_board_removals.py).
    page.goto(f"{board_url(live_server_url, group)}new/")
    expect(page.locator("#board-muted")).to_contain_text("A facilitator has muted you")
    expect(page.get_by_label("Title")).to_have_count(0)
    assert Thread.objects.count() == 1
