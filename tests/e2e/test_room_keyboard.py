"""Everyday use of the room and the header, by keyboard and on a phone (issue 21, points 1,
2, 4, 5 and 8): Escape closes what is open before it counts toward "Leave quickly"; the
message list is one Tab stop with arrow keys inside; the message box is in view on a
laptop and a phone; a muted member reads why and until when; tables and the header fit a
phone; the report controls say what is true after a reload."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Session
from meetings import services as meeting_services
from moderation import services as moderation_services
from tests.e2e import test_audit_console as audit_world
from tests.e2e.test_leave_quickly import NEUTRAL_PAGE, origin
from tests.e2e.test_moderation_journey import (
    RULES,
    build,
    message_item,
    open_room,
    sign_in_as_member,
    sign_in_with_second_factor,
)
from tests.factories import CHEAP_PASSWORD_HASHERS

LAPTOP = {"width": 1280, "height": 720}
PHONE = {"width": 375, "height": 740}


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


def post(meeting, membership, body, n):
    return meeting_services.message_post(
        meeting_id=meeting.pk, membership_id=membership.pk, client_id=f"seed-{n:08d}", body=body
    )


def fake_neutral_site(page, allow_foreign_origin):
    neutral = settings.QUICK_EXIT_URL
    allow_foreign_origin(origin(neutral))
    page.context.route(
        origin(neutral) + "/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=NEUTRAL_PAGE),
    )
    return neutral


def focused(page):
    return page.evaluate(
        "() => { const e = document.activeElement;"
        " if (e.tagName === 'LI') return `message ${e.dataset.seq}`;"
        " return e.id || e.textContent.trim(); }"
    )


def in_view(page, selector):
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return (
        box["y"] >= 0
        and box["y"] + box["height"] <= size["height"]
        and box["x"] >= 0
        and (box["x"] + box["width"] <= size["width"])
    )


def overlaps(a, b):
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def no_sideways_scroll(page):
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


# --- 1. Escape ---------------------------------------------------------------------------------


def test_escape_closes_an_open_report_form_first_and_only_two_more_presses_leave(
    page, context, live_server_url, allow_foreign_origin
):
    group, lantern, device, river, fern, meeting = build()
    post(meeting, fern, "Has anyone tried the breathing exercise?", 1)
    sign_in_as_member(context, live_server_url, river.user)
    neutral = fake_neutral_site(page, allow_foreign_origin)
    open_room(page, live_server_url, meeting)

    message = message_item(page, "breathing exercise")
    message.get_by_role("button", name="Report").click()
    form = message.locator("form.chat__form")
    expect(form).to_be_visible()

    # The natural retry: Escape, Escape. The first closes the form, the second is the
    # first press with nothing open: still in the room, still signed in.
    page.keyboard.press("Escape")
    expect(form).to_have_count(0)
    assert focused(page) == "message 1"  # back on the message the form was for
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert page.url == f"{live_server_url}/meetings/{meeting.pk}/"
    assert Session.objects.exists()

    # Two presses with nothing open leave.
    page.keyboard.press("Escape")
    expect(page).to_have_url(neutral)


def test_escape_closes_the_phone_menu_before_it_counts_toward_leaving(
    page, context, live_server_url, allow_foreign_origin
):
    group, lantern, device, river, fern, meeting = build()
    sign_in_as_member(context, live_server_url, river.user)
    fake_neutral_site(page, allow_foreign_origin)
    page.set_viewport_size(PHONE)
    page.goto(live_server_url + "/groups/mine/")
    menu = page.get_by_role("button", name="Menu")
    menu.click()
    expect(page.get_by_role("link", name="Your account")).to_be_visible()

    page.keyboard.press("Escape")
    expect(page.get_by_role("link", name="Your account")).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert page.url == live_server_url + "/groups/mine/"


# --- 2. the keyboard path to the message box ------------------------------------------------


def test_the_room_opens_in_the_message_box_and_the_list_is_one_tab_stop(
    page, context, live_server_url
):
    group, lantern, device, river, fern, meeting = build()
    for n, text in enumerate(("First from Fern.", "Second from Fern.", "Third from Fern."), 1):
        post(meeting, fern, text, n)
    sign_in_with_second_factor(page, live_server_url, "fac-login-handle", device)
    page.set_viewport_size(LAPTOP)
    open_room(page, live_server_url, meeting)
    expect(page.locator("#chat li")).to_have_count(3)

    # Focus is in the box when the room opens.
    expect(page.locator("#composer-body")).to_be_focused()

    # Going back from the box: one stop for the whole list (the newest message), then out.
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "message 3"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("() => !document.getElementById('chat').contains(document.activeElement)")
    stops = page.evaluate(
        """() => [...document.querySelectorAll('#chat [tabindex="0"], #chat button, #chat a')]
              .filter(e => e.tabIndex >= 0).length"""
    )
    assert stops == 1, f"{stops} Tab stops in the message list"

    # Arrows inside: up to an older message, right to its actions, Enter opens one.
    page.keyboard.press("Tab")
    assert focused(page) == "message 3"
    page.keyboard.press("ArrowUp")
    assert focused(page) == "message 2"
    page.keyboard.press("Home")
    assert focused(page) == "message 1"
    page.keyboard.press("ArrowRight")
    assert focused(page) == "Report"
    page.keyboard.press("ArrowRight")
    assert focused(page) == "Hide"
    page.keyboard.press("Enter")
    hide_form = message_item(page, "First from Fern.").locator("form.chat__form")
    expect(hide_form).to_contain_text("Hide this message for everyone")
    page.keyboard.press("Escape")
    expect(hide_form).to_have_count(0)
    # The message last visited is the list's Tab stop now; Tab goes on to the box.
    assert focused(page) == "message 1"
    page.keyboard.press("Tab")
    expect(page.locator("#composer-body")).to_be_focused()


def test_the_skip_link_leads_to_the_message_box(page, context, live_server_url):
    group, lantern, device, river, fern, meeting = build()
    sign_in_as_member(context, live_server_url, river.user)
    open_room(page, live_server_url, meeting)
    page.get_by_role("link", name="Skip to content").focus()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the message box")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#composer-body")).to_be_focused()


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["1280x720", "375x740"])
def test_the_message_box_is_in_view_and_the_messages_scroll_above_it(
    page, context, live_server_url, size, settings
):
    settings.CHAT_RATE_LIMIT_MESSAGES = 100
    group, lantern, device, river, fern, meeting = build()
    for n in range(1, 31):
        post(meeting, fern, f"Message number {n}, a line or two long to fill the room.", n)
    sign_in_as_member(context, live_server_url, river.user)
    page.set_viewport_size(size)
    open_room(page, live_server_url, meeting)
    expect(page.locator("#chat li")).to_have_count(30)

    assert page.evaluate("() => window.scrollY") == 0
    for selector in ("#composer-body", "#composer-send"):
        assert in_view(page, selector), f"{selector} is not in view at {size}"
    scroll = page.evaluate(
        "() => { const c = document.getElementById('chat');"
        " return [c.scrollHeight, c.clientHeight, c.scrollTop]; }"
    )
    assert scroll[0] > scroll[1], "the messages do not scroll in their own box"
    assert scroll[2] + scroll[1] >= scroll[0] - 2, "the newest message is not shown"
    assert page.locator("#chat").bounding_box()["height"] >= 90
    no_sideways_scroll(page)
    # The floating Leave quickly button covers nothing of the box.
    leave = page.get_by_role("link", name="Leave quickly").bounding_box()
    for selector in ("#composer-body", "#composer-send", "#chat"):
        assert not overlaps(leave, page.locator(selector).bounding_box()), selector


def test_a_phone_keeps_the_hint_of_who_reads_a_message_in_a_compact_form(
    page, context, live_server_url
):
    # Below 40rem the keys' help goes (a phone has its Send button), but not what a
    # member must know before writing: everyone in the meeting reads it, under their name.
    group, lantern, device, river, fern, meeting = build()
    sign_in_as_member(context, live_server_url, river.user)
    page.set_viewport_size(PHONE)
    open_room(page, live_server_url, meeting)
    who = page.locator("#composer-help").get_by_text("Everyone in the meeting sees")
    expect(who).to_be_visible()
    expect(page.locator("#composer-help").get_by_text("Shift+Enter")).to_be_hidden()
    box = page.locator("#composer-help").bounding_box()
    assert box["height"] <= 40, box  # two short lines at most
    for selector in ("#composer-body", "#composer-send", "#composer-help"):
        assert in_view(page, selector), selector
    no_sideways_scroll(page)
    page.set_viewport_size(LAPTOP)
    expect(page.locator("#composer-help").get_by_text("Shift+Enter")).to_be_visible()
    expect(who).to_be_visible()


# --- 4. muted: why and until when; disabled looks disabled --------------------------------------


def test_a_muted_member_reads_why_and_until_when_and_the_send_button_looks_disabled(
    page, context, live_server_url
):
    group, lantern, device, river, fern, meeting = build()
    moderation_services.action_take(
        membership=fern,
        actor=lantern.user,
        kind="mute",
        guideline_number=2,
        reason="An hour to cool off, please.",
        minutes=60,
    )
    sign_in_as_member(context, live_server_url, fern.user)
    open_room(page, live_server_url, meeting)

    notice = page.locator("#muted-notice")
    expect(notice).to_contain_text("A facilitator has muted you until ")
    expect(notice).to_contain_text(f"guideline 2: “{RULES[1]}”")
    expect(notice).to_contain_text("An hour to cool off, please.")
    until = page.evaluate(
        "iso => new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit'})"
        ".format(new Date(iso))",
        (timezone.now() + timedelta(minutes=60)).isoformat(),
    )
    expect(notice).to_contain_text(until)

    send = page.locator("#composer-send")
    expect(send).to_be_disabled()
    style = send.evaluate("b => { const s = getComputedStyle(b); return [s.opacity, s.cursor]; }")
    assert float(style[0]) < 1 and style[1] == "not-allowed", style
    box = page.locator("#composer-body")
    assert box.evaluate("b => getComputedStyle(b).cursor") == "not-allowed"


# --- 5. phones: the header, tables, Leave quickly -----------------------------------------------


def header_height(page):
    return page.locator(".site-header").bounding_box()["height"]


def test_on_a_phone_the_header_is_one_short_row_for_every_role(page, context, live_server_url):
    group, lantern, device, river, fern, meeting = build()
    page.set_viewport_size(PHONE)
    page.goto(live_server_url + "/")
    heights = {"visitor": header_height(page)}
    no_sideways_scroll(page)
    sign_in_with_second_factor(page, live_server_url, "fac-login-handle", device)
    page.goto(live_server_url + "/groups/mine/")
    expect(page.get_by_role("button", name="Menu")).to_be_visible()
    heights["facilitator"] = header_height(page)
    assert all(height <= 56 for height in heights.values()), heights
    # The links are one tap away, and opening them does not push the page down.
    page.get_by_role("button", name="Menu").click()
    expect(page.get_by_role("link", name="Facilitate")).to_be_visible()
    assert header_height(page) == heights["facilitator"]
    # Leave quickly is in the header, so it never covers the page's controls.
    leave = page.get_by_role("link", name="Leave quickly").bounding_box()
    assert leave["y"] + leave["height"] <= heights["facilitator"]


def test_on_a_phone_the_audit_tables_scroll_in_their_own_box(page, live_server_url):
    admin, admin_device, member, applications, looks = audit_world.build()
    audit_world.sign_in_with_second_factor(page, live_server_url, admin.username, admin_device)
    page.set_viewport_size(PHONE)
    for path in ("/audit/", "/account/sessions/"):
        page.goto(live_server_url + path)
        expect(page.locator("table").first).to_be_visible()
        no_sideways_scroll(page)
        for table in page.locator("table").all():
            box = table.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], path


# --- 8. the report controls -----------------------------------------------------------------


def test_a_hidden_message_offers_no_report_and_a_reload_still_says_reported(
    page, context, live_server_url
):
    group, lantern, device, river, fern, meeting = build()
    post(meeting, fern, "Something unkind.", 1)
    post(meeting, fern, "Something else.", 2)
    moderation_services.message_hide(
        message=meeting.messages.get(seq=1), actor=lantern.user, guideline_number=2
    )
    sign_in_as_member(context, live_server_url, river.user)
    open_room(page, live_server_url, meeting)

    hidden = page.locator('#chat li[data-seq="1"]')
    expect(hidden.locator(".chat__body")).to_have_text("Hidden by a facilitator.")
    expect(hidden.get_by_role("button", name="Report")).to_have_count(0)

    other = page.locator('#chat li[data-seq="2"]')
    other.get_by_role("button", name="Report").click()
    other.get_by_label("Guideline").select_option("1")
    other.get_by_role("button", name="Send report").click()
    expect(other.get_by_text("Reported", exact=True)).to_be_visible()

    page.reload()
    expect(page.locator("#room-status")).to_have_text("Connected.")
    other = page.locator('#chat li[data-seq="2"]')
    expect(other.get_by_text("Reported", exact=True)).to_be_visible()
    expect(other.get_by_role("button", name="Report")).to_have_count(0)


def test_a_message_hidden_while_its_report_form_is_open_loses_the_form(
    page, context, live_server_url
):
    group, lantern, device, river, fern, meeting = build()
    post(meeting, fern, "Something unkind.", 1)
    sign_in_as_member(context, live_server_url, river.user)
    open_room(page, live_server_url, meeting)
    message = page.locator('#chat li[data-seq="1"]')
    message.get_by_role("button", name="Report").click()
    expect(message.locator("form.chat__form")).to_be_visible()

    # From another thread: the broadcast after commit can't run on Playwright's event loop.
    with ThreadPoolExecutor(1) as other:
        other.submit(
            moderation_services.message_hide,
            message=meeting.messages.get(seq=1),
            actor=lantern.user,
            guideline_number=2,
        ).result()
    expect(message.locator(".chat__body")).to_have_text("Hidden by a facilitator.")
    expect(message.locator("form.chat__form")).to_have_count(0)
    expect(message.get_by_role("button", name="Report")).to_have_count(0)
