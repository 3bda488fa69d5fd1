"""The meeting room in a real browser: two members in two browser contexts chat, one
reloads or loses the connection and misses nothing, markup stays text, and nothing but
pseudonyms reaches the other member's page or sockets (meetings/PROTOCOL.md, issue 6)."""

import re
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from groups import services as group_services
from groups.models import Topic
from meetings import services as meeting_services
from meetings.models import Message
from tests.factories import CHEAP_PASSWORD_HASHERS

ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
PASSWORD = "lantern harbour quietly 42"
# Login handles are private: distinctive, so that any leak is easy to spot.
FERN_HANDLE = "wren-login-handle-4411"
RIVER_HANDLE = "heron-login-handle-9902"
HOSTILE = "<script>window.__pwned=1</script><b>bold</b>"


# --- people, a group and its open room ---------------------------------------------------------


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


@dataclass
class Room:
    meeting_id: int
    path: str


@pytest.fixture
def room():
    """Fern and River, active members who signed the agreement, and a room open now."""
    organiser = User.objects.create_user(username="organiser-login-handle", is_staff=True)
    group = group_services.group_create(
        actor=organiser,
        name="Evening Grief Circle",
        topic=Topic.GRIEF,
        description="A gentle weekly space.",
        eligibility="Adults who have lost someone close.",
        meeting_rhythm="Tuesdays",
        listed=True,
        requires_screening=False,
        crisis_resources="Call your local emergency number.",
        guidelines=["What is shared here stays here."],
        agreement_text="I keep what is said here confidential.",
        # The plain protocol (issue 19's E2EE rooms have tests of their own: test_e2ee_*).
        e2ee_meetings=False,
    )
    for handle, pseudonym in ((FERN_HANDLE, "Fern"), (RIVER_HANDLE, "River")):
        user = User.objects.create_user(username=handle, password=PASSWORD)
        membership = group_services.membership_create(
            group=group, user=user, actor=organiser, reason="test"
        )
        group_services.membership_take_place(
            actor=membership.user,
            group=membership.group,
            pseudonym=pseudonym,
            typed_name=pseudonym,
            guidelines_acknowledged=True,
        )
    # The admin who made the group runs its meetings: the service asks for a facilitator.
    group_services.facilitator_appoint(group=group, actor=organiser, user=organiser)
    now = timezone.now()
    [meeting] = meeting_services.meeting_schedule(
        group=group,
        actor=organiser,
        title="Drop-in",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )
    return Room(meeting_id=meeting.pk, path=f"/meetings/{meeting.pk}/")


@pytest.fixture
def river_page(browser, live_server_url):
    """The second member's browser: its own context (cookies, sessionStorage), held to the
    same rules as the `page` fixture (own origin only, no uncaught errors, no CSP
    violations)."""
    context = browser.new_context(base_url=live_server_url)
    problems, urls = [], []

    def on_console(message):
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(f"CSP violation: {message.text}")

    context.on("request", lambda request: urls.append(request.url))
    context.on("weberror", lambda error: problems.append(f"uncaught error: {error.error}"))
    context.on("console", on_console)
    page = context.new_page()
    page.on("websocket", lambda ws: urls.append(ws.url))
    yield page
    context.close()
    own = re.compile(re.escape(live_server_url).replace("http", "(http|ws)", 1) + r"(/|$)")
    for url in urls:
        if url.split(":", 1)[0] in ("http", "https", "ws", "wss") and not own.match(url):
            problems.append(f"request to another origin: {url}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# --- what a member does ------------------------------------------------------------------------


def sign_in(page, live_server_url, handle):
    page.goto(live_server_url + "/accounts/login/")
    page.locator('input[name="login"]').fill(handle)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def enter_room(page, live_server_url, room):
    page.goto(live_server_url + room.path)
    expect_connected(page)


def expect_connected(page):
    expect(page.locator("#room-status")).to_have_text("Connected.", timeout=15_000)


def composer(page, pseudonym):
    return page.get_by_role("textbox", name=f"Message as {pseudonym}")


def say(page, pseudonym, text):
    """Type a message and press Enter; wait until the server acknowledged and it is shown."""
    box = composer(page, pseudonym)
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")
    expect(shown(page).filter(has_text=text)).to_have_count(1)


def shown(page):
    """Committed messages (pending ones, "sending…", carry no seq yet)."""
    return page.locator("#chat li[data-seq]")


def expect_conversation(page, expected):
    """Exactly these messages, each once, in seq order, and nothing still pending."""
    expect(page.locator("#chat li")).to_have_count(len(expected))
    expect(shown(page).locator(".chat__body")).to_have_text([body for _, body in expected])
    expect(shown(page).locator(".chat__meta strong")).to_have_text(
        [author for author, _ in expected]
    )
    seqs = [int(s) for s in shown(page).evaluate_all("items => items.map(li => li.dataset.seq)")]
    assert seqs == list(range(1, len(expected) + 1))


def wait_for(page, condition, what, timeout=10):
    """Let Playwright deliver events (e.g. route handlers) until condition() holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(50)


def screenshot(page, name):
    # From the top: the sticky header would otherwise be drawn over the middle.
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


# --- tests -------------------------------------------------------------------------------------


def test_it_lets_two_members_chat_and_a_reload_misses_nothing(
    page, river_page, live_server_url, room
):
    fern, river = page, river_page
    sign_in(fern, live_server_url, FERN_HANDLE)
    sign_in(river, live_server_url, RIVER_HANDLE)
    enter_room(fern, live_server_url, room)
    enter_room(river, live_server_url, room)

    say(fern, "Fern", "Hello, is anyone here?")
    expect(shown(river)).to_have_count(1)
    expect(shown(river).locator(".chat__meta strong")).to_have_text(["Fern"])
    expect(shown(river).locator(".chat__body")).to_have_text(["Hello, is anyone here?"])

    # Markup in a message is text: never parsed, never run.
    say(river, "River", HOSTILE)
    expect(shown(fern).locator(".chat__body").nth(1)).to_have_text(HOSTILE)
    for member in (fern, river):
        assert member.evaluate("window.__pwned") is None
        expect(member.locator("#chat b")).to_have_count(0)
        expect(member.locator("#chat script")).to_have_count(0)

    # River reloads; while the page is away (its script held back, so it has no socket),
    # Fern says two more things. The reloaded page resumes and shows each exactly once.
    held = []
    room_script = re.compile(r"/static/js/room(\.[0-9a-f]+)?\.js$")
    river.route(room_script, lambda route: held.append(route))
    river.reload(wait_until="commit")
    say(fern, "Fern", "I lost my mother in the spring.")
    say(fern, "Fern", "Some days are harder than others.")
    wait_for(river, lambda: held, "the reloaded room page to ask for its script")
    held[0].continue_()
    river.unroute(room_script)
    expect_connected(river)

    conversation = [
        ("Fern", "Hello, is anyone here?"),
        ("River", HOSTILE),
        ("Fern", "I lost my mother in the spring."),
        ("Fern", "Some days are harder than others."),
    ]
    expect_conversation(river, conversation)
    expect_conversation(fern, conversation)
    assert Message.objects.filter(meeting_id=room.meeting_id).count() == len(conversation)
    assert river.evaluate("window.__pwned") is None

    room_a = screenshot(fern, "room-a.png")
    room_b = screenshot(river, "room-b.png")
    assert room_a.stat().st_size and room_b.stat().st_size


def test_it_shows_only_pseudonyms_in_the_page_and_the_sockets(
    page, river_page, live_server_url, room
):
    fern, river = page, river_page
    frames = {"Fern": [], "River": []}
    for name, member in (("Fern", fern), ("River", river)):
        member.on(
            "websocket",
            lambda ws, seen=frames[name]: ws.on(
                "framereceived",
                lambda payload: seen.append(
                    payload if isinstance(payload, str) else payload.decode(errors="replace")
                ),
            ),
        )
    sign_in(fern, live_server_url, FERN_HANDLE)
    sign_in(river, live_server_url, RIVER_HANDLE)
    enter_room(fern, live_server_url, room)
    enter_room(river, live_server_url, room)

    for member in (fern, river):
        expect(member.locator("#present li")).to_have_text(["Fern", "River"])
    say(fern, "Fern", "Glad you came tonight.")
    say(river, "River", "Thank you, it helps.")
    expect(shown(river)).to_have_count(2)
    expect(shown(fern)).to_have_count(2)

    # The sockets really carried the other member (by pseudonym) ...
    assert any('"Fern"' in frame for frame in frames["River"]), frames["River"]
    assert any('"River"' in frame for frame in frames["Fern"]), frames["Fern"]
    # ... and never a login handle: not the other member's, not the organiser's.
    for viewer, other_handle in ((river, FERN_HANDLE), (fern, RIVER_HANDLE)):
        html = viewer.content()
        assert other_handle not in html
        assert "organiser-login-handle" not in html
        expect(viewer.locator("#present")).not_to_contain_text("login-handle")
    for frame in frames["River"]:
        assert FERN_HANDLE not in frame and "organiser-login-handle" not in frame, frame
    for frame in frames["Fern"]:
        assert RIVER_HANDLE not in frame and "organiser-login-handle" not in frame, frame


def test_it_keeps_a_message_typed_while_offline(page, river_page, live_server_url, room):
    """Chromium's offline emulation (context.set_offline) does not close a websocket that
    is already open, so the network is cut here by routing River's room sockets: while
    "offline", the connection is dropped and every reconnect is refused."""
    fern, river = page, river_page
    network = {"online": True, "open": []}

    def route_room_socket(ws):
        if not network["online"]:
            ws.close(code=1001, reason="offline")
            return
        network["open"].append((ws, ws.connect_to_server()))

    def go_offline():
        network["online"] = False
        for page_side, server_side in network["open"]:
            page_side.close(code=1001, reason="offline")
            server_side.close()
        network["open"].clear()

    river.route_web_socket(re.compile(r"/ws/meetings/\d+/$"), route_room_socket)
    sign_in(fern, live_server_url, FERN_HANDLE)
    sign_in(river, live_server_url, RIVER_HANDLE)
    enter_room(fern, live_server_url, room)
    enter_room(river, live_server_url, room)

    # Offline, River types a message: it waits in the outbox, shown as "sending…".
    go_offline()
    expect(river.locator("#room-status")).to_have_text("Connection lost. Reconnecting…")
    box = composer(river, "River")
    box.fill("Sorry, my connection is bad.")
    box.press("Enter")
    expect(box).to_have_value("")
    expect(river.locator("#chat li[data-pending]")).to_contain_text("sending…")
    assert not Message.objects.filter(meeting_id=room.meeting_id).exists()

    # Back online: the page reconnects on its own, resumes and resends it, once.
    network["online"] = True
    expect_connected(river)
    expect_conversation(fern, [("River", "Sorry, my connection is bad.")])
    expect_conversation(river, [("River", "Sorry, my connection is bad.")])

    # Offline again, and this time the page is reloaded before the network comes back:
    # the outbox lives in sessionStorage, so the message still goes out, once.
    go_offline()
    expect(river.locator("#room-status")).to_have_text("Connection lost. Reconnecting…")
    box.fill("Still here, just slow.")
    box.press("Enter")
    expect(river.locator("#chat li[data-pending]")).to_have_count(1)
    river.reload()
    expect(river.locator("#room-status")).to_have_text("Connection lost. Reconnecting…")
    network["online"] = True
    expect_connected(river)
    conversation = [
        ("River", "Sorry, my connection is bad."),
        ("River", "Still here, just slow."),
    ]
    expect_conversation(fern, conversation)
    expect_conversation(river, conversation)
    assert Message.objects.filter(meeting_id=room.meeting_id).count() == 2
    # Kept per meeting and membership (someone else signing in on the tab never sends it).
    outbox = river.evaluate(
        "() => { const { meeting, member } = document.getElementById('room').dataset;"
        " return sessionStorage.getItem(`sg-outbox-${meeting}-${member}`); }"
    )
    assert outbox == "[]"


def test_it_works_with_a_keyboard_and_a_screen_reader(page, river_page, live_server_url, room):
    fern, river = page, river_page
    sign_in(fern, live_server_url, FERN_HANDLE)
    sign_in(river, live_server_url, RIVER_HANDLE)
    enter_room(fern, live_server_url, room)
    enter_room(river, live_server_url, room)

    for member, pseudonym in ((fern, "Fern"), (river, "River")):
        # Named landmarks and controls: the message list, the composer's label, the
        # polite live region and the status line.
        expect(member.get_by_role("list", name="Messages")).to_be_visible()
        expect(composer(member, pseudonym)).to_be_editable()
        expect(member.locator("#chat-announcer")).to_have_attribute("aria-live", "polite")
        expect(member.get_by_role("status").filter(has_text="Connected.")).to_have_count(1)
        expect(member.get_by_role("heading", name="Here now")).to_be_visible()

    # Keyboard only: Shift+Enter is a new line, Enter sends, focus stays in the box.
    composer(fern, "Fern").focus()
    fern.keyboard.type("First line")
    fern.keyboard.press("Shift+Enter")
    fern.keyboard.type("second line")
    expect(composer(fern, "Fern")).to_have_value("First line\nsecond line")
    expect(fern.locator("#chat li")).to_have_count(0)
    fern.keyboard.press("Enter")
    expect(composer(fern, "Fern")).to_have_value("")
    expect(composer(fern, "Fern")).to_be_focused()
    expect(shown(fern)).to_have_count(1)

    # A screen reader hears the other member's new message through the live region.
    expect(shown(river).locator(".chat__body")).to_have_text(["First line\nsecond line"])
    expect(river.locator("#chat-announcer")).to_have_text("Fern: First line\nsecond line")
    say(river, "River", "Welcome, Fern.")
    expect(fern.locator("#chat-announcer")).to_have_text("River: Welcome, Fern.")
    # One's own messages are not read back.
    expect(river.locator("#chat-announcer")).to_have_text("Fern: First line\nsecond line")


def test_an_over_long_message_is_explained_and_kept_not_cut_off(page, live_server_url, room):
    # A box with maxlength would have cut a pasted text at 2,000 characters without a word.
    sign_in(page, live_server_url, FERN_HANDLE)
    enter_room(page, live_server_url, room)
    box = composer(page, "Fern")
    long_text = "I have been carrying this for a long time. " * 50  # 2,150 characters
    box.fill(long_text)
    box.press("Enter")

    expect(page.locator("#composer-error")).to_contain_text("the limit is 2000")
    expect(box).to_have_value(long_text)
    expect(page.locator("#chat li")).to_have_count(0)
    assert not Message.objects.filter(meeting_id=room.meeting_id).exists()

    # Shortened, it goes out.
    say(page, "Fern", long_text[:1990].strip())
    expect(page.locator("#composer-error")).to_have_text("")
