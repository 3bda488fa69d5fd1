"""Account journeys in a real browser: sign-up, 2FA, backup codes, the admin 2FA gate, and
open pages being told when their session is ended elsewhere."""

import base64
import re
import time
from pathlib import Path
from urllib.parse import urlencode

from allauth.account.models import EmailAddress
from django_otp.oath import TOTP
from playwright.sync_api import expect

from accounts.models import User

ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
PASSWORD = "lantern harbour quietly 42"
SET_UP_PATH = "/account/two-factor/set-up/"
CODE_ERROR = "That code didn't work"


# --- helpers ----------------------------------------------------------------------------


def totp_code(secret, *, offset=0):
    """What an authenticator app shows for the secret typed from the set-up page."""
    totp = TOTP(base64.b32decode(secret.replace(" ", "")))
    totp.time = time.time() + offset
    return f"{totp.token():06d}"


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    # Autofocus may have scrolled the page; the sticky header would then be drawn
    # half-way down a full-page capture.
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    return path


def path_is(live_server_url, path):
    return re.compile(re.escape(live_server_url + path) + r"(\?.*)?$")


def sign_in_with_password(page, live_server_url, handle, password=PASSWORD, next_path=None):
    query = f"?{urlencode({'next': next_path})}" if next_path else ""
    page.goto(live_server_url + "/accounts/login/" + query)
    page.get_by_label("Login handle").fill(handle)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def enter_second_factor(page, live_server_url, code):
    expect(page).to_have_url(path_is(live_server_url, "/accounts/login/two-factor/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Continue").click()


def expect_account_home(page, live_server_url):
    expect(page).to_have_url(path_is(live_server_url, "/account/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")


def expect_signed_in(page, live_server_url):
    """Where signing in (or up) lands: the person's groups, or the way to find one."""
    expect(page).to_have_url(path_is(live_server_url, "/groups/mine/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("My groups")


def sign_out(page, live_server_url):
    """Through the menu's "Sign out", one click, as a person would."""
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    # The page's own socket may hear "signed out" and go to the login page before the
    # redirect lands on the home page: either way, nobody is signed in.
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in")
    ).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out")
    ).to_have_count(0)


class AccountSocketWatch:
    """What happened to the page's /ws/account/ handshakes, seen by Chromium itself.

    Daphne answers 101 only once the consumer has accepted; a refusal before accepting
    never gets 101. (Playwright has no "open" event for websockets, hence CDP.)
    """

    def __init__(self, context, page):
        self.page = page
        self.urls = {}
        self.accepted = []
        self.cdp = context.new_cdp_session(page)
        self.cdp.on("Network.webSocketCreated", self._created)
        self.cdp.on("Network.webSocketHandshakeResponseReceived", self._handshake)
        self.cdp.send("Network.enable")

    def _created(self, event):
        if event["url"].endswith("/ws/account/"):
            self.urls[event["requestId"]] = event["url"]

    def _handshake(self, event):
        if event["requestId"] in self.urls and event["response"]["status"] == 101:
            self.accepted.append(event["requestId"])

    def wait_until(self, condition, *, timeout=5.0, what="the account socket"):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.page.wait_for_timeout(50)

    def wait_for_accepted(self, count=1):
        self.wait_until(lambda: len(self.accepted) >= count, what="an accepted account socket")


def unlabelled_form_controls(page):
    return page.evaluate(
        """() => Array.from(document.querySelectorAll("input, select, textarea"))
            .filter((el) => el.type !== "hidden")
            .filter((el) => !(el.labels && el.labels.length))
            .map((el) => el.outerHTML)"""
    )


# --- journeys ---------------------------------------------------------------------------


def test_the_sign_up_page_has_labelled_fields_and_one_main_heading(page, live_server_url):
    page.goto(live_server_url + "/accounts/signup/")

    assert unlabelled_form_controls(page) == []
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("h1")).to_have_text("Create an account")
    # Only a handle and a password: nothing that identifies the person is asked for.
    names = page.locator("form input:not([type=hidden])").evaluate_all(
        "(inputs) => inputs.map((input) => input.name)"
    )
    assert sorted(names) == ["password1", "password2", "username"]
    expect(page.locator("input[type=email]")).to_have_count(0)


def test_a_member_signs_up_turns_on_two_factor_and_signs_in_with_codes(
    page, context, live_server_url
):
    handle = "willow-wren"

    # Sign up with nothing but a handle and a password.
    page.goto(live_server_url + "/accounts/signup/")
    screenshot(page, "signup.png")
    page.get_by_label("Login handle").fill(handle)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()

    expect_signed_in(page, live_server_url)
    expect(page.get_by_role("main")).to_contain_text("You are not in any group yet.")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Your account").click()
    expect_account_home(page, live_server_url)
    expect(page.get_by_text(handle, exact=True)).to_be_visible()
    expect(page.locator("h1")).to_have_count(1)
    user = User.objects.get(username=handle)
    assert user.recovery_email is None and user.phone is None and user.emergency_contact is None
    assert not EmailAddress.objects.filter(user=user).exists()
    screenshot(page, "account-home.png")

    # Turn on 2FA: read the key for manual entry and compute what the app would show.
    page.get_by_role("link", name="Two-factor authentication").click()
    page.get_by_role("link", name="Set it up").click()
    expect(page).to_have_url(path_is(live_server_url, SET_UP_PATH))
    expect(page.locator(".qr svg")).to_be_visible()
    expect(page.locator("h1")).to_have_count(1)
    assert unlabelled_form_controls(page) == []
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})*", secret), secret
    screenshot(page, "two-factor-set-up.png")
    page.get_by_label("Code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on two-factor authentication").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Your backup codes")
    codes = page.get_by_test_id("backup-codes").locator("li code").all_inner_texts()
    assert len(codes) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", code) for code in codes), codes
    assert len(set(codes)) == 10
    page.get_by_role("link", name=re.compile("continue")).click()
    expect_account_home(page, live_server_url)
    two_factor_item = page.get_by_role("listitem").filter(has_text="Two-factor authentication")
    expect(two_factor_item.locator("strong")).to_have_text("on")

    # Sign in with the password and a code from the app (the next step: the enrolment
    # code was spent, and each step's code is accepted only once).
    sign_out(page, live_server_url)
    sign_in_with_password(page, live_server_url, handle)
    enter_second_factor(page, live_server_url, totp_code(secret, offset=30))
    expect_signed_in(page, live_server_url)

    # Sign in with a backup code instead.
    sign_out(page, live_server_url)
    sign_in_with_password(page, live_server_url, handle)
    enter_second_factor(page, live_server_url, codes[0])
    expect_signed_in(page, live_server_url)

    # The same backup code a second time is refused, with a message saying so.
    sign_out(page, live_server_url)
    sign_in_with_password(page, live_server_url, handle)
    enter_second_factor(page, live_server_url, codes[0])
    expect(page).to_have_url(path_is(live_server_url, "/accounts/login/two-factor/"))
    expect(page.locator("#id_code_error")).to_contain_text(CODE_ERROR)
    expect(page.get_by_role("link", name="Your account")).to_have_count(0)

    # A fresh backup code still works (after the one-second back-off a failure earns).
    page.wait_for_timeout(1500)
    enter_second_factor(page, live_server_url, codes[1])
    expect_signed_in(page, live_server_url)


def test_an_admin_without_two_factor_is_sent_to_set_up_from_every_sensitive_page(
    page, live_server_url
):
    User.objects.create_user(username="harbour-keeper", password=PASSWORD, is_staff=True)

    sign_in_with_password(page, live_server_url, "harbour-keeper")
    expect(page).to_have_url(path_is(live_server_url, SET_UP_PATH))

    for path in ["/admin/", "/account/", "/account/sessions/", "/account/export/"]:
        page.goto(live_server_url + path)
        expect(page).to_have_url(path_is(live_server_url, SET_UP_PATH))
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Set up two-factor authentication"
        )
        expect(page.get_by_role("status")).to_contain_text(
            "Your role needs two-factor authentication"
        )


def test_an_admins_pages_open_the_account_socket_only_once_two_factor_is_on(
    page, context, live_server_url
):
    User.objects.create_user(username="harbour-keeper", password=PASSWORD, is_staff=True)
    sockets = AccountSocketWatch(context, page)

    # Before the second factor the socket would be refused (tests/accounts/
    # test_account_socket.py), so the pages open to the session do not try it: a refused
    # socket's script would retry behind the page all the while.
    sign_in_with_password(page, live_server_url, "harbour-keeper", next_path="/")
    expect(page).to_have_url(path_is(live_server_url, "/"))
    page.wait_for_load_state("networkidle")
    assert sockets.urls == {}
    page.goto(live_server_url + SET_UP_PATH)
    expect(page).to_have_url(path_is(live_server_url, SET_UP_PATH))
    page.wait_for_load_state("networkidle")
    assert sockets.urls == {}

    # Turning 2FA on verifies this session: the admin site opens, and so does the socket.
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    page.get_by_label("Code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your backup codes")
    response = page.goto(live_server_url + "/admin/")
    assert response.status == 200
    expect(page).to_have_url(path_is(live_server_url, "/admin/"))
    expect(page.get_by_text("Support groups administration").first).to_be_visible()
    sockets.wait_for_accepted()


def test_sign_out_everywhere_else_sends_the_other_browsers_open_page_to_sign_in(
    page, context, browser, live_server_url
):
    User.objects.create_user(username="cedar-moth", password=PASSWORD)

    # Browser B: signed in, resting on the account page with its socket open.
    other_context = browser.new_context(base_url=live_server_url)
    try:
        other_requests = []
        other_errors = []
        other_context.on("request", lambda request: other_requests.append(request.url))
        other_context.on("weberror", lambda error: other_errors.append(str(error.error)))
        other_page = other_context.new_page()
        other_sockets = AccountSocketWatch(other_context, other_page)
        sign_in_with_password(other_page, live_server_url, "cedar-moth")
        expect_signed_in(other_page, live_server_url)
        other_sockets.wait_for_accepted()

        # Browser A: signs in and ends every other session.
        sign_in_with_password(page, live_server_url, "cedar-moth")
        expect_signed_in(page, live_server_url)
        page.goto(live_server_url + "/account/sessions/")
        expect(page.get_by_role("row").filter(has_text="(this browser)")).to_have_count(1)
        expect(page.locator("tbody tr")).to_have_count(2)
        page.get_by_role("button", name="Sign out everywhere else").click()
        expect(page.get_by_role("status")).to_contain_text("You are signed out everywhere else.")
        expect(page.locator("tbody tr")).to_have_count(1)

        # B leaves the page by itself, told by its socket, within a few seconds.
        started = time.monotonic()
        expect(other_page).to_have_url(path_is(live_server_url, "/accounts/login/"), timeout=5000)
        assert time.monotonic() - started < 5
        expect(other_page.get_by_role("heading", level=1)).to_have_text("Sign in")
        # And B really is signed out; A is not.
        other_page.goto(live_server_url + "/account/")
        expect(other_page).to_have_url(
            re.compile(re.escape(live_server_url) + r"/accounts/login/\?next=")
        )
        page.goto(live_server_url + "/account/")
        expect_account_home(page, live_server_url)

        assert other_errors == []
        foreign = [url for url in other_requests if not url.startswith(live_server_url + "/")]
        assert foreign == []
    finally:
        other_context.close()
