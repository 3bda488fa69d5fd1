"""The groups journey in a real browser: an admin creates a group with guidelines and
agreement v1 and appoints a facilitator; the facilitator (after setting up 2FA) invites
someone; the invited member picks a pseudonym, cannot enter before signing, signs and
enters; the facilitator publishes v2 and the member is asked to sign again."""

import base64
import re
import time
from collections import Counter

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from accounts.models import TOTPDevice, User
from audit.events import Action
from audit.models import Event
from groups.models import Group, Membership, Signature, Status

PASSWORD = "lantern harbour quietly 42"
SET_UP_PATH = "/account/two-factor/set-up/"


def code_for_hex_key(key):
    return f"{TOTP(bytes.fromhex(key)).token():06d}"


def code_for_secret(secret):
    """What an authenticator app shows for the key typed from the set-up page."""
    totp = TOTP(base64.b32decode(secret.replace(" ", "")))
    totp.time = time.time()
    return f"{totp.token():06d}"


def at(live_server_url, path):
    return re.compile(re.escape(live_server_url + path) + r"(\?.*)?$")


def sign_in(page, live_server_url, handle, *, code=None):
    page.goto(live_server_url + "/accounts/login/")
    page.get_by_role("textbox", name=re.compile("handle|username", re.I)).fill(handle)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if code is not None:
        expect(page).to_have_url(at(live_server_url, "/accounts/login/two-factor/"))
        page.get_by_label("Code").fill(code())
        page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.fixture
def another_page(browser, live_server_url, requested_urls, page):
    """A page in a separate browser (its own cookies), watched like the `page` fixture:
    other origins, uncaught errors and CSP violations fail the test."""
    contexts, problems = [], []

    def make():
        context = browser.new_context(base_url=live_server_url)
        contexts.append(context)
        context.on("request", lambda request: requested_urls.append(request.url))
        context.on("weberror", lambda error: problems.append(f"uncaught error: {error.error}"))
        context.on(
            "console",
            lambda message: (
                problems.append(f"CSP violation: {message.text}")
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
    # Other origins are checked by the `page` fixture, which reads the same request list.
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def section(page, heading):
    return page.locator("section").filter(has=page.get_by_role("heading", name=heading))


def test_admin_facilitator_and_member_journey(page, another_page, live_server_url):
    admin = User.objects.create_user(username="site-keeper", password=PASSWORD, is_staff=True)
    admin_app = TOTPDevice.objects.create(user=admin, name="Phone", confirmed=True)
    User.objects.create_user(username="fern-facilitator", password=PASSWORD)
    member = User.objects.create_user(username="otter-member", password=PASSWORD)

    # --- the admin creates the group ----------------------------------------------------------
    admin_page = page
    sign_in(
        admin_page, live_server_url, "site-keeper", code=lambda: code_for_hex_key(admin_app.key)
    )
    admin_page.goto(live_server_url + "/groups/new/")
    expect(admin_page.get_by_role("heading", level=1)).to_have_text("Create a group")
    admin_page.get_by_label("Name", exact=True).fill("Evening Grief Circle")
    admin_page.get_by_label("Topic").select_option("grief")
    admin_page.get_by_label("Description").fill("A gentle weekly space for the bereaved.")
    admin_page.get_by_label("Eligibility").fill("Adults bereaved in the last two years.")
    admin_page.get_by_label("Meeting rhythm").fill("Tuesdays, 7-8:30 pm")
    admin_page.get_by_label("Requires screening").uncheck()
    admin_page.get_by_label("Crisis resources").fill("Call your local emergency number.")
    admin_page.get_by_label("Guidelines", exact=True).fill(
        "What is shared here stays here.\nSpeak from your own experience.\nBe kind."
    )
    admin_page.get_by_label("Confidentiality agreement (version 1)").fill(
        "Version one: I keep what is said here confidential."
    )
    admin_page.get_by_label(re.compile("^Agreement in one sentence")).fill(
        "Members keep what is shared confidential."
    )
    admin_page.get_by_role("button", name="Create the group").click()

    expect(admin_page.get_by_role("heading", level=1)).to_have_text("Manage Evening Grief Circle")
    group = Group.objects.get()
    assert admin_page.url == f"{live_server_url}/groups/{group.slug}/manage/"
    assert [(g.number, g.text) for g in group.guidelines.all()] == [
        (1, "What is shared here stays here."),
        (2, "Speak from your own experience."),
        (3, "Be kind."),
    ]
    assert [a.version for a in group.agreements.all()] == [1]

    # --- and appoints a facilitator by login handle -------------------------------------------
    admin_page.get_by_label("Login handle of the new facilitator").fill("fern-facilitator")
    admin_page.get_by_role("button", name="Appoint").click()
    expect(admin_page.get_by_role("status")).to_contain_text("Facilitator appointed.")
    expect(section(admin_page, "Facilitators")).to_contain_text("(not chosen a name yet)")
    expect(admin_page.get_by_text("fern-facilitator")).to_have_count(0)

    # --- the facilitator must set up 2FA before the manage page opens -------------------------
    facilitator_page = another_page()
    sign_in(facilitator_page, live_server_url, "fern-facilitator")
    facilitator_page.goto(f"{live_server_url}/groups/{group.slug}/manage/")
    expect(facilitator_page).to_have_url(at(live_server_url, SET_UP_PATH))
    secret = facilitator_page.get_by_test_id("totp-secret").inner_text().strip()
    facilitator_page.get_by_label("Code").fill(code_for_secret(secret))
    facilitator_page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(facilitator_page.get_by_role("heading", level=1)).to_have_text("Your backup codes")

    # --- and choose a name and sign, as members do, before anything private opens ------------
    facilitator_page.goto(f"{live_server_url}/groups/{group.slug}/manage/")
    expect(facilitator_page).to_have_url(at(live_server_url, f"/groups/{group.slug}/join/"))
    expect(facilitator_page.get_by_role("status")).to_contain_text("choose your name in it")
    facilitator_page.get_by_label("Your name in this group", exact=True).fill("Birch")
    facilitator_page.get_by_label(
        "I have read the group's guidelines and will follow them."
    ).check()
    facilitator_page.get_by_label("Sign the agreement by typing your name in this group").fill(
        "Birch"
    )
    facilitator_page.get_by_role("button", name="Choose this name and sign").click()
    expect(facilitator_page).to_have_url(at(live_server_url, f"/groups/{group.slug}/home/"))

    facilitator_page.goto(f"{live_server_url}/groups/{group.slug}/manage/")
    expect(facilitator_page.get_by_role("heading", level=1)).to_have_text(
        "Manage Evening Grief Circle"
    )
    facilitator_page.get_by_label(re.compile("^Private note")).fill("referral from the clinic")
    facilitator_page.get_by_role("button", name="Create an invitation link").click()
    link = facilitator_page.get_by_test_id("invitation-link").inner_text().strip()
    assert re.fullmatch(re.escape(live_server_url) + r"/groups/invitation/[\w-]+/", link), link

    # --- the invited member accepts and chooses a name ----------------------------------------
    member_page = another_page()
    sign_in(member_page, live_server_url, "otter-member")
    member_page.goto(link)
    expect(member_page.get_by_role("heading", level=1)).to_have_text(
        "You're invited to Evening Grief Circle"
    )
    expect(member_page.get_by_text("referral from the clinic")).to_have_count(0)
    member_page.get_by_role("button", name="Accept the invitation").click()
    join_path = f"/groups/{group.slug}/join/"
    expect(member_page).to_have_url(at(live_server_url, join_path))
    expect(member_page.get_by_role("heading", level=1)).to_have_text("Join Evening Grief Circle")

    # A name alone is not enough: without the signature, nothing is saved.
    member_page.get_by_label("Your name in this group", exact=True).fill("Quiet Fox")
    member_page.get_by_role("button", name="Choose this name and sign").click()
    expect(member_page.locator(".field--error")).to_have_count(2)
    membership = Membership.objects.get(user=member)
    assert (membership.pseudonym, membership.status) == ("", Status.PENDING_AGREEMENT)

    # The member area (where meetings live) sends them back to sign.
    member_page.goto(f"{live_server_url}/groups/{group.slug}/home/")
    expect(member_page).to_have_url(at(live_server_url, join_path))
    expect(
        member_page.get_by_role("heading", name="Confidentiality agreement, version 1")
    ).to_be_visible()

    member_page.get_by_label("Your name in this group", exact=True).fill("Quiet Fox")
    member_page.get_by_label("I have read the group's guidelines and will follow them.").check()
    member_page.get_by_label("Sign the agreement by typing your name in this group").fill(
        "Quiet Fox"
    )
    member_page.get_by_role("button", name="Choose this name and sign").click()

    expect(member_page).to_have_url(at(live_server_url, f"/groups/{group.slug}/home/"))
    expect(member_page.get_by_role("heading", level=1)).to_have_text("Evening Grief Circle")
    expect(member_page.get_by_text("You are Quiet Fox here")).to_be_visible()
    membership.refresh_from_db()
    assert (membership.pseudonym, membership.status) == ("Quiet Fox", Status.ACTIVE)
    assert Signature.objects.get(membership=membership).agreement.version == 1

    # --- the facilitator sees the signature, then publishes version 2 -------------------------
    facilitator_page.goto(f"{live_server_url}/groups/{group.slug}/manage/")
    members = section(facilitator_page, re.compile("^Members"))
    expect(members.get_by_role("row", name=re.compile("Quiet Fox"))).to_contain_text("yes")
    expect(facilitator_page.get_by_text("otter-member")).to_have_count(0)
    facilitator_page.get_by_role("link", name="Publish a new agreement").click()
    facilitator_page.get_by_label("New version of the agreement").fill(
        "Version two: no screenshots, no recordings."
    )
    facilitator_page.get_by_role("button", name="Publish version 2").click()
    # The facilitator signs the new version too, before the group's private pages again.
    expect(facilitator_page).to_have_url(
        at(live_server_url, f"/groups/{group.slug}/agreement/sign/")
    )
    expect(facilitator_page.get_by_role("status")).to_contain_text("Version 2 is published.")
    facilitator_page.get_by_label(
        "I have read the group's guidelines and will follow them."
    ).check()
    facilitator_page.get_by_label("Sign by typing your name in this group").fill("Birch")
    facilitator_page.get_by_role("button", name="Sign", exact=True).click()
    facilitator_page.goto(f"{live_server_url}/groups/{group.slug}/manage/")
    expect(section(facilitator_page, "Agreement version 2")).to_contain_text("Quiet Fox")

    # --- the member's next visit asks them to sign again --------------------------------------
    member_page.goto(f"{live_server_url}/groups/{group.slug}/home/")
    expect(member_page).to_have_url(at(live_server_url, f"/groups/{group.slug}/agreement/sign/"))
    expect(member_page.get_by_text("The facilitators published a new version.")).to_be_visible()
    expect(member_page.get_by_text("Version two: no screenshots, no recordings.")).to_be_visible()

    member_page.goto(f"{live_server_url}/groups/mine/")
    card = member_page.get_by_role("listitem").filter(has_text="Evening Grief Circle")
    expect(card).to_contain_text("Your name here: Quiet Fox")
    expect(card).to_contain_text("Please sign the new agreement")
    card.get_by_role("link", name="Read and sign it").click()

    member_page.get_by_label("I have read the group's guidelines and will follow them.").check()
    member_page.get_by_label("Sign by typing your name in this group").fill("Quiet Fox")
    member_page.get_by_role("button", name="Sign", exact=True).click()
    expect(member_page).to_have_url(at(live_server_url, f"/groups/{group.slug}/home/"))
    expect(member_page.get_by_role("status")).to_contain_text("Thank you for signing.")

    # Both versions stay readable.
    member_page.get_by_role("link", name=re.compile("Read the confidentiality agreement")).click()
    expect(member_page.get_by_role("heading", name="Version 2 (current)")).to_be_visible()
    expect(member_page.get_by_role("heading", name="Version 1", exact=True)).to_be_visible()
    expect(
        member_page.get_by_text("Version one: I keep what is said here confidential.")
    ).to_be_visible()

    member_page.goto(f"{live_server_url}/groups/mine/")
    expect(member_page.get_by_text("Please sign the new agreement")).to_have_count(0)

    # --- and it is all in the audit log -------------------------------------------------------
    recorded = {
        Action(action): count
        for action, count in Counter(
            Event.objects.filter(group_id=group.pk).values_list("action", flat=True)
        ).items()
    }
    assert recorded[Action.GROUP_CREATED] == 1
    assert recorded[Action.FACILITATOR_APPOINTED] == 1
    assert recorded[Action.MEMBERSHIP_CREATED] == 1
    assert recorded[Action.AGREEMENT_PUBLISHED] == 2
    assert recorded[Action.AGREEMENT_SIGNED] == 4  # the member's and the facilitator's, twice
