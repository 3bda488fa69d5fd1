"""Leave quickly: one click (or Escape twice) swaps the app for a neutral site, ends the
session on the server, and Back does not bring the app back.

The neutral site (QUICK_EXIT_URL) is faked at the browser's edge with a route, so
nothing leaves the machine. The live server reads QUICK_EXIT_URL from the environment
it was started with, so the tests take it from the page's own <meta>.
"""

import time
from importlib import import_module
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from accounts.models import User
from audit.events import Action
from audit.models import Event

NEUTRAL_PAGE = (
    "<!doctype html><html lang='en'><head><title>Weather</title></head>"
    "<body><h1>Weather</h1><p>Sunny spells, light wind.</p></body></html>"
)

# Runs in every document before its own scripts. Once the first frame is drawn, it
# reports whether this site's chrome ("Leave quickly") was actually on screen, so the
# test can tell "Back showed the app, then went away" from "Back never showed it".
REPORT_PAINTS = """
(() => {
  const report = () => requestAnimationFrame(() => requestAnimationFrame(() => {
    const link = document.querySelector("[data-quick-exit]");
    const shown = getComputedStyle(document.documentElement).display !== "none";
    window.sgReportPaint(location.href, Boolean(link) && shown);
  }));
  document.addEventListener("DOMContentLoaded", report);
  window.addEventListener("pageshow", (event) => { if (event.persisted) report(); });
})();
"""


@pytest.fixture
def java_script_enabled():
    return True


@pytest.fixture
def context(browser, live_server_url, java_script_enabled):
    # As tests/e2e/conftest.py's, plus a switch for the no-JavaScript journey.
    context = browser.new_context(base_url=live_server_url, java_script_enabled=java_script_enabled)
    yield context
    context.close()


def origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def wait_for(condition, *, timeout=10.0, message="condition", page=None):
    """Poll; with a page, wait through Playwright so the page's callbacks are delivered."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}", pytrace=False)
        if page is None:
            time.sleep(0.05)
        else:
            page.wait_for_timeout(50)


def app_drawn(paints, live_server_url):
    return [url for url, visible in paints if url.startswith(live_server_url) and visible]


def signed_in_browser(context, live_server_url, username):
    """A user whose session cookie the browser holds, as after a real sign-in."""
    user = User.objects.create_user(username=username)
    client = Client()
    client.force_login(user)
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session_key,
                "url": live_server_url,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    return user, session_key


def open_two_pages(page, live_server_url, allow_foreign_origin):
    """Visit two pages of the app and fake the neutral site; return its URL."""
    page.goto(live_server_url + "/")
    neutral_url = page.locator('meta[name="quick-exit-url"]').get_attribute("content")
    assert neutral_url == settings.QUICK_EXIT_URL
    assert origin(neutral_url) != origin(live_server_url)

    allow_foreign_origin(origin(neutral_url))
    page.context.route(
        origin(neutral_url) + "/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=NEUTRAL_PAGE),
    )

    response = page.goto(live_server_url + "/?again")
    assert response.status == 200
    expect(page.get_by_role("link", name="Leave quickly")).to_be_visible()
    return neutral_url


def assert_left_for_good(page, live_server_url, neutral_url, user, session_key, paints):
    expect(page).to_have_url(neutral_url)
    expect(page.get_by_role("heading", name="Weather")).to_be_visible()

    # The sign-out request outlives the page it came from (fetch keepalive).
    wait_for(
        lambda: not session_store()().exists(session_key),
        message="the session to be deleted on the server",
    )
    wait_for(
        lambda: Event.objects.filter(
            action=Action.QUICK_EXIT, actor_id=user.pk, subject_id=user.pk
        ).exists(),
        message="the quick exit to be audited",
    )

    # Back lands on the neutral site again, and no frame of the app is drawn on the way.
    paints.clear()
    page.go_back()
    expect(page).to_have_url(neutral_url)
    expect(page.get_by_role("heading", name="Weather")).to_be_visible()
    expect(page.get_by_text("Leave quickly")).not_to_be_visible()
    page.wait_for_timeout(300)  # let a late report of a drawn frame arrive
    assert app_drawn(paints, live_server_url) == [], "the app was drawn after leaving"

    # Going back once more still never shows the app.
    page.go_back()
    page.wait_for_load_state()
    expect(page.get_by_text("Leave quickly")).not_to_be_visible()
    page.wait_for_timeout(300)
    assert app_drawn(paints, live_server_url) == [], "the app was drawn after leaving"


@pytest.fixture
def paints(page):
    """(url, app chrome visible) for every first frame any document of the page drew."""
    drawn = []
    page.expose_function("sgReportPaint", lambda url, visible: drawn.append((url, visible)))
    page.add_init_script(REPORT_PAINTS)
    return drawn


def test_it_leaves_quickly_with_one_click(
    page, context, live_server_url, allow_foreign_origin, requested_urls, paints
):
    user, session_key = signed_in_browser(context, live_server_url, "quiet-heron")
    neutral_url = open_two_pages(page, live_server_url, allow_foreign_origin)
    assert session_store()().exists(session_key)
    # The paint reports work: the app's own pages were seen drawn before leaving.
    wait_for(
        lambda: app_drawn(paints, live_server_url),
        page=page,
        message="a report that the app was drawn",
    )

    page.get_by_role("link", name="Leave quickly").click()

    assert_left_for_good(page, live_server_url, neutral_url, user, session_key, paints)
    assert live_server_url + "/leave/" in requested_urls

    # A fresh visit (typing the address) is not trapped: the app opens, signed out.
    page.goto(live_server_url + "/")
    expect(page.get_by_role("link", name="Leave quickly")).to_be_visible()
    expect(page.get_by_text("If you are not safe right now")).to_be_visible()


def test_it_leaves_quickly_when_escape_is_pressed_twice(
    page, context, live_server_url, allow_foreign_origin, paints
):
    user, session_key = signed_in_browser(context, live_server_url, "calm-otter")
    neutral_url = open_two_pages(page, live_server_url, allow_foreign_origin)

    page.keyboard.press("Escape")
    # One press alone does nothing: Escape also closes menus and dialogs.
    page.wait_for_timeout(100)
    assert page.url == live_server_url + "/?again"
    page.keyboard.press("Escape")

    assert_left_for_good(page, live_server_url, neutral_url, user, session_key, paints)


@pytest.mark.parametrize("java_script_enabled", [False])
def test_it_leaves_quickly_without_javascript(page, context, live_server_url, allow_foreign_origin):
    user, session_key = signed_in_browser(context, live_server_url, "still-lake")
    neutral_url = open_two_pages(page, live_server_url, allow_foreign_origin)

    page.get_by_role("link", name="Leave quickly").click()

    expect(page).to_have_url(neutral_url)
    expect(page.get_by_role("heading", name="Weather")).to_be_visible()
    # Without JavaScript the link itself signs out, before the redirect is answered.
    assert not session_store()().exists(session_key)
    assert Event.objects.filter(
        action=Action.QUICK_EXIT, actor_id=user.pk, subject_id=user.pk
    ).exists()
    assert settings.SESSION_COOKIE_NAME not in {cookie["name"] for cookie in context.cookies()}
