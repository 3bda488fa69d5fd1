"""Consent to share, in a real browser: the facilitator (Lantern) asks River for consent to
share the meetings River attended and a written summary with a named clinic; River's open
page shows the notice at once, River reads exactly what would be shared in the privacy
centre and agrees; Lantern downloads the file, which holds exactly those items and whose
SHA-256 is the one recorded; River then reads the disclosure under "Who has seen my data"."""

import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from audit.events import Action
from audit.models import Event
from meetings import services as meeting_services
from privacy.models import Disclosure
from tests.e2e.conftest import _checked_context
from tests.factories import appoint, give_place, make_group, make_person, schedule, sign_in

RECIPIENT = "Dr A. Patel, Riverside Clinic"
SUMMARY = "River has come to every meeting since March and asked for this letter."
RIVER_PHONE = "+44 7700 900123"


def signed_in_context(browser, live_server_url, user, *, verified):
    client = sign_in(Client(), user, verified=verified)
    context = _checked_context(browser.new_context(base_url=live_server_url))
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


def test_a_facilitator_asks_the_member_agrees_and_the_facilitator_downloads_the_file(
    browser, live_server_url
):
    admin = make_person("site-keeper", staff=True)
    group = make_group(admin, "Evening Grief Circle")
    lantern = appoint(group, make_person("fac-lantern"), "Lantern", actor=admin)
    river = give_place(group, make_person("member-river", phone=RIVER_PHONE), "River")
    meeting = schedule(group, lantern.user, title="Tuesday circle")
    meeting_services.presence_join(meeting=meeting, membership=river, channel_name="e2e.river")

    river_context = signed_in_context(browser, live_server_url, river.user, verified=False)
    lantern_context = signed_in_context(browser, live_server_url, lantern.user, verified=True)
    try:
        river_page = river_context.new_page()
        # River's page is open (its account socket too) while Lantern fills in the form.
        river_page.goto(live_server_url + "/account/")

        page = lantern_context.new_page()
        page.goto(f"{live_server_url}/moderation/{group.slug}/members/{river.pk}/")
        page.get_by_role("link", name="Ask River for consent to share information").click()
        page.get_by_label("Meetings attended").check()
        page.get_by_label("A written summary").check()
        page.get_by_label("Your written summary (if you chose it above)").fill(SUMMARY)
        page.get_by_label("Who would receive it").fill(RECIPIENT)
        page.get_by_label("What it is for").fill("A letter for River's GP.")
        until = timezone.localdate() + timedelta(days=14)
        page.get_by_label("Consent lasts until (the last day)").fill(until.isoformat())
        page.get_by_role("button", name="Ask for consent").click()
        expect(page.locator("main")).to_contain_text("Waiting for the member")

        # River's open page hears of it at once, in words naming nothing.
        notice = river_page.locator("#personal-notice")
        expect(notice).to_contain_text("asked for your consent", timeout=5000)
        assert group.name not in notice.inner_text()
        notice.get_by_role("link", name="Read it").click()
        river_page.get_by_role("link", name=re.compile("Read and answer")).click()
        main = river_page.locator("main")
        expect(main).to_contain_text(SUMMARY)
        expect(main).to_contain_text("Tuesday circle")
        expect(main).not_to_contain_text(RIVER_PHONE)
        river_page.get_by_role("button", name="I agree to share this").click()
        expect(river_page.locator("#consent-status")).to_contain_text("Approved")

        page.reload()
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Make the file for River").click()
        data = Path(download_info.value.path()).read_bytes()
        document = json.loads(data)
        assert set(document["items"]) == {"attendance", "summary"}
        assert document["items"]["summary"] == SUMMARY
        assert RIVER_PHONE not in data.decode()
        digest = hashlib.sha256(data).hexdigest()
        assert Disclosure.objects.get().package_sha256 == digest
        event = Event.objects.get(action=int(Action.DISCLOSURE_PACKAGE_PRODUCED))
        assert event.extra["sha256"] == digest

        river_page.goto(live_server_url + "/account/activity/")
        shared = river_page.locator("section[aria-labelledby=shared-heading]")
        expect(shared).to_contain_text(RECIPIENT)
        expect(shared).to_contain_text("Lantern, a facilitator of Evening Grief Circle")
    finally:
        river_context.close()
        lantern_context.close()
