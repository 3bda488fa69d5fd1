"""The facilitator's "needs you now" page, member list and moderation log on a 375 px
phone: everything reflows, nothing makes the page scroll sideways (the member table may
scroll inside its own box, which is how wide tables stay readable on a phone)."""

from meetings import services as meeting_services
from moderation import services
from tests.e2e.test_moderation_journey import (
    browsers,  # noqa: F401 (a fixture)
    build,
    sign_in_with_second_factor,
)

PHONE = {"width": 375, "height": 812}
# A long note and a long name: the words a phone must wrap.
LONG_NOTE = "Worried-about-them-since-last-week-they-said-goodbye-to-everyone " * 3


def page_scrolls_sideways(page) -> dict:
    return page.evaluate(
        """() => ({
            scroll: document.documentElement.scrollWidth,
            client: document.documentElement.clientWidth,
        })"""
    )


def test_the_dashboard_and_its_lists_fit_a_375_px_phone(browsers, live_server_url):  # noqa: F811
    group, lantern, device, river, fern, meeting = build()
    message = meeting_services.message_post(
        meeting_id=meeting.pk, membership_id=fern.pk, client_id="phone-1", body="Unkind."
    ).message
    services.report_file(actor=river.user, message=message, guideline_number=2)
    services.safety_flag_raise(actor=fern.user, group=group, about=river, note=LONG_NOTE)
    services.action_take(
        membership=fern, actor=lantern.user, kind="warn", guideline_number=2, reason="Kindly."
    )

    page = browsers().page
    page.set_viewport_size(PHONE)
    sign_in_with_second_factor(page, live_server_url, "fac-login-handle", device)
    for path, heading in (
        (f"/moderation/{group.slug}/", "Safety concerns (1)"),
        (f"/moderation/{group.slug}/members/", "Members of Evening Grief Circle"),
        (f"/moderation/{group.slug}/log/", "Moderation log"),
    ):
        page.goto(live_server_url + path)
        assert page.get_by_role("heading", name=heading).is_visible(), path
        width = page_scrolls_sideways(page)
        assert width["client"] == PHONE["width"], width
        assert width["scroll"] <= width["client"], (path, width)
