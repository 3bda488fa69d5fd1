"""Meetings that last, in a real browser (issue 17): a long room opens on its latest
messages with earlier ones on demand, and a socket that is refused or whose session has
ended tells the person why in words, keeps what they typed, and stops trying."""

import time

import pytest
from django.db import transaction
from playwright.sync_api import expect

from accounts.models import Session
from groups.models import AgreementVersion, Group, Membership, Status
from meetings.models import Meeting, Message
from tests.e2e import test_meeting_room
from tests.e2e.test_meeting_room import (  # noqa: F401 - a fixture
    FERN_HANDLE,
    _cheap_argon2,
    composer,
    enter_room,
    shown,
    sign_in,
)

# Fern and River in a group, and its room open now (the meeting room tests' fixture).
room = test_meeting_room.room

# Watches every websocket the page opens, so a test can drop one (as a network blip or
# a server restart would) and count whether the page tries again.
WATCH_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__frames = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
      this.addEventListener("message", (event) => window.__frames.push(JSON.parse(event.data)));
    }
  };
})();
"""


def settled(page, timeout=10):
    """The room has shown what there is (its first replay answered)."""
    wait_for_page(page, "() => window.__frames.some((frame) => frame.type === 'resumed')", timeout)


def wait_for_page(page, predicate, timeout=10):
    # (page.wait_for_function would evaluate a string, which the app's CSP forbids.)
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        page.wait_for_timeout(50)


def sockets_to(page, path):
    return page.evaluate(
        "(path) => window.__sockets.filter((s) => new URL(s.url).pathname === path).length",
        path,
    )


def drop_socket(page, path):
    page.evaluate(
        """(path) => window.__sockets.filter((s) => new URL(s.url).pathname === path)
             .at(-1).close()""",
        path,
    )


def fern_membership(room):
    meeting = Meeting.objects.get(pk=room.meeting_id)
    return Membership.objects.get(group=meeting.group, pseudonym="Fern")


# --- a long room ---------------------------------------------------------------------------------


def test_a_room_of_5000_messages_opens_on_the_latest_and_shows_earlier_ones_on_demand(
    page, live_server_url, room
):
    meeting = Meeting.objects.get(pk=room.meeting_id)
    river = Membership.objects.get(group=meeting.group, pseudonym="River")
    Message.objects.bulk_create(
        Message(meeting=meeting, seq=n, client_id=f"seeded-{n:06d}", author=river, body=f"m{n}")
        for n in range(1, 5001)
    )
    Meeting.objects.filter(pk=meeting.pk).update(last_seq=5000)

    sign_in(page, live_server_url, FERN_HANDLE)
    enter_room(page, live_server_url, room)

    # The latest fifty, ending with the room's last message, with no one posting.
    expect(shown(page).last.locator(".chat__body")).to_have_text("m5000", timeout=15_000)
    expect(shown(page)).to_have_count(50)
    expect(shown(page).first.locator(".chat__body")).to_have_text("m4951")
    earlier = page.get_by_role("button", name="Show earlier messages")
    expect(earlier).to_be_visible()

    earlier.click()
    expect(shown(page)).to_have_count(100)
    expect(shown(page).first.locator(".chat__body")).to_have_text("m4901")
    seqs = [int(s) for s in shown(page).evaluate_all("items => items.map(li => li.dataset.seq)")]
    assert seqs == list(range(4901, 5001))

    # And the page is live from the last seq on: a new message follows m5000.
    box = composer(page, "Fern")
    box.fill("After five thousand.")
    box.press("Enter")
    expect(shown(page).last.locator(".chat__body")).to_have_text("After five thousand.")
    assert shown(page).last.get_attribute("data-seq") == "5001"


# --- refusals and ended sessions, in words -------------------------------------------------------


def suspend(room):
    Membership.objects.filter(pk=fern_membership(room).pk).update(status=Status.SUSPENDED)


def remove(room):
    Membership.objects.filter(pk=fern_membership(room).pk).update(status=Status.REMOVED)


def new_agreement(room):
    group = Meeting.objects.get(pk=room.meeting_id).group
    with transaction.atomic():
        latest = group.agreements.order_by("-version").first()
        version = AgreementVersion.objects.create(
            group=group, version=latest.version + 1, text="A new agreement.", summary="New."
        )
        Group.objects.filter(pk=group.pk).update(current_agreement=version)


def close_meeting(room):
    meeting = Meeting.objects.get(pk=room.meeting_id)
    Meeting.objects.filter(pk=meeting.pk).update(closed_at=meeting.starts_at)


def sign_out_quietly(room):
    Session.objects.filter(user=fern_membership(room).user).delete()


@pytest.mark.parametrize(
    ("change", "words", "link"),
    [
        (sign_out_quietly, "You are signed out.", "Sign in again"),
        (suspend, "You are suspended from this group's meetings for now.", "Back to the group"),
        (remove, "You are not a member of this group.", "Back to the group"),
        (new_agreement, "Please sign the group's current agreement", "Read and sign"),
        (close_meeting, "This meeting is not open.", "Back to the group"),
    ],
    ids=["signed_out", "suspended", "removed", "agreement", "closed"],
)
def test_a_refused_reconnect_says_why_in_words_and_stops_trying(
    page, live_server_url, room, change, words, link
):
    page.add_init_script(WATCH_SOCKETS)
    sign_in(page, live_server_url, FERN_HANDLE)
    enter_room(page, live_server_url, room)
    socket_path = f"/ws/meetings/{room.meeting_id}/"
    settled(page)

    # Changed while nobody told the page (the notice lost), then the connection drops.
    change(room)
    drop_socket(page, socket_path)

    status = page.locator("#room-status")
    expect(status).to_contain_text(words, timeout=10_000)
    expect(status.get_by_role("link", name=link)).to_be_visible()
    expect(composer(page, "Fern")).to_be_disabled()
    tries = sockets_to(page, socket_path)
    assert tries == 2
    # Well past the page's next retry (1 s, then 2 s): it did not try again.
    page.wait_for_timeout(3500)
    assert sockets_to(page, socket_path) == tries


def test_a_session_that_ended_keeps_the_outbox_for_when_the_person_signs_in_again(
    page, live_server_url, room
):
    page.add_init_script(WATCH_SOCKETS)
    sign_in(page, live_server_url, FERN_HANDLE)
    enter_room(page, live_server_url, room)
    socket_path = f"/ws/meetings/{room.meeting_id}/"
    settled(page)

    # The connection is gone (a restart); meanwhile the session ended; Fern types on.
    sign_out_quietly(room)
    page.evaluate(
        "(path) => { const s = window.__sockets.filter((s) => new URL(s.url).pathname === path)"
        ".at(-1); s.close(); }",
        socket_path,
    )
    box = composer(page, "Fern")
    box.fill("Typed while the session was ending.")
    box.press("Enter")

    status = page.locator("#room-status")
    expect(status).to_contain_text("You are signed out.", timeout=10_000)
    expect(status).to_contain_text("not sent yet is kept in this tab")
    status.get_by_role("link", name="Sign in again").click()

    # Signing in again brings the person back to the room, and the message is sent.
    page.locator('input[name="login"]').fill(FERN_HANDLE)
    page.locator('input[name="password"]').fill("lantern harbour quietly 42")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server_url + room.path)
    expect(shown(page).locator(".chat__body")).to_have_text(
        ["Typed while the session was ending."], timeout=15_000
    )
    assert Message.objects.filter(meeting_id=room.meeting_id).count() == 1


def test_a_refused_account_socket_says_why_and_stops_trying(page, live_server_url, room):
    page.add_init_script(WATCH_SOCKETS)
    sign_in(page, live_server_url, FERN_HANDLE)
    page.goto(live_server_url + "/groups/mine/")
    wait_for_page(page, "() => window.__sockets.some((s) => s.readyState === 1)")

    sign_out_quietly(room)
    drop_socket(page, "/ws/account/")

    notice = page.locator("#account-notice")
    expect(notice).to_contain_text("You are signed out.", timeout=10_000)
    expect(notice.get_by_role("link", name="Sign in again")).to_be_visible()
    tries = sockets_to(page, "/ws/account/")
    page.wait_for_timeout(3500)
    assert sockets_to(page, "/ws/account/") == tries
