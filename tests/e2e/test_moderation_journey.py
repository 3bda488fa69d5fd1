"""Moderation in a real browser.

1. Member A (River) reports member B's (Fern's) message citing rule 2; the facilitator
   (Lantern, signed in with password and authenticator code) sees it on the dashboard and
   mutes Fern for 10 minutes from the report; Fern's open room turns read-only at once and
   the server refuses what Fern sends; Lantern hides the message from the room and both
   members' rooms show it hidden; Fern reads the mute and its reason in their account.
2. A safety concern alerts the facilitator, who opens the member's emergency contact
   through the break-glass page (a reason and a confirmation first); the member sees it
   under "Who has seen my data".
"""

import re
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from playwright.sync_api import expect

from accounts.models import TOTPDevice, User
from audit.events import Action
from audit.models import Event
from groups import services as group_services
from groups.models import Membership, Retention, Status, Topic
from meetings import services as meeting_services
from meetings.models import Message
from moderation.models import ActionKind, ModerationAction, Report

PASSWORD = "lantern harbour quietly 42"
RULES = [
    "What is shared here stays here.",
    "Speak from your own experience; no advice unless asked.",
    "Be kind: never mock or judge anyone.",
]
UNKIND = "Honestly, you are all pathetic."
MUTED_TEXT = "A facilitator has muted you: you can read but not send."
RIVER_PHONE = "+44 7700 900123"
RIVER_EMERGENCY = "Sam Okafor (sister), 07700 900456"


# --- the world, built through the services ----------------------------------------------------


def build():
    admin = User.objects.create_user(username="site-keeper", is_staff=True)
    group = group_services.group_create(
        actor=admin,
        name="Evening Grief Circle",
        topic=Topic.GRIEF,
        description="A gentle weekly space.",
        eligibility="Adults who have lost someone close.",
        meeting_rhythm="Tuesdays, 7-8:30 pm",
        listed=True,
        requires_screening=False,
        retention=Retention.DAYS_30,
        crisis_resources="Call the Night Line on 0800 555 0199, any time.",
        guidelines=RULES,
        agreement_text="I keep what is said here confidential.",
        # The plain protocol (issue 19's E2EE rooms have tests of their own: test_e2ee_*).
        e2ee_meetings=False,
    )
    lantern_user = User.objects.create_user(username="fac-login-handle", password=PASSWORD)
    device = TOTPDevice.objects.create(user=lantern_user, name="Phone", confirmed=True)
    lantern = take_place(
        group_services.facilitator_appoint(group=group, actor=admin, user=lantern_user), "Lantern"
    )
    river_user = User.objects.create_user(username="river-login-handle")
    river_user.phone, river_user.emergency_contact = RIVER_PHONE, RIVER_EMERGENCY
    river_user.save(update_fields=["phone", "emergency_contact"])
    river = take_place(
        group_services.membership_create(group=group, user=river_user, actor=None, reason="t"),
        "River",
    )
    fern = take_place(
        group_services.membership_create(
            group=group,
            user=User.objects.create_user(username="fern-login-handle"),
            actor=None,
            reason="t",
        ),
        "Fern",
    )
    now = timezone.now()
    meeting = meeting_services.meeting_schedule(
        group=group,
        actor=lantern_user,
        title="Tuesday meeting",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )[0]
    return group, lantern, device, river, fern, meeting


def take_place(membership, pseudonym):
    return group_services.membership_take_place(
        actor=membership.user,
        group=membership.group,
        pseudonym=pseudonym,
        typed_name=pseudonym,
        guidelines_acknowledged=True,
    )


# --- browsers ---------------------------------------------------------------------------------


class Watched:
    """Another person's browser, failing the test on the same things the `page` fixture
    does: requests to another origin, uncaught errors, CSP violations."""

    def __init__(self, browser, live_server_url):
        self.live_server_url = live_server_url
        self.context = browser.new_context(base_url=live_server_url)
        self.problems = []
        self.urls = []
        self.context.on("request", lambda request: self.urls.append(request.url))
        self.context.on("weberror", lambda error: self.problems.append(str(error.error)))
        self.context.on("console", self._console)
        self.page = self.context.new_page()
        self.page.on("websocket", lambda ws: self.urls.append(ws.url))

    def _console(self, message):
        if message.type == "error" and "Content Security Policy" in message.text:
            self.problems.append(message.text)

    def close(self):
        own = re.compile(
            r"^(https?|wss?)://" + re.escape(self.live_server_url.split("//")[1]) + "/"
        )
        foreign = [url for url in self.urls if not own.match(url) and "://" in url[:8]]
        self.context.close()
        assert not self.problems, self.problems
        assert not foreign, foreign


@pytest.fixture
def browsers(browser, live_server_url):
    opened = []

    def open_one():
        watched = Watched(browser, live_server_url)
        opened.append(watched)
        return watched

    yield open_one
    for watched in opened:
        watched.close()


def sign_in_as_member(context, live_server_url, user):
    """Members need no second factor: a session made by force_login, as after a sign-in."""
    client = Client()
    client.force_login(user)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server_url,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )


def totp_code(device):
    device = TOTPDevice.objects.get(pk=device.pk)
    step = int(time.time()) // TOTPDevice.STEP
    if device.last_t >= step - 1:  # a code is accepted once per 30 s step
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=step - 2)
    return f"{TOTP(bytes.fromhex(device.key)).token():06d}"


def sign_in_with_second_factor(page, live_server_url, username, device):
    page.goto(live_server_url + "/accounts/login/")
    page.locator("input[name=login]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(live_server_url) + "/accounts/login/two-factor/"))
    page.locator("input[name=code]").fill(totp_code(device))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(re.escape(live_server_url) + "/groups/mine/$"))


def open_room(page, live_server_url, meeting):
    page.goto(f"{live_server_url}/meetings/{meeting.pk}/")
    expect(page.locator("#room-status")).to_have_text("Connected.")


def message_item(page, text):
    return page.locator("#chat li.chat__message", has_text=text)


def raw_send(page, meeting):
    """What a modified page could do: open the room's socket itself and send a message."""
    return page.evaluate(
        """async (path) => new Promise((resolve, reject) => {
            const socket = new WebSocket(`ws://${location.host}${path}`);
            const timer = setTimeout(() => reject(new Error("no answer")), 5000);
            socket.addEventListener("message", (event) => {
              const frame = JSON.parse(event.data);
              if (frame.type === "hello") {
                socket.send(JSON.stringify(
                  {type: "send", client_id: "raw-send-000001", body: "Let me speak."}));
              } else if (frame.type === "error" || frame.type === "ack") {
                clearTimeout(timer);
                socket.close();
                resolve(frame);
              }
            });
            socket.addEventListener("close", (event) => {
              clearTimeout(timer);
              resolve({type: "socket closed", code: event.code});
            });
        })""",
        f"/ws/meetings/{meeting.pk}/",
    )


# --- 1. report → mute → hide ------------------------------------------------------------------


def test_a_reported_message_leads_to_a_mute_and_is_hidden_for_everyone(
    page, context, browsers, live_server_url
):
    group, lantern, device, river, fern, meeting = build()

    # River (member A) is `page`; Fern (member B) and Lantern have their own browsers.
    sign_in_as_member(context, live_server_url, river.user)
    fern_browser = browsers()
    sign_in_as_member(fern_browser.context, live_server_url, fern.user)
    fern_page = fern_browser.page

    open_room(page, live_server_url, meeting)
    open_room(fern_page, live_server_url, meeting)

    # Fern says something unkind; River sees it.
    fern_page.locator("#composer-body").fill(UNKIND)
    fern_page.get_by_role("button", name="Send", exact=True).click()
    expect(message_item(page, UNKIND)).to_be_visible()

    # River reports it, citing rule 2.
    unkind = message_item(page, UNKIND)
    unkind.get_by_role("button", name="Report").click()
    form = unkind.locator("form.chat__form")
    form.get_by_label("Guideline").select_option("2")
    form.get_by_label("Note (optional)").fill("It felt aimed at all of us.")
    form.get_by_role("button", name="Send report").click()
    expect(page.locator("#room-status")).to_have_text(
        "Thank you. The facilitators will look at your report."
    )
    # The message says it was reported (no second report by mistake); the thanks passes.
    expect(unkind.get_by_text("Reported", exact=True)).to_be_visible()
    expect(unkind.get_by_role("button", name="Report")).to_have_count(0)
    expect(page.locator("#room-status")).to_have_text("Connected.", timeout=15_000)
    report = Report.objects.get()
    assert (report.reporter_id, report.reported_id, report.guideline_number) == (
        river.pk,
        fern.pk,
        2,
    )

    # Lantern signs in with the second factor and finds it on the dashboard.
    lantern_browser = browsers()
    lantern_page = lantern_browser.page
    sign_in_with_second_factor(lantern_page, live_server_url, "fac-login-handle", device)
    lantern_page.goto(f"{live_server_url}/moderation/{group.slug}/")
    expect(lantern_page.get_by_role("heading", name="Open reports (1)")).to_be_visible()
    lantern_page.get_by_role("link", name="Message by Fern").click()
    expect(lantern_page).to_have_url(
        f"{live_server_url}/moderation/{group.slug}/reports/{report.pk}/"
    )
    expect(lantern_page.get_by_text(UNKIND)).to_be_visible()
    expect(lantern_page.get_by_text("Reported by River")).to_be_visible()
    assert "river-login-handle" not in lantern_page.content()

    # ...and mutes Fern for ten minutes, with a reason.
    lantern_page.get_by_label("Outcome").select_option(label="Mute the member")
    lantern_page.get_by_label(re.compile(r"^For\b")).select_option(label="10 minutes")
    lantern_page.get_by_label("Note").fill("Please take ten minutes; rule 2 is about kindness.")
    lantern_page.get_by_role("button", name="Resolve").click()
    expect(lantern_page).to_have_url(f"{live_server_url}/moderation/{group.slug}/")
    expect(lantern_page.get_by_text("The report is resolved.")).to_be_visible()

    # Fern's open room turns read-only at once, and says why.
    expect(fern_page.locator("#composer-body")).to_be_disabled(timeout=3000)
    expect(fern_page.locator("#composer-send")).to_be_disabled()
    # ...with the rule and the reason (the report's rule 2), and until when.
    notice = fern_page.locator("#muted-notice")
    expect(notice).to_contain_text("A facilitator has muted you until ")
    expect(notice).to_contain_text(f"under guideline 2: “{RULES[1]}”")
    expect(notice).to_contain_text("Please take ten minutes; rule 2 is about kindness.")
    muted = Membership.objects.get(pk=fern.pk)
    assert muted.status == Status.MUTED
    assert muted.muted_until > timezone.now() + timedelta(minutes=9)

    # Not just the page: the server refuses what Fern sends through the socket itself.
    refused = raw_send(fern_page, meeting)
    assert refused["type"] == "error" and refused["code"] == "muted", refused
    assert refused["message"] == MUTED_TEXT
    assert not Message.objects.filter(client_id="raw-send-000001").exists()

    # Lantern hides the message from the room; everyone's room shows it hidden.
    open_room(lantern_page, live_server_url, meeting)
    in_lantern_room = message_item(lantern_page, UNKIND)
    in_lantern_room.get_by_role("button", name="Hide").click()
    hide_form = in_lantern_room.locator("form.chat__form")
    hide_form.get_by_label("Guideline").select_option("2")
    hide_form.get_by_label("Reason the member will read").fill("Unkind to the whole group.")
    hide_form.get_by_role("button", name="Confirm").click()
    for room_page in (page, fern_page, lantern_page):
        first = room_page.locator("#chat li.chat__message").first
        expect(first.locator(".chat__body")).to_have_text("Hidden by a facilitator.", timeout=3000)
        # (The screen-reader announcer may still hold it: see the xfail test below.)
        expect(room_page.locator("#chat").get_by_text(UNKIND)).to_have_count(0)
    assert Message.objects.get(meeting=meeting, seq=1).hidden_at is not None

    # A late joiner (or a reload) never gets the text back.
    page.reload()
    expect(page.locator("#room-status")).to_have_text("Connected.")
    expect(page.locator("#chat li.chat__message").first.locator(".chat__body")).to_have_text(
        "Hidden by a facilitator."
    )
    expect(page.get_by_text(UNKIND)).to_have_count(0)  # nowhere on the page, announcer too

    # Fern reads, in their account, what was done and why.
    fern_page.goto(f"{live_server_url}/moderation/about-me/")
    steps = fern_page.locator("ul.events > li")
    expect(steps).to_have_count(2)
    mute = steps.filter(has_text="Muted until")
    expect(mute).to_contain_text(f"Rule 2: {RULES[1]}")
    expect(mute).to_contain_text("Reason: Please take ten minutes; rule 2 is about kindness.")
    hidden = steps.filter(has_text="Message hidden")
    expect(hidden).to_contain_text("Reason: Unkind to the whole group.")
    assert "River" not in fern_page.locator("main").inner_text()

    # Every step was audited, and shows in the group's moderation log.
    kinds = [
        e.extra["kind"]
        for e in Event.objects.filter(action=Action.MODERATION_ACTION_TAKEN).order_by("seq")
    ]
    assert kinds == ["mute", "hide_message"]
    assert Event.objects.filter(action=Action.REPORT_FILED).count() == 1
    assert Event.objects.filter(action=Action.REPORT_RESOLVED).count() == 1
    assert sorted(ModerationAction.objects.values_list("kind", flat=True)) == [
        ActionKind.HIDE_MESSAGE,
        ActionKind.MUTE,
    ]
    lantern_page.goto(f"{live_server_url}/moderation/{group.slug}/log/")
    log = lantern_page.locator("ul.events")
    expect(log).to_contain_text("Lantern: Muted — Fern (rule 2)")
    expect(log).to_contain_text("Lantern: Message hidden — Fern (rule 2)")


# --- 2. safety concern → break glass ----------------------------------------------------------


def test_a_safety_concern_leads_to_an_audited_break_glass_reveal(
    page, context, browsers, live_server_url
):
    group, lantern, device, river, fern, meeting = build()

    # Fern is worried about River.
    sign_in_as_member(context, live_server_url, fern.user)
    page.goto(f"{live_server_url}/moderation/{group.slug}/safety/")
    expect(page.get_by_text("Call the Night Line on 0800 555 0199, any time.")).to_be_visible()
    page.get_by_label("Who are you worried about?").select_option(label="River")
    page.get_by_label("Anything the facilitators should know").fill("River said goodbye.")
    page.get_by_role("button", name="Tell the facilitators").click()
    expect(page.get_by_role("heading", name="The facilitators have been told")).to_be_visible()

    # Lantern sees the alert first thing on the dashboard.
    lantern_page = browsers().page
    sign_in_with_second_factor(lantern_page, live_server_url, "fac-login-handle", device)
    lantern_page.goto(f"{live_server_url}/moderation/")
    expect(lantern_page.get_by_text("1 safety concern")).to_be_visible()
    lantern_page.get_by_role("link", name="Evening Grief Circle").click()
    expect(lantern_page.get_by_role("heading", name="Safety concerns (1)")).to_be_visible()
    expect(lantern_page.get_by_text("About River, raised by Fern")).to_be_visible()
    lantern_page.get_by_role("link", name="Emergency contact details (break glass)").click()
    expect(lantern_page.get_by_role("heading", level=1)).to_have_text(
        "Emergency contact details of River"
    )
    show = lantern_page.get_by_role("button", name="Show the contact details")
    reason = lantern_page.get_by_label("Why do you need this member's contact details now?")
    confirm = lantern_page.get_by_label("I understand this is for a safety emergency only")

    # A reason too short to mean anything is refused.
    reason.fill("worried")
    confirm.check()
    show.click()
    expect(lantern_page.locator("#id_reason_error")).to_contain_text("at least a sentence")
    # So is a real reason without the confirmation.
    reason = lantern_page.get_by_label("Why do you need this member's contact details now?")
    reason.fill("River told the group they plan to end their life tonight.")
    lantern_page.get_by_label("I understand this is for a safety emergency only").uncheck()
    lantern_page.get_by_role("button", name="Show the contact details").click()
    expect(lantern_page.locator("#id_confirm_error")).to_contain_text("This field is required.")
    assert RIVER_PHONE not in lantern_page.content()
    assert not Event.objects.filter(action=Action.CONTACT_DETAILS_REVEALED).exists()

    lantern_page.get_by_label("I understand this is for a safety emergency only").check()
    lantern_page.get_by_role("button", name="Show the contact details").click()
    expect(lantern_page.get_by_test_id("revealed-phone")).to_have_text(RIVER_PHONE)
    expect(lantern_page.get_by_test_id("revealed-emergency")).to_have_text(RIVER_EMERGENCY)

    (event,) = Event.objects.filter(action=Action.CONTACT_DETAILS_REVEALED)
    assert (event.actor_id, event.subject_id) == (lantern.user_id, river.user_id)

    # River sees it under "Who has seen my data".
    river_page = browsers().page
    sign_in_as_member(river_page.context, live_server_url, river.user)
    river_page.goto(f"{live_server_url}/account/activity/")
    looks = river_page.locator("section[aria-labelledby=access-heading]")
    expect(looks).to_contain_text("opened your emergency contact details, after writing a reason")
    expect(looks).not_to_contain_text("Lantern")


# --- known bug --------------------------------------------------------------------------------


def test_a_hidden_message_leaves_no_trace_in_other_members_open_pages(
    page, context, browsers, live_server_url
):
    group, lantern, device, river, fern, meeting = build()
    sign_in_as_member(context, live_server_url, river.user)
    fern_browser = browsers()
    sign_in_as_member(fern_browser.context, live_server_url, fern.user)
    open_room(page, live_server_url, meeting)
    open_room(fern_browser.page, live_server_url, meeting)
    fern_browser.page.locator("#composer-body").fill(UNKIND)
    fern_browser.page.get_by_role("button", name="Send", exact=True).click()
    expect(message_item(page, UNKIND)).to_be_visible()

    lantern_page = browsers().page
    sign_in_with_second_factor(lantern_page, live_server_url, "fac-login-handle", device)
    open_room(lantern_page, live_server_url, meeting)
    in_lantern_room = message_item(lantern_page, UNKIND)
    in_lantern_room.get_by_role("button", name="Hide").click()
    in_lantern_room.locator("form.chat__form").get_by_label("Guideline").select_option("2")
    in_lantern_room.get_by_role("button", name="Confirm").click()

    expect(page.locator("#chat .chat__body").first).to_have_text("Hidden by a facilitator.")
    assert UNKIND not in page.locator("body").text_content()
