"""Controls marked `hidden` stay hidden: the stylesheet's `display` for buttons and links
must not undo the attribute (a short room offered "Show earlier messages" that had nothing
earlier to show)."""

from playwright.sync_api import expect

from tests.e2e.test_meeting_room import (  # noqa: F401 - fixtures for pytest
    FERN_HANDLE,
    _cheap_argon2,
    enter_room,
    room,
    say,
    sign_in,
)


def test_a_short_room_offers_no_earlier_messages(page, live_server_url, room):  # noqa: F811
    sign_in(page, live_server_url, FERN_HANDLE)
    enter_room(page, live_server_url, room)
    say(page, "Fern", "Only this one.")
    page.reload()
    enter_room(page, live_server_url, room)

    expect(page.get_by_text("Only this one.")).to_be_visible()
    expect(page.get_by_role("button", name="Show earlier messages")).to_be_hidden()


def test_every_element_with_the_hidden_attribute_is_not_displayed(page, live_server_url, room):  # noqa: F811
    sign_in(page, live_server_url, FERN_HANDLE)
    enter_room(page, live_server_url, room)

    shown = page.evaluate(
        """() => [...document.querySelectorAll('[hidden]')]
            .filter((element) => getComputedStyle(element).display !== 'none')
            .map((element) => element.id || element.className || element.tagName)"""
    )

    assert shown == []
