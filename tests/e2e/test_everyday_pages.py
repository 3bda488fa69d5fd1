"""Issue 21's everyday pages in a real browser: a failed form announces itself, times are
in the reader's own zone with its name, "Sign out" is one click for this browser only, and
the backup codes can be copied, downloaded and printed."""

import re
from pathlib import Path

from django.conf import settings
from django.test import Client
from django_otp.oath import TOTP
from playwright.sync_api import expect

from accounts.models import TOTPDevice
from tests.factories import make_person, sign_in


def signed_in_context(browser, live_server_url, user, **options):
    client = sign_in(Client(), user, verified=False)
    context = browser.new_context(base_url=live_server_url, **options)
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
    return context


def test_a_failed_form_moves_focus_to_its_error_summary_and_says_error_in_the_title(
    page, live_server_url
):
    page.goto(live_server_url + "/accounts/login/")
    page.get_by_role("button", name="Sign in").click()

    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("There is a problem")
    assert page.title().startswith("Error: ")
    # Its links take the keyboard to the field itself.
    summary.get_by_role("link").first.click()
    expect(page.get_by_label("Login handle")).to_be_focused()


def test_times_are_shown_in_the_readers_zone_named_with_the_utc_instant_on_hover(
    browser, live_server_url
):
    person = make_person("quiet-otter")
    context = signed_in_context(
        browser, live_server_url, person, timezone_id="America/New_York", locale="en-US"
    )
    try:
        page = context.new_page()
        page.goto("/account/sessions/")
        signed_in_at = page.get_by_role("cell").locator("time").first
        # New York's zone, named: "EST" (winter) or "EDT" (summer).
        expect(signed_in_at).to_have_text(re.compile(r"\b(EST|EDT)$"))
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", signed_in_at.get_attribute("datetime")
        )
        assert signed_in_at.get_attribute("title").endswith(" UTC")
        expect(page.get_by_role("cell", name="just now")).to_be_visible()
    finally:
        context.close()


def test_sign_out_in_the_menu_is_one_click_and_leaves_other_browsers_signed_in(
    browser, live_server_url
):
    person = make_person("quiet-otter")
    here = signed_in_context(browser, live_server_url, person)
    elsewhere = signed_in_context(browser, live_server_url, person)
    try:
        page = here.new_page()
        page.goto("/account/")
        page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
        # No confirmation page: signed out at once.
        expect(
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in")
        ).to_be_visible()
        assert "/accounts/logout/" not in page.url

        other = elsewhere.new_page()
        other.goto("/account/")
        expect(other.get_by_role("heading", level=1)).to_have_text("Your account")
    finally:
        here.close()
        elsewhere.close()


def test_backup_codes_can_be_copied_downloaded_and_printed(browser, live_server_url, tmp_path):
    person = make_person("quiet-otter")
    context = signed_in_context(browser, live_server_url, person)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server_url)
    try:
        page = context.new_page()
        page.goto("/account/two-factor/set-up/")
        device = TOTPDevice.objects.get(user=person, confirmed=False)
        page.get_by_label("Code").fill(f"{TOTP(bytes.fromhex(device.key)).token():06d}")
        page.get_by_role("button", name="Turn on two-factor authentication").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Your backup codes")
        codes = page.get_by_test_id("backup-codes").locator("li code").all_inner_texts()
        assert len(codes) == 10

        page.get_by_role("button", name="Copy").click()
        expect(page.get_by_role("status").last).to_contain_text("Copied")
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert all(code in copied for code in codes)

        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download (.txt)").click()
        download = download_info.value
        assert download.suggested_filename == "backup-codes.txt"
        saved = tmp_path / "codes.txt"
        download.save_as(saved)
        assert Path(saved).read_text().split("\n")[3:13] == codes

        page.evaluate("() => { window.print = () => { window.printed = true; }; }")
        page.get_by_role("button", name="Print").click()
        assert page.evaluate("() => window.printed") is True
        # The printout holds the codes, not the site's header and menu.
        page.emulate_media(media="print")
        expect(page.get_by_test_id("backup-codes")).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    finally:
        context.close()
