"""End-to-end encrypted meetings in real browsers (issue 19): the keys are made, kept and
used in the page (static/js/e2ee.js, room-e2ee.js), the server relays and stores only
ciphertext, and the room says in words what a device cannot read and why.

Three members, each in a browser context of their own (own IndexedDB, own session)."""

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from django.db import connections
from playwright.sync_api import expect

from groups.models import Membership
from meetings.models import Device, KeyShare, Message, SenderEpoch
from moderation import services as moderation_services
from moderation.models import ActionKind, Report
from tests.e2e.conftest import origin_of, wait_until_other_connections_are_idle
from tests.e2e.test_meeting_room import composer, expect_connected, say, sign_in, wait_for
from tests.factories import (
    CHEAP_PASSWORD_HASHERS,
    appoint,
    give_place,
    make_group,
    make_person,
    schedule,
    signed_in_client,
)

HANDLES = {
    "Fern": "fern-e2ee-login-4411",
    "River": "river-e2ee-login-9902",
    "Wren": "wren-e2ee-3307",
}
E2EE_SENTENCE = re.compile(r"only the people in this meeting can read it", re.IGNORECASE)
# Plain words a first-time member understands: "this browser", never "device" (E2EE.md).
BEFORE = "Sent before you joined this meeting in this browser, so it cannot be read here."
LOCKED = "This message could not be unlocked in this browser."


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


@dataclass
class World:
    group: object
    meeting: object
    admin: object
    members: dict  # pseudonym -> Membership

    @property
    def path(self):
        return f"/meetings/{self.meeting.pk}/"


@pytest.fixture
def world():
    """An E2EE group (the app's default), Fern, River and Wren in it, a room open now."""
    admin = make_person("e2ee-keeper-login", staff=True)
    group = make_group(admin, name="Quiet Harbour", e2ee_meetings=True)
    members = {
        name: give_place(group, make_person(handle), name) for name, handle in HANDLES.items()
    }
    appoint(group, admin, "Lantern", actor=admin)  # the facilitator, with a place of theirs
    meeting = schedule(group, admin, title="Encrypted evening")
    return World(group=group, meeting=meeting, admin=admin, members=members)


@pytest.fixture
def browsers(browser, live_server_url, _allowed_foreign_origins):
    """Opens a member's own browser (context) on demand, held to the `page` fixture's
    rules: own origin only, no uncaught errors, no CSP violations."""
    contexts, problems, urls = [], [], []

    def on_console(message):
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(f"CSP violation: {message.text}")

    def open_browser():
        context = browser.new_context(base_url=live_server_url)
        context.on("request", lambda request: urls.append(request.url))
        context.on("weberror", lambda error: problems.append(f"uncaught error: {error.error}"))
        context.on("console", on_console)
        page = context.new_page()
        page.on("websocket", lambda ws: urls.append(ws.url))
        contexts.append(context)
        return page

    yield open_browser
    for context in contexts:
        context.close()
    # Each page that leaves tells the others (a `devices` frame), which may still be sharing
    # keys after the last one closed: let the live server finish before the tables are
    # emptied (a TRUNCATE under its transaction would deadlock).
    wait_until_other_connections_are_idle(timeout=15, quiet_polls=20)
    allowed = {origin_of(live_server_url)} | _allowed_foreign_origins
    for url in urls:
        if origin_of(url) is not None and origin_of(url) not in allowed:
            problems.append(f"request to another origin: {url}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def member(browsers, live_server_url, world, name):
    page = browsers()
    # Every frame the page's sockets receive, in order (a test reads what came after a point).
    page.sg_frames = []
    page.on(
        "websocket", lambda ws: ws.on("framereceived", lambda text: page.sg_frames.append(text))
    )
    sign_in(page, live_server_url, HANDLES[name])
    page.goto(live_server_url + world.path)
    expect_connected(page)
    return page


def readable(page):
    """Messages this page could read (not hidden, not in words instead of text)."""
    return page.locator("#chat li[data-seq]:not([data-unread])")


def expect_read(page, expected):
    """Exactly these (author, text) messages read, in seq order, none unreadable."""
    expect(readable(page).locator(".chat__body")).to_have_text([text for _, text in expected])
    expect(readable(page).locator(".chat__meta strong")).to_have_text([a for a, _ in expected])
    expect(page.locator("#chat li[data-unread]")).to_have_count(0)
    expect(page.locator("#room-locked")).to_be_hidden()


def safety_code_shown(page, name):
    entry = page.locator("#present li").filter(has_text=name)
    entry.locator("summary").click()
    return entry.locator(".safety-code__digits").first.inner_text()


def live_device(membership):
    return Device.objects.get(membership=membership, retired_at=None, session__isnull=False)


def test_three_members_read_every_message_and_a_reload_reads_everything_since_joining(
    browsers, live_server_url, world
):
    fern = member(browsers, live_server_url, world, "Fern")
    river = member(browsers, live_server_url, world, "River")
    wren = member(browsers, live_server_url, world, "Wren")
    for page in (fern, river, wren):
        expect(page.locator("#room-e2ee")).to_have_text(E2EE_SENTENCE)

    say(fern, "Fern", "Hello, is anyone here?")
    say(river, "River", "<b>I am</b>, and this stays text.")
    say(wren, "Wren", "Me too. Ça va ✓")
    conversation = [
        ("Fern", "Hello, is anyone here?"),
        ("River", "<b>I am</b>, and this stays text."),
        ("Wren", "Me too. Ça va ✓"),
    ]
    for page in (fern, river, wren):
        expect_read(page, conversation)
        expect(page.locator("#chat b")).to_have_count(0)

    # Each participant's safety code, as the server's copy of their public keys gives it.
    for name in ("Fern", "River", "Wren"):
        assert safety_code_shown(river, name) == live_device(world.members[name]).safety_code

    # River reloads; while the page is away, Fern says two more things. The reloaded
    # page gets its device back (IndexedDB), fetches its keys again, and reads it all.
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
    conversation += [
        ("Fern", "I lost my mother in the spring."),
        ("Fern", "Some days are harder than others."),
    ]
    for page in (fern, river, wren):
        expect_read(page, conversation)
    # The same device as before the reload: no new one was registered.
    assert Device.objects.filter(membership=world.members["River"]).count() == 1

    # The server holds ciphertext only.
    rows = Message.objects.filter(meeting=world.meeting).order_by("seq")
    assert [row.body for row in rows] == [None] * len(conversation)
    for row, (_, text) in zip(rows, conversation, strict=True):
        assert text.encode() not in bytes(row.ciphertext)
        assert "mother" not in base64.b64encode(bytes(row.ciphertext)).decode()


def test_a_late_joiner_is_told_what_came_before_and_reads_what_follows(
    browsers, live_server_url, world
):
    fern = member(browsers, live_server_url, world, "Fern")
    river = member(browsers, live_server_url, world, "River")
    say(fern, "Fern", "Before Wren came.")
    say(river, "River", "Also before.")

    wren = member(browsers, live_server_url, world, "Wren")
    before = wren.locator('#chat li[data-unread="before"]')
    expect(before).to_have_count(2)
    expect(before.locator(".chat__body")).to_have_text([BEFORE, BEFORE])
    # Said in words, not counted as a failure, and not offered for reporting.
    expect(wren.locator("#room-locked")).to_be_hidden()
    expect(before.get_by_role("button", name="Report")).to_have_count(0)
    expect(wren.locator("#chat")).not_to_contain_text("Before Wren came.")
    expect(wren.locator("#room")).not_to_contain_text(re.compile("device", re.IGNORECASE))

    say(fern, "Fern", "Welcome, Wren.")
    expect(readable(wren).locator(".chat__body")).to_have_text(["Welcome, Wren."])
    expect(readable(wren).locator(".chat__meta strong")).to_have_text(["Fern"])

    # Cryptographically so: what Wren's device holds of Fern's chain starts after the
    # messages sent before it came (the chain only goes forward).
    wren_device = live_device(world.members["Wren"])
    fern_device = live_device(world.members["Fern"])
    earlier = Message.objects.get(meeting=world.meeting, seq=1)
    shares = KeyShare.objects.filter(
        sender_device=fern_device, recipient_device=wren_device, epoch=earlier.epoch
    )
    assert shares.exists()
    assert min(share.first_index for share in shares) > earlier.index


def test_a_removed_members_device_gets_no_key_of_the_new_epoch(browsers, live_server_url, world):
    fern = member(browsers, live_server_url, world, "Fern")
    river = member(browsers, live_server_url, world, "River")
    wren = member(browsers, live_server_url, world, "Wren")
    say(wren, "Wren", "Hello from Wren.")
    expect(readable(fern)).to_have_count(1)
    wren_device = live_device(world.members["Wren"])

    # A facilitator removes Wren (in a thread of its own: the service broadcasts on commit,
    # which cannot run in this thread while Playwright's loop is marked as running).
    def remove():
        try:
            moderation_services.action_take(
                membership=Membership.objects.get(pk=world.members["Wren"].pk),
                actor=world.admin,
                kind=ActionKind.REMOVE,
                guideline_number=1,
                reason="Test removal.",
            )
        finally:
            connections.close_all()  # this thread's own connection, before the test ends

    with ThreadPoolExecutor(1) as other:
        other.submit(remove).result()
    expect(wren.locator("#room-status")).to_contain_text("not a member", timeout=15_000)

    say(fern, "Fern", "Said after Wren was removed.")
    say(river, "River", "River too.")
    expect_read(
        fern,
        [
            ("Wren", "Hello from Wren."),
            ("Fern", "Said after Wren was removed."),
            ("River", "River too."),
        ],
    )
    expect_read(
        river,
        [
            ("Wren", "Hello from Wren."),
            ("Fern", "Said after Wren was removed."),
            ("River", "River too."),
        ],
    )
    expect(wren.locator("#chat")).not_to_contain_text("after Wren was removed")

    # Fern and River each started a new epoch when Wren left, and shared it with nobody
    # of Wren's: no stored key of theirs sent since opens for Wren's device.
    new_epochs = set()
    for name in ("Fern", "River"):
        device = live_device(world.members[name])
        sent = Message.objects.get(meeting=world.meeting, sender_device=device, seq__gt=1)
        assert SenderEpoch.objects.filter(
            meeting=world.meeting, device=device, epoch=sent.epoch
        ).exists()
        assert not KeyShare.objects.filter(
            sender_device=device, epoch=sent.epoch, recipient_device=wren_device
        ).exists()
        new_epochs.add((device.pk, sent.epoch))
    # Nor did Wren's page ever receive a key of those epochs. (Frames are compared by
    # their epoch, not by when the page logged them: a share stored before the removal
    # may be logged after it under load.)
    frames = [json.loads(text) for text in wren.sg_frames]
    received = {
        (share["sender_device"], share["epoch"])
        for frame in frames
        if frame["type"] == "keys"
        for share in frame["shares"]
    }
    assert received and not received & new_epochs


def test_a_report_from_the_browser_reaches_the_facilitator_verified(
    browsers, live_server_url, world
):
    fern = member(browsers, live_server_url, world, "Fern")
    river = member(browsers, live_server_url, world, "River")
    say(fern, "Fern", "Something a facilitator should see.")
    message = readable(river).first
    expect(message).to_contain_text("Something a facilitator should see.")
    message.get_by_role("button", name="Report").click()
    form = message.locator("form")
    form.get_by_label("Guideline").select_option(index=1)
    form.get_by_role("button", name="Send report").click()
    expect(river.locator("#room-status")).to_contain_text("Thank you")
    expect(message).to_contain_text("Reported")

    report = Report.objects.get(message_seq=1)
    assert report.message_body == "Something a facilitator should see."
    # The facilitator reads it on the report's page.
    facilitator = signed_in_client(world.admin, verified=True)
    page = facilitator.get(f"/moderation/{world.group.slug}/reports/{report.pk}/")
    assert page.status_code == 200
    assert "Something a facilitator should see." in page.content.decode()


def test_a_message_whose_signature_fails_never_shows_the_claimed_sender(
    browsers, live_server_url, world
):
    fern = member(browsers, live_server_url, world, "Fern")
    river = browsers()
    sign_in(river, live_server_url, HANDLES["River"])

    # Between the server and River's page, every message of Fern's gets a signature
    # that is not Fern's (as a server or network that forged it would), live or replayed.
    fern_device = live_device(world.members["Fern"]).pk

    def forged(message):
        sealed = message.get("e2ee")
        if sealed and sealed["sender_device"] == fern_device:
            signature = bytearray(base64.b64decode(sealed["signature"]))
            signature[5] ^= 0xFF
            sealed["signature"] = base64.b64encode(bytes(signature)).decode()
        return message

    def forge(text):
        frame = json.loads(text)
        if frame.get("type") == "message":
            return json.dumps(forged(frame))
        if frame.get("type") == "history":
            frame["messages"] = [forged(message) for message in frame["messages"]]
            return json.dumps(frame)
        return text

    def relay(ws):
        server = ws.connect_to_server()
        ws.on_message(lambda message: server.send(message))
        server.on_message(lambda message: ws.send(forge(message)))

    river.route_web_socket(re.compile(r"/ws/meetings/"), relay)
    river.goto(live_server_url + world.path)
    expect_connected(river)

    say(fern, "Fern", "Only Fern wrote this.")
    item = river.locator("#chat li[data-seq]")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-unread", "unverified")
    expect(item.locator(".chat__meta strong")).to_have_text("Could not be verified")
    expect(item).not_to_contain_text("Fern")
    expect(item).not_to_contain_text("Only Fern wrote this.")
    expect(item.get_by_role("button", name="Report")).to_have_count(0)


def test_a_browser_that_cannot_keep_keys_is_told_so_and_gets_no_half_working_room(
    browsers, live_server_url, world
):
    page = browsers()
    sign_in(page, live_server_url, HANDLES["Fern"])
    # As in private modes that refuse site storage: IndexedDB cannot be opened.
    page.add_init_script(
        "IDBFactory.prototype.open = function () {"
        " throw new DOMException('The user denied permission', 'InvalidStateError'); };"
    )
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(live_server_url + world.path)
    status = page.locator("#room-status")
    expect(status).to_contain_text("end-to-end encrypted")
    expect(status).to_contain_text("another browser")
    expect(composer(page, "Fern")).to_be_hidden()
    expect(page.locator("#chat")).to_be_hidden()
    page.wait_for_timeout(500)
    assert not [url for url in sockets if "/ws/meetings/" in url]
    assert not Device.objects.filter(membership=world.members["Fern"]).exists()


KEY_DATABASES = "async () => (await indexedDB.databases()).map((d) => d.name)"


def test_leave_quickly_and_signing_out_delete_the_device_keys(
    browsers, live_server_url, world, allow_foreign_origin
):
    from tests.e2e.test_leave_quickly import NEUTRAL_PAGE, origin

    fern = member(browsers, live_server_url, world, "Fern")
    assert "sg-meeting-keys" in fern.evaluate(KEY_DATABASES)
    fern.locator(".site-nav").get_by_role("button", name="Sign out").click()
    expect(fern).not_to_have_url(re.compile(re.escape(world.path)))
    assert "sg-meeting-keys" not in fern.evaluate(KEY_DATABASES)

    from django.conf import settings

    neutral = settings.QUICK_EXIT_URL
    allow_foreign_origin(origin(neutral))
    river = member(browsers, live_server_url, world, "River")
    river.context.route(
        origin(neutral) + "/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=NEUTRAL_PAGE),
    )
    assert "sg-meeting-keys" in river.evaluate(KEY_DATABASES)
    river.get_by_role("link", name="Leave quickly").click()
    expect(river).to_have_url(re.compile(re.escape(origin(neutral))))
    river.goto(live_server_url + "/")
    assert "sg-meeting-keys" not in river.evaluate(KEY_DATABASES)


def test_a_participants_new_device_is_noticed_in_the_room(browsers, live_server_url, world):
    fern = member(browsers, live_server_url, world, "Fern")
    river = member(browsers, live_server_url, world, "River")
    before = live_device(world.members["River"]).safety_code
    # River's browser loses its keys (storage cleared) and comes back: a new device.
    river.evaluate(
        "() => new Promise((r) => { indexedDB.deleteDatabase('sg-meeting-keys').onsuccess = r; })"
    )
    river.reload()
    expect_connected(river)
    after = live_device(world.members["River"]).safety_code
    assert after != before
    notice = fern.locator("#chat li.chat__notice")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text(
        f"River is now here from another browser or phone, so their safety code is now {after}"
    )
    say(river, "River", "Back, on a new device.")
    expect_read(fern, [("River", "Back, on a new device.")])


def test_a_message_that_cannot_be_unlocked_says_so_is_counted_and_its_key_is_asked_again(
    browsers, live_server_url, world
):
    fern = browsers()
    sign_in(fern, live_server_url, HANDLES["Fern"])

    # Between the server and Fern's page, River's keys (every share not from Fern's own
    # device) go missing, as if lost on the way; once Fern's page has asked River's device
    # again, they are held back until released.
    state = {"mine": set(), "river": set(), "asked": [], "held": [], "page": None}

    def strip(text):
        frame = json.loads(text)
        own = frame.get("device") or (frame.get("e2ee") or {}).get("device")
        if frame.get("type") in ("device_registered", "hello") and own:
            state["mine"].add(own["id"])
        if frame.get("type") != "keys":
            return text
        others = [s for s in frame["shares"] if s["sender_device"] not in state["mine"]]
        state["river"] |= {s["sender_device"] for s in others}
        if state["asked"] and others:
            state["held"].append(json.dumps({**frame, "shares": others}))
        frame["shares"] = [s for s in frame["shares"] if s not in others]
        return json.dumps(frame)

    def relay(ws):
        server = ws.connect_to_server()
        state["page"] = ws

        def upwards(message):
            if '"key_request"' in message:
                state["asked"].append(json.loads(message))
            server.send(message)

        ws.on_message(upwards)
        server.on_message(lambda message: ws.send(strip(message)))

    fern.route_web_socket(re.compile(r"/ws/meetings/"), relay)
    fern.goto(live_server_url + world.path)
    expect_connected(fern)
    # River comes in after Fern: Fern's device was there when River's epoch began, so the
    # server relays Fern's request for it.
    river = member(browsers, live_server_url, world, "River")

    say(river, "River", "Can everyone read this?")
    # Fern's page cannot open it: it says so in words, counts it in the header, shows no
    # ciphertext and no Report button, and asks River's device for the key again.
    item = fern.locator("#chat li[data-seq]")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-unread", "locked")
    expect(item.locator(".chat__body")).to_have_text(LOCKED)
    expect(item.locator(".chat__meta strong")).to_have_text("River")
    expect(item.get_by_role("button", name="Report")).to_have_count(0)
    expect(fern.locator("#room-locked")).to_have_text(
        "1 message could not be unlocked in this browser yet. This browser has asked the "
        "sender's browser again for what it needs to open it."
    )
    expect(fern.locator("#room")).not_to_contain_text(re.compile("device", re.IGNORECASE))
    wait_for(fern, lambda: state["asked"], "Fern's page to ask for River's key again")
    assert state["asked"][0]["sender_device"] in state["river"]
    wait_for(fern, lambda: state["held"], "River's device to answer with the key")

    # The answer arrives: the message opens where it stands, and the count goes.
    for frame in state["held"]:
        state["page"].send(frame)
    expect(item.locator(".chat__body")).to_have_text("Can everyone read this?")
    expect(item).not_to_have_attribute("data-unread", "locked")
    expect(fern.locator("#room-locked")).to_be_hidden()


def test_a_message_from_a_device_not_yet_described_is_read_once_the_device_is(
    browsers, live_server_url, world
):
    """The room tells the others about a new device a moment after it registers (its
    `devices` frames are coalesced), so its first message can arrive first: that is not a
    forgery, and the message opens once the device is known."""
    fern = browsers()
    sign_in(fern, live_server_url, HANDLES["Fern"])
    state = {"held": [], "hold": False, "page": None}

    def hold_devices(text):
        frame = json.loads(text)
        if state["hold"] and frame.get("type") == "devices":
            state["held"].append(text)
            return None
        return text

    def relay(ws):
        server = ws.connect_to_server()
        state["page"] = ws
        ws.on_message(server.send)

        def downwards(message):
            passed = hold_devices(message)
            if passed is not None:
                ws.send(passed)

        server.on_message(downwards)

    fern.route_web_socket(re.compile(r"/ws/meetings/"), relay)
    fern.goto(live_server_url + world.path)
    expect_connected(fern)
    state["hold"] = True  # from now on Fern's page hears of no device until released
    river = member(browsers, live_server_url, world, "River")
    say(river, "River", "Am I early?")
    item = fern.locator("#chat li[data-seq]")
    expect(item).to_have_count(1)
    expect(item).not_to_have_attribute("data-unread", "unverified")
    state["hold"] = False
    for text in state["held"]:
        state["page"].send(text)
    expect(item.locator(".chat__body")).to_have_text("Am I early?")
    expect(item.locator(".chat__meta strong")).to_have_text("River")
    expect(fern.locator("#room-locked")).to_be_hidden()


def test_a_page_not_yet_told_of_a_removal_shares_again_without_the_removed_device(
    browsers, live_server_url, world
):
    """Wren is removed while Fern's page has not heard of it yet (its devices frame is late):
    Fern's next message needs a new epoch, Fern's page shares it with Wren's device too,
    the server refuses that share naming Wren's device, and the page shares again without
    it: the message goes out, and Wren's device gets no key of it."""
    fern = browsers()
    sign_in(fern, live_server_url, HANDLES["Fern"])
    state = {"hold": False}

    def relay(ws):
        server = ws.connect_to_server()
        ws.on_message(server.send)

        def downwards(message):
            if state["hold"] and json.loads(message).get("type") == "devices":
                return  # this page is never told of the removal
            ws.send(message)

        server.on_message(downwards)

    fern.route_web_socket(re.compile(r"/ws/meetings/"), relay)
    fern.goto(live_server_url + world.path)
    expect_connected(fern)
    wren = member(browsers, live_server_url, world, "Wren")
    say(wren, "Wren", "Hello from Wren.")
    expect(readable(fern)).to_have_count(1)
    wren_device = live_device(world.members["Wren"])
    state["hold"] = True

    def remove():
        try:
            moderation_services.action_take(
                membership=Membership.objects.get(pk=world.members["Wren"].pk),
                actor=world.admin,
                kind=ActionKind.REMOVE,
                guideline_number=1,
                reason="Test removal.",
            )
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as other:
        other.submit(remove).result()
    expect(wren.locator("#room-status")).to_contain_text("not a member", timeout=15_000)

    say(fern, "Fern", "Said after Wren was removed.")
    device = live_device(world.members["Fern"])
    sent = Message.objects.get(meeting=world.meeting, sender_device=device)
    assert not KeyShare.objects.filter(
        sender_device=device, epoch=sent.epoch, recipient_device=wren_device
    ).exists()
