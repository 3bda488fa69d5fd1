"""Tables on a 375 px phone, as a member and a facilitator read them: the page never
scrolls sideways, what there is to do in a row stays in view, and no column is squeezed
until its words break between letters."""

import re
from datetime import timedelta

from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from privacy import services as privacy_services
from tests.e2e.test_consent_journey import signed_in_context
from tests.factories import appoint, give_place, make_group, make_person, sign_in

PHONE = {"width": 375, "height": 812}
PHONE_BROWSER = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36"
)


def sideways(page) -> tuple[int, int]:
    return tuple(
        page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
    )


def lines_of(locator) -> int:
    """How many lines the element's text takes (a word broken between letters takes two)."""
    return locator.evaluate(
        """(el) => {
            const range = document.createRange();
            range.selectNodeContents(el);
            return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
        }"""
    )


def lantern_asks_river() -> tuple:
    """Evening Grief Circle, its facilitator Lantern and River, whom Lantern asked for
    consent to share a summary with a clinic."""
    admin = make_person("site-keeper", staff=True)
    group = make_group(admin, "Evening Grief Circle")
    lantern = appoint(group, make_person("fac-lantern"), "Lantern", actor=admin)
    river = give_place(group, make_person("member-river"), "River")
    consent = privacy_services.consent_request(
        actor=lantern.user,
        membership=river,
        items=["summary"],
        recipient="Dr A. Patel, Riverside Clinic",
        purpose="A letter for River's GP.",
        summary="River comes to every meeting.",
        valid_until=timezone.localdate() + timedelta(days=14),
    )
    return group, lantern, river, consent


def test_a_member_on_a_phone_reaches_the_request_to_answer_without_scrolling_sideways(
    browser, live_server_url
):
    _, _, river, _ = lantern_asks_river()

    context = signed_in_context(browser, live_server_url, river.user, verified=False)
    try:
        page = context.new_page()
        page.set_viewport_size(PHONE)
        page.goto(live_server_url + "/account/consents/")
        assert sideways(page) == (PHONE["width"], PHONE["width"])
        row = page.get_by_role("row").filter(has_text="Riverside Clinic")
        expect(row).to_contain_text("Waiting for your answer")
        answer = row.get_by_role("link", name="Read and answer")
        box = answer.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        answer.click()
        expect(page.locator("#consent-status")).to_have_text("Waiting for your answer")
    finally:
        context.close()


def test_the_member_list_on_a_phone_keeps_its_words_whole(browser, live_server_url):
    group, lantern, _, _ = lantern_asks_river()

    context = signed_in_context(browser, live_server_url, lantern.user, verified=True)
    try:
        page = context.new_page()
        page.set_viewport_size(PHONE)
        page.goto(f"{live_server_url}/moderation/{group.slug}/members/")
        assert sideways(page) == (PHONE["width"], PHONE["width"])
        for word in ("Status", "Warnings"):
            assert lines_of(page.get_by_role("columnheader", name=word)) == 1, word
        assert lines_of(page.get_by_role("cell", name="Active").first) == 1
    finally:
        context.close()


def test_a_member_on_a_phone_reaches_the_sign_out_of_another_browser(browser, live_server_url):
    """A phone that was stolen is signed out from here: its "Sign out" must be in view."""
    _, _, river, _ = lantern_asks_river()
    # The other browser, signed in and seen once (a page load records what browser it is).
    sign_in(Client(HTTP_USER_AGENT=PHONE_BROWSER), river.user, verified=False).get("/account/")
    context = signed_in_context(browser, live_server_url, river.user, verified=False)
    try:
        page = context.new_page()
        page.set_viewport_size(PHONE)
        page.goto(live_server_url + "/account/sessions/")
        assert sideways(page) == (PHONE["width"], PHONE["width"])
        other = page.locator("tbody tr").filter(has_not_text="(this browser)")
        sign_out = other.get_by_role("button", name=re.compile(r"^Sign out "))
        box = sign_out.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        sign_out.click()
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.get_by_role("row").filter(has_text="(this browser)")).to_have_count(1)
    finally:
        context.close()
