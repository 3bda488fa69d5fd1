"""Every page carries the security headers DESIGN.md promises, signed in or not.

The headers are checked on real responses from the whole middleware stack, with the
settings the harness runs (DEBUG off, as in production).
"""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django_otp.oath import TOTP

from accounts.models import TOTPDevice, User
from tests.factories import make_user

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
NONCE_SOURCE = re.compile(r"'nonce-([A-Za-z0-9+/=_-]+)'")


class Tags(HTMLParser):
    """Every start tag of a page, as (tag, {attribute: value})."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def all(self, name):
        return [attrs for tag, attrs in self.tags if tag == name]


def csp_directives(response):
    header = response.headers["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def csp_nonce(response):
    nonces = [
        match.group(1)
        for source in csp_directives(response)["script-src"]
        if (match := NONCE_SOURCE.fullmatch(source))
    ]
    assert len(nonces) == 1, response.headers["Content-Security-Policy"]
    return nonces[0]


def assert_security_headers(response):
    directives = csp_directives(response)
    assert directives["default-src"] == ["'self'"]
    assert "'self'" in directives["script-src"]
    policy = response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert "*" not in policy.split()
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]

    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    permissions = {}
    for item in response.headers["Permissions-Policy"].split(","):
        feature, _, allowlist = item.strip().partition("=")
        permissions[feature] = allowlist
    assert permissions["camera"] == "()"
    assert permissions["microphone"] == "()"
    assert permissions["geolocation"] == "()"

    cache_control = [part.strip() for part in response.headers["Cache-Control"].split(",")]
    assert "no-store" in cache_control
    assert "private" in cache_control
    assert "public" not in cache_control


def assert_scripts_carry_the_nonce(response):
    nonce = csp_nonce(response)
    scripts = Tags(response.content.decode()).all("script")
    assert scripts, "expected the page's <script> tags"
    for script in scripts:
        assert script.get("nonce") == nonce, script


PASSWORD = "a long passphrase for tests 42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # These tests are about headers, not hashing; Argon2 at full cost only slows them.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def member(db):
    return make_user("quiet-heron", password=PASSWORD)


@pytest.fixture
def staff(db):
    return User.objects.create_user(
        username="site-admin", password=PASSWORD, is_staff=True, is_superuser=True
    )


def sign_in(client, user):
    """The real sign-in form; returns its response (not followed)."""
    response = client.post("/accounts/login/", {"login": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()
    return response


def sign_in_with_two_factor(client, user):
    """Admins must set up 2FA before any other page: sign in and walk the set-up page."""
    sign_in(client, user)
    assert client.get("/account/two-factor/set-up/").status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    code = TOTP(bytes.fromhex(device.key), step=TOTPDevice.STEP, digits=TOTPDevice.DIGITS)
    response = client.post("/account/two-factor/set-up/", {"code": f"{code.token():06d}"})
    assert response.status_code == 200, response.content.decode()
    assert TOTPDevice.objects.get(pk=device.pk).confirmed


# --- headers --------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_sends_the_security_headers_on_an_anonymous_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert_security_headers(response)
    assert_scripts_carry_the_nonce(response)


def test_it_sends_the_security_headers_on_an_authenticated_page(client, member):
    client.force_login(member)
    response = client.get("/")
    assert response.status_code == 200
    assert response.wsgi_request.user == member
    assert_security_headers(response)
    assert_scripts_carry_the_nonce(response)


def test_it_sends_the_security_headers_on_the_privacy_centre(client, member):
    client.force_login(member)
    response = client.get("/account/")
    assert response.status_code == 200
    assert response.wsgi_request.user == member
    assert_security_headers(response)
    assert_scripts_carry_the_nonce(response)


def test_it_sends_the_security_headers_on_the_admin(client, staff):
    sign_in_with_two_factor(client, staff)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert response.wsgi_request.user == staff
    assert_security_headers(response)


@pytest.mark.django_db
def test_it_sends_the_security_headers_on_a_not_found_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert_security_headers(response)
    assert_scripts_carry_the_nonce(response)


@pytest.mark.django_db
def test_it_sends_the_security_headers_on_the_health_check(client):
    response = client.get("/healthz")
    assert_security_headers(response)


@pytest.mark.django_db
def test_it_uses_a_fresh_nonce_for_every_response(client):
    first = csp_nonce(client.get("/"))
    second = csp_nonce(client.get("/"))
    assert first != second
    assert len(first) >= 16


# --- HSTS and HTTPS ----------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(SECURE_HSTS_SECONDS=31536000)
def test_it_sends_hsts_over_https(client):
    response = client.get("/", secure=True)
    assert response.status_code == 200
    hsts = [part.strip() for part in response.headers["Strict-Transport-Security"].split(";")]
    assert "max-age=31536000" in hsts


@pytest.mark.django_db
@override_settings(SECURE_HSTS_SECONDS=31536000)
def test_it_sends_no_hsts_over_plain_http(client):
    # Browsers ignore it there; sending it would only mislead a reader of the headers.
    response = client.get("/")
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True)
def test_it_redirects_plain_http_to_https_except_the_health_check(client):
    response = client.get("/?q=1")
    assert response.status_code == 301
    assert response.headers["Location"] == "https://testserver/?q=1"

    # Load balancers and container health checks probe over plain HTTP.
    assert client.get("/healthz").status_code == 200
    assert client.get("/", secure=True).status_code == 200


# --- cookies -----------------------------------------------------------------------------


def test_it_sets_the_session_cookie_httponly_and_samesite(client, member):
    login_page = client.get("/accounts/login/")
    assert login_page.status_code == 200
    csrf_cookie = login_page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf_cookie["httponly"] is True
    assert csrf_cookie["samesite"] == "Strict"
    assert csrf_cookie["path"] == "/"

    response = sign_in(client, member)
    session_cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session_cookie.value
    assert session_cookie["httponly"] is True
    assert session_cookie["samesite"] == "Lax"
    assert session_cookie["path"] == "/"
    assert session_cookie["domain"] == ""  # host-only
    # The harness serves plain HTTP (SECURE_COOKIES=false); production's flag is checked
    # in test_settings.py, where SECURE_COOKIES defaults to on.
    assert bool(session_cookie["secure"]) is settings.SESSION_COOKIE_SECURE
    assert_security_headers(response)


# --- what the HTML may contain -------------------------------------------------------------


def rendered_pages(client, member):
    anonymous = client.get("/")
    not_found = client.get("/no-such-page/")
    login = client.get("/accounts/login/")
    client.force_login(member)
    signed_in = client.get("/")
    privacy_centre = client.get("/account/")
    pages = {
        "anonymous": anonymous,
        "not found": not_found,
        "login": login,
        "signed in": signed_in,
        "privacy centre": privacy_centre,
    }
    for name, response in pages.items():
        assert response.status_code in (200, 404), name
    return pages


def test_it_renders_no_inline_script_or_style(client, member):
    for name, response in rendered_pages(client, member).items():
        tags = Tags(response.content.decode())
        for script in tags.all("script"):
            assert script.get("src"), f"{name}: inline <script> {script}"
        assert not tags.all("style"), f"{name}: <style> element"
        for tag, attrs in tags.tags:
            assert "style" not in attrs, f"{name}: style attribute on <{tag}>"
            handlers = [attr for attr in attrs if attr.startswith("on")]
            assert not handlers, f"{name}: event handler attribute on <{tag}>: {handlers}"
            for attr in ("href", "src", "action", "formaction"):
                value = (attrs.get(attr) or "").strip().lower()
                assert not value.startswith("javascript:"), f"{name}: {attr}={value}"


def test_it_links_to_no_other_origin_but_the_quick_exit_site(client, member):
    for name, response in rendered_pages(client, member).items():
        html = response.content.decode()
        # (A CSP nonce is random base64 and may itself contain "//".)
        foreign = re.findall(r"(?:https?:)?//[^\s\"'<>]+", re.sub(r'nonce="[^"]*"', "", html))
        assert foreign == [settings.QUICK_EXIT_URL], f"{name}: {foreign}"
        metas = [m for m in Tags(html).all("meta") if m.get("name") == "quick-exit-url"]
        assert metas == [{"name": "quick-exit-url", "content": settings.QUICK_EXIT_URL}]


def test_it_shows_leave_quickly_on_every_page(client, member):
    for name, response in rendered_pages(client, member).items():
        tags = Tags(response.content.decode())
        links = [a for a in tags.all("a") if "data-quick-exit" in a]
        assert len(links) == 1, name
        assert links[0]["href"] == "/leave/"
        assert "Leave quickly" in response.content.decode()


def test_it_ships_static_assets_that_load_nothing_from_elsewhere():
    assets = [
        path
        for path in (REPO_ROOT / "static").rglob("*")
        if path.is_file()
        and path.suffix in {".css", ".js", ".mjs", ".svg", ".html"}
        # axe-core is never loaded by a page: the browser tests put it in (tests/e2e).
        and "vendor/axe" not in path.as_posix()
    ]
    assert any(path.suffix == ".css" for path in assets)
    for path in assets:
        text = path.read_text()
        if path.suffix == ".svg":
            # The SVG namespace is a name, not something fetched.
            text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"https?://|url\(\s*['\"]?//|@import", text), path
