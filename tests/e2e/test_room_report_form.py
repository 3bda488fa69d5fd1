"""The Report form of a message opens whole in view inside the message list: its "Send
report" button was left below the list's edge when the form opened on one of the last
messages, so a member saw a guideline to choose and no way to send."""

from playwright.sync_api import expect

from groups.models import Membership
from meetings import services as meeting_services
from tests.e2e.test_meeting_room import (  # noqa: F401 (fixtures)
    FERN_HANDLE,
    _cheap_argon2,
    expect_connected,
    room,
    sign_in,
)


def open_as_fern(page, live_server_url, room, size):  # noqa: F811 - room: the fixture's value
    page.set_viewport_size(size)
    sign_in(page, live_server_url, FERN_HANDLE)
    page.goto(live_server_url + room.path)
    expect_connected(page)


def test_the_report_form_opens_with_its_send_button_in_view(
    page,
    live_server_url,
    room,  # noqa: F811
    settings,
):
    settings.CHAT_RATE_LIMIT_MESSAGES = 50  # River's messages, written here all at once
    river = Membership.objects.get(pseudonym="River")
    for n in range(15):
        meeting_services.message_post(
            meeting_id=room.meeting_id,
            membership_id=river.pk,
            client_id=f"filler-{n}",
            body=f"Message number {n} about a long week.",
        )
    open_as_fern(page, live_server_url, room, {"width": 1280, "height": 720})
    last = page.locator("#chat li", has_text="Message number 14")
    last.get_by_role("button", name="Report").click()
    send = last.get_by_role("button", name="Send report")
    expect(send).to_be_visible()
    chat = page.locator("#chat").bounding_box()
    button = send.bounding_box()
    assert button["y"] >= chat["y"], (button, chat)
    assert button["y"] + button["height"] <= chat["y"] + chat["height"], (button, chat)
    guideline = last.get_by_label("Guideline")
    expect(guideline).to_be_focused()
    assert guideline.bounding_box()["y"] >= chat["y"]


def test_the_report_form_says_who_reads_it_and_what_is_missing_on_a_phone(
    page,
    live_server_url,
    room,  # noqa: F811
):
    river = Membership.objects.get(pseudonym="River")
    meeting_services.message_post(
        meeting_id=room.meeting_id,
        membership_id=river.pk,
        client_id="unkind-0001",
        body="Something unkind.",
    )
    open_as_fern(page, live_server_url, room, {"width": 375, "height": 740})
    message = page.locator("#chat li", has_text="Something unkind.")
    message.get_by_role("button", name="Report").click()
    expect(message.get_by_text("Only the group's facilitators see your report")).to_be_visible()
    # Sent with no guideline chosen: it says so, and nothing is sent.
    message.get_by_role("button", name="Send report").click()
    missing = message.get_by_role("alert")
    expect(missing).to_have_text("Choose the guideline it breaks.")
    guideline = message.get_by_label("Guideline")
    expect(guideline).to_be_focused()
    expect(guideline).to_have_attribute("aria-invalid", "true")
    guideline.select_option("1")
    expect(missing).to_be_hidden()
    message.get_by_role("button", name="Send report").click()
    expect(message.get_by_text("Reported")).to_be_visible()
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
