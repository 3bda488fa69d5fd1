"""Breach response in a real browser (issue 23): an admin opens an incident for one
facilitator account (and its group), signs the account out everywhere (its open meeting
room closes within a second), requires a new password and authenticator, tells the people
affected and downloads the report for the regulator; the member affected sees the notice,
and the facilitator's next sign-in goes to the new password first."""

import re
import zoneinfo
from datetime import datetime, timedelta
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import TOTPDevice
from console import services as console_services
from console.models import Incident, KeyRotation, SecurityNotice
from groups import services as group_services
from groups.models import Topic
from meetings import services as meeting_services
from tests.e2e.test_audit_console import (
    person,
    sign_in_with_second_factor,
    take_place,
    totp_code,
    url_is,
)
from tests.e2e.test_meeting_lasts import WATCH_SOCKETS, settled, wait_for_page
from tests.e2e.test_meeting_room import expect_connected
from tests.factories import CHEAP_PASSWORD_HASHERS

PASSWORD = "lantern harbour quietly 42"
GROUP_NAME = "Evening Grief Circle"
SECRET_MESSAGE = "Nobody at work knows I am here."
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


def build():
    admin = person("site-keeper", is_staff=True)
    admin_device = TOTPDevice.objects.create(user=admin, name="Phone", confirmed=True)
    group = group_services.group_create(
        actor=admin,
        name=GROUP_NAME,
        topic=Topic.GRIEF,
        description="A gentle weekly space.",
        eligibility="Adults who have lost someone close.",
        meeting_rhythm="Tuesdays",
        listed=True,
        requires_screening=False,
        crisis_resources="Call your local emergency number.",
        guidelines=["What is shared here stays here."],
        agreement_text="I keep what is said here confidential.",
        # The test posts a message from the server side, which only a plain meeting takes.
        e2ee_meetings=False,
    )
    lantern = take_place(
        group_services.facilitator_appoint(group=group, actor=admin, user=person("fac-lantern")),
        "Lantern",
    )
    lantern_device = TOTPDevice.objects.create(user=lantern.user, name="Phone", confirmed=True)
    river = take_place(
        group_services.membership_create(
            group=group, user=person("river-handle"), actor=admin, reason="test"
        ),
        "River",
    )
    now = timezone.now()
    [meeting] = meeting_services.meeting_schedule(
        group=group,
        actor=lantern.user,
        title="Drop-in",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )
    meeting_services.message_post(
        meeting_id=meeting.pk, membership_id=river.pk, client_id="c-1", body=SECRET_MESSAGE
    )
    return admin, admin_device, lantern, lantern_device, river, meeting


def confirm_step(page, link, button):
    page.get_by_role("link", name=link).click()
    page.get_by_label("I understand what this does and want to do it now.").check()
    page.get_by_role("button", name=button).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Incident")


def test_an_admin_contains_a_taken_over_facilitator_account_and_tells_the_people_affected(
    page, browser, live_server_url, settings
):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS
    admin, admin_device, lantern, lantern_device, river, meeting = build()

    # Lantern is in the meeting's room, its socket open.
    lantern_context = browser.new_context(base_url=live_server_url)
    try:
        room = lantern_context.new_page()
        room.add_init_script(WATCH_SOCKETS)
        sign_in_with_second_factor(room, live_server_url, "fac-lantern", lantern_device)
        room.goto(f"{live_server_url}/meetings/{meeting.pk}/")
        expect_connected(room)
        settled(room)

        # The admin opens an incident for Lantern's account and group.
        sign_in_with_second_factor(page, live_server_url, admin.username, admin_device)
        page.goto(live_server_url + "/audit/incidents/")
        page.get_by_role("link", name="Open an incident").click()
        page.get_by_label("What happened, in one line").fill("Lantern's account taken over")
        page.get_by_label("What happened", exact=True).fill(
            "Forty failed sign-ins, then a sign-in from an address never seen before."
        )
        page.get_by_label("Affected accounts (login handles, one per line)").fill("fac-lantern")
        page.get_by_label(GROUP_NAME).check()
        page.get_by_role("button", name="Open the incident").click()
        incident = Incident.objects.get()
        expect(page).to_have_url(url_is(live_server_url, f"/audit/incidents/{incident.pk}/"))
        expect(page.locator("#regulator-deadline")).to_contain_text("left to tell the regulator")

        # Signed out everywhere: the open room hears it at once.
        page.get_by_role("link", name="Sign out everywhere").click()
        page.get_by_label("The affected accounts").check()
        page.get_by_label("I understand what this does and want to do it now.").check()
        page.get_by_role("button", name="Sign them out now").click()
        expect(page.get_by_role("status")).to_contain_text("Signed out: 1 people (1 sessions)")
        # The step has committed when its page answers; the room is told within a second.
        expect(room.locator("#room-status")).to_contain_text("signed out", timeout=1000)
        wait_for_page(
            room,
            f"() => window.__sockets.filter((s) => new URL(s.url).pathname === "
            f"'/ws/meetings/{meeting.pk}/').every((s) => s.readyState === WebSocket.CLOSED)",
            timeout=1,
        )

        # A new password and authenticator, required before anything else.
        confirm_step(page, "Require a new password and two-factor set-up", "Require it now")
        expect(page.get_by_role("status")).to_contain_text("1 accounts must choose a new password")
        sign_in_with_second_factor_then(room, live_server_url, lantern_device)

        # Everyone affected is told.
        page.get_by_role("link", name="Tell the people affected").click()
        expect(page.locator(".notice-preview")).to_contain_text("We signed people out")
        page.get_by_label("I understand what this does and want to do it now.").check()
        page.get_by_role("button", name="Send the notice now").click()
        expect(page.get_by_role("status")).to_contain_text("Told: 2 people")
        timeline = page.locator("ol.timeline")
        expect(timeline).to_contain_text("signed accounts out for incident")
        expect(timeline).to_contain_text("required a new password and two-factor set-up")
        expect(timeline).to_contain_text("sent security notices")

        # The report for the regulator: counts and steps, no content.
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the report for the regulator").click()
        report = Path(download.value.path()).read_text(encoding="utf-8")
        assert "People in all:                2" in report
        assert "Meeting chat messages stored: 1" in report
        assert "signed accounts out for incident" in report
        assert SECRET_MESSAGE not in report
    finally:
        lantern_context.close()

    # River, affected as a member of Lantern's group, sees the notice (naming no group).
    member_context = browser.new_context(base_url=live_server_url)
    try:
        member = member_context.new_page()
        member.goto(live_server_url + "/accounts/login/")
        member.locator("input[name=login]").fill("river-handle")
        member.locator("input[name=password]").fill(PASSWORD)
        member.get_by_role("button", name="Sign in").click()
        notice = member.get_by_role("region", name="A security notice")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("we found a security problem")
        expect(notice).to_contain_text("We signed people out on every device")
        expect(notice).not_to_contain_text(GROUP_NAME)
        notice.get_by_role("button", name="I have read this").click()
        expect(member.get_by_role("region", name="A security notice")).to_have_count(0)
        assert SecurityNotice.objects.get(user=river.user).read_at is not None
    finally:
        member_context.close()


def sign_in_with_second_factor_then(page, live_server_url, device):
    """Lantern signs in again: password and code, and then a new password comes first."""
    page.goto(live_server_url + "/accounts/login/")
    page.locator("input[name=login]").fill("fac-lantern")
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(url_is(live_server_url, "/accounts/login/two-factor/"))
    page.locator("input[name=code]").fill(totp_code(device))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(re.escape(live_server_url) + r"/accounts/password/change/"))
    expect(page.get_by_role("status")).to_contain_text("choose a new password")


def test_the_key_rotation_runs_to_its_end_with_its_progress_shown(page, live_server_url):
    """The page drives the rotation batch by batch. (The live server has one key, so
    nothing needs re-encrypting, but every row is still checked and counted.)"""
    admin, admin_device, *_ = build()
    incident = console_services.incident_open(
        actor=admin,
        title="A backup may have leaked",
        description="Found on a shared drive.",
        detected_at=timezone.now(),
        users=[],
        groups=[],
        ip=None,
    )
    sign_in_with_second_factor(page, live_server_url, admin.username, admin_device)
    page.goto(f"{live_server_url}/audit/incidents/{incident.pk}/")
    page.get_by_role("link", name="Re-encrypt with a new key").click()
    expect(page.get_by_text("Keys configured now: 1.")).to_be_visible()
    page.get_by_label("I understand what this does and want to do it now.").check()
    page.get_by_role("button", name="Start re-encrypting").click()

    status = page.locator("#rotation-status")
    expect(status).to_contain_text("Done:", timeout=15_000)
    rotation = KeyRotation.objects.get()
    assert rotation.finished_at is not None
    assert rotation.rows_seen >= rotation.total_rows > 0
    expect(status).to_contain_text(f"Done: {rotation.rows_seen} rows checked, 0 re-encrypted")
    bar = page.locator("#rotation-progress")
    assert bar.evaluate("(bar) => bar.value === bar.max")
    page.goto(f"{live_server_url}/audit/incidents/{incident.pk}/")
    expect(page.locator("ol.timeline")).to_contain_text("The encryption keys were rotated")


def test_an_admin_in_tokyo_opens_an_incident_at_their_own_clock_time(
    browser, live_server_url, settings
):
    """The site runs in UTC; the admin's browser in Tokyo (9 hours ahead). The form names
    the admin's zone and suggests "now" on their clock; sent as it is, it is the instant
    meant (read as UTC it was 9 hours in the future, and refused)."""
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS
    settings.TIME_ZONE = "UTC"
    admin, admin_device, *_ = build()
    context = browser.new_context(
        base_url=live_server_url, timezone_id="Asia/Tokyo", locale="en-GB"
    )
    try:
        page = context.new_page()
        sign_in_with_second_factor(page, live_server_url, admin.username, admin_device)
        page.goto(live_server_url + "/audit/incidents/new/")
        detected = page.get_by_label("When it was detected")
        expect(page.locator("#id_detected_at_helptext")).to_contain_text(
            "In your time zone: Asia/Tokyo."
        )
        suggested = datetime.strptime(detected.input_value(), "%Y-%m-%dT%H:%M").replace(
            tzinfo=TOKYO
        )
        assert abs(suggested - timezone.now()) < timedelta(minutes=2)

        page.get_by_label("What happened, in one line").fill("Backup found on a public share")
        page.get_by_label("What happened", exact=True).fill("Readable by anyone with the link.")
        page.get_by_role("button", name="Open the incident").click()
        incident = Incident.objects.get()
        expect(page).to_have_url(url_is(live_server_url, f"/audit/incidents/{incident.pk}/"))
        assert incident.detected_at == suggested
        # Shown back on the admin's clock, with the zone named (Tokyo is "GMT+9").
        shown = page.locator("time").filter(has_text=suggested.strftime("%H:%M")).first
        expect(shown).to_contain_text("GMT+9")
    finally:
        context.close()
