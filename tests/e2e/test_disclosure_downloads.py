"""Forms whose answer is a file (a disclosure's package): after the download the page moves
on to where the file is listed and says what was recorded, instead of staying on the form
with what it showed before (an earlier "That is not your password." among it) and no word
that anything happened, which invited recording the disclosure twice."""

import re

from playwright.sync_api import expect

from privacy import services as privacy_services
from privacy.models import Disclosure
from privacy.packages import content_sha256
from tests.e2e.test_consent_journey import signed_in_context
from tests.e2e.test_phone_tables import lantern_asks_river
from tests.factories import PASSWORD, give_place, make_group, make_person


def test_an_admin_recording_a_legal_disclosure_is_told_it_was_recorded(browser, live_server_url):
    admin = make_person("site-keeper", staff=True)
    group = make_group(admin, "Evening Grief Circle")
    give_place(group, make_person("member-river"), "River")

    context = signed_in_context(browser, live_server_url, admin, verified=True)
    try:
        page = context.new_page()
        page.goto(live_server_url + "/disclosures/legal/new/")
        page.get_by_label("The member's login handle").fill("member-river")
        page.get_by_label("Contact details (recovery email, phone, emergency contact)").check()
        page.get_by_label("What is disclosed, in words (as the member will read it)").fill(
            "Your contact details."
        )
        page.get_by_label("A court order").check()
        page.get_by_label("Reference").fill("Order FD24P00123")
        page.get_by_label("Who receives it").fill("Family Court")
        page.get_by_label("Your password, to confirm it is you").fill("not my password")
        page.get_by_role("button", name="Record it and make the file").click()
        expect(page.locator(".error-summary")).to_contain_text("That is not your password.")

        page.get_by_label("Your password, to confirm it is you").fill(PASSWORD)
        with page.expect_download() as download:
            page.get_by_role("button", name="Record it and make the file").click()
        assert re.fullmatch(r"disclosure-\d+\.json", download.value.suggested_filename)

        expect(page).to_have_url(live_server_url + "/disclosures/legal/")
        expect(page.get_by_role("status").filter(has_text="Recorded.")).to_contain_text(
            download.value.suggested_filename
        )
        expect(page.locator(".error-summary")).to_have_count(0)
        expect(page.locator("main table")).to_contain_text("Family Court")
        assert Disclosure.objects.count() == 1
        # The page's token did its work: nothing of it is left in the browser.
        assert all(c["name"] != "sg_download" for c in context.cookies())
    finally:
        context.close()


def test_a_facilitator_making_the_file_sees_it_listed_at_once(browser, live_server_url):
    group, lantern, river, consent = lantern_asks_river()
    privacy_services.consent_approve(
        actor=river.user,
        consent=consent,
        shown_sha256=content_sha256(privacy_services.consent_preview(consent)),
    )

    context = signed_in_context(browser, live_server_url, lantern.user, verified=True)
    try:
        page = context.new_page()
        page.goto(f"{live_server_url}/disclosures/group/{group.slug}/")
        expect(page.get_by_text("Files made")).to_have_count(0)
        with page.expect_download():
            page.get_by_role("button", name="Make the file for River").click()
        expect(page.get_by_role("status").filter(has_text="The file is made")).to_be_visible()
        expect(page.locator("main")).to_contain_text("Files made")
        assert Disclosure.objects.count() == 1
    finally:
        context.close()
