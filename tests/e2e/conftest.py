"""Browser tests: the real app under Daphne, driven by headless Chromium.

The app runs as production runs it (Daphne through
`python -m supportgroups.serve supportgroups.asgi:application`, DEBUG off, collected
static files) in a subprocess, so it can only see data committed
to the test database: every test here therefore uses `transactional_db`.
"""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import expect

# Two workers each drive up to three Chromiums on a two-core box; an end-to-end encrypted
# room's key set-up (three devices registering and sharing) once took longer than the
# default 5 s there. A longer wait changes nothing for a passing test.
expect.set_options(timeout=10_000)

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30  # seconds

# Playwright's own browser downloads are not used: the system Chromium is.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # we may run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Chromium must not phone home on its own: any foreign request fails the test.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    # This hook sees the whole session's items, not only ours.
    ours = [item for item in items if E2E_DIR in item.path.parents]
    for item in ours:
        item.add_marker(pytest.mark.e2e)
    # Run browser tests last. While Playwright's sync API is alive it leaves an asyncio
    # loop marked as running in the main thread, which breaks async_to_sync and
    # pytest-asyncio tests that would otherwise run after tests/e2e (it sorts early).
    others = [item for item in items if E2E_DIR not in item.path.parents]
    items[:] = others + ours


@pytest.fixture(autouse=True)
def _e2e_transactional_db(transactional_db):
    # Committed data only: the app runs in another process with its own connections.
    yield
    # The live server may still be finishing what the browser's last moments started (a
    # closing socket records who left the room). Emptying the tables under a transaction
    # of its can deadlock, so wait until its connections are quiet first.
    wait_until_other_connections_are_idle()


def wait_until_other_connections_are_idle(timeout=10.0, quiet_polls=3):
    from django.db import connection

    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < quiet_polls and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
            busy = cursor.fetchone()[0]
        quiet = quiet + 1 if busy == 0 else 0
        time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def database_url(db):
    """A DATABASE_URL for one of Django's DATABASES entries."""
    user = quote(db["USER"], safe="")
    password = quote(db["PASSWORD"], safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{credentials}{db['HOST']}:{db['PORT']}/{quote(db['NAME'], safe='')}"


def tail(path, lines=30):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


# Talk to the live server directly, even if the environment sets an HTTP proxy.
_no_proxy_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="session")
def live_server_url(django_db_setup):
    """Base URL of the app served by Daphne against pytest-django's test database."""
    from django.conf import settings
    from django.db import connections

    env = os.environ.copy()
    # After django_db_setup, NAME is the test database (test_supportgroups).
    env["DATABASE_URL"] = database_url(connections["default"].settings_dict)
    env.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
    # The live server must behave like production, where async-unsafe ORM calls raise.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)

    port = free_port()
    url = f"http://{HOST}:{port}"
    log_dir = tempfile.mkdtemp(prefix="daphne-")
    log_path = Path(log_dir) / "daphne.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "supportgroups.serve",
                "-b",
                HOST,
                "-p",
                str(port),
                "supportgroups.asgi:application",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last_error = None
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"daphne exited with code {proc.returncode} while starting:\n{tail(log_path)}",
                    pytrace=False,
                )
            try:
                with _no_proxy_opener.open(f"{url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except OSError as exc:
                last_error = str(exc)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"daphne on {url} did not answer GET /healthz with 200 within "
                    f"{STARTUP_TIMEOUT}s (last: {last_error}):\n{tail(log_path)}",
                    pytrace=False,
                )
            time.sleep(0.1)
        yield url
    finally:
        # Stopped before django_db_setup's teardown, which cannot drop the test
        # database while Daphne still holds connections to it.
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):
            log_path.unlink()
            os.rmdir(log_dir)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API marks an asyncio loop as running in this thread, so Django
    # would refuse ORM calls from browser tests (and their database fixtures) as
    # "async". Allow them only while the browser is alive, i.e. during tests/e2e.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_playwright().start()
        try:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            # Every context a test opens, through the fixtures or by itself, is held to axe.
            new_context = browser.new_context
            # (Not a page without JavaScript: axe runs in the page, and evaluating there hangs.)
            browser.new_context = lambda *a, **k: (
                _checked_context(new_context(*a, **k))
                if k.get("java_script_enabled", True)
                else new_context(*a, **k)
            )
            yield browser
            browser.close()
        finally:
            playwright.stop()


@pytest.fixture
def context(browser, live_server_url):
    context = browser.new_context(base_url=live_server_url)
    yield context
    context.close()


@pytest.fixture
def requested_urls():
    """Every URL the test's pages requested (including websockets), in order."""
    return []


@pytest.fixture
def _allowed_foreign_origins():
    return set()


def origin_of(url):
    """scheme://host:port of a network URL; None for data:, blob:, about: and the like."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https"):
        return None
    return f"{scheme}://{parts.netloc}".lower()


@pytest.fixture
def allow_foreign_origin(_allowed_foreign_origins):
    """allow_foreign_origin("https://neutral.example"): let the page request that origin.

    For tests that deliberately point the page elsewhere, e.g. with page.route().
    """

    def allow(origin):
        _allowed_foreign_origins.add(origin_of(origin))

    return allow


# axe-core, vendored (static/vendor/axe, with its licence): the accessibility rules every
# page the browser tests visit is held to. Pages never load it; the tests put it into the
# page through the DevTools protocol (which the page's CSP does not govern).
AXE_SOURCE_PATH = REPO_ROOT / "static" / "vendor" / "axe" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE_FAILING_IMPACTS = ("critical", "serious")
_AXE_RUN = """async ([tags, impacts]) => {
  const result = await window.axe.run(document, {
    runOnly: { type: "tag", values: tags }, resultTypes: ["violations"],
  });
  return result.violations
    .filter((v) => impacts.includes(v.impact))
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 3)
      .map((n) => n.target.join(" ")).join(", ")}`);
}"""


# What the checks of the running test found (reset for each test by _axe_gate).
_axe_problems: list[str] = []
# The app's origin: only its pages are checked (not the neutral page of "Leave quickly").
_app_origin: list[str] = []


def axe_violations(page):
    """The critical and serious axe violations of what the page shows now."""
    if page.is_closed() or origin_of(page.url) not in _app_origin:
        return []
    try:
        if page.evaluate("() => document.contentType") != "text/html":
            return []  # /healthz, a download: not a page anyone reads
        if not page.evaluate("() => typeof window.axe === 'object'"):
            # ";true": the completion value must not be a function (Playwright would call it).
            page.evaluate(AXE_SOURCE_PATH.read_text() + "\n;true")
        found = page.evaluate(_AXE_RUN, [AXE_TAGS, list(AXE_FAILING_IMPACTS)])
    except Exception as error:
        # The page navigated (or closed) while axe ran: the next check sees the new page.
        if any(word in str(error).lower() for word in ("destroyed", "navigat", "closed")):
            return []
        raise
    return [f"{urlsplit(page.url).path}: {line}" for line in found]


def axe_check(page):
    """Hold what the page shows now to zero critical or serious axe violations (reported
    at the end of the test). Every page.goto does this by itself before it leaves a page
    (what clicks and forms led to) and after it lands, and closing a context checks the
    pages it still has; call it where a test wants a state checked in between."""
    _axe_problems.extend(axe_violations(page))


def _checking_goto(page):
    goto = page.goto

    def goto_and_check(url, *args, **kwargs):
        axe_check(page)
        response = goto(url, *args, **kwargs)
        axe_check(page)
        return response

    page.goto = goto_and_check


def _checked_context(context):
    """Every page of the context checks on goto, and on close what it shows last."""
    context.on("page", _checking_goto)
    close = context.close

    def check_then_close(*args, **kwargs):
        for opened in context.pages:
            axe_check(opened)
        return close(*args, **kwargs)

    context.close = check_then_close
    return context


@pytest.fixture(autouse=True)
def _axe_gate(live_server_url):
    """Fails a browser test whose pages showed critical or serious axe violations."""
    _app_origin[:] = [origin_of(live_server_url)]
    _axe_problems.clear()
    yield
    if _axe_problems:
        found = "\n".join(dict.fromkeys(_axe_problems))  # each once, in the order seen
        _axe_problems.clear()
        pytest.fail(f"accessibility (axe, WCAG 2.2 AA) violations:\n{found}", pytrace=False)


@pytest.fixture
def page(context, live_server_url, requested_urls, _allowed_foreign_origins):
    """A page that fails the test if it talks to any origin but the app's own, throws
    an uncaught error, violates the Content-Security-Policy or shows a critical or
    serious axe (WCAG 2.2 AA) violation."""
    problems = []

    def on_console(message):
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(f"CSP violation: {message.text}")

    # Context-wide listeners also catch popups, including their first request.
    context.on("request", lambda request: requested_urls.append(request.url))
    context.on("weberror", lambda error: problems.append(f"uncaught error: {error.error}"))
    context.on("console", on_console)
    # Websockets are only reported per page; "page" fires for new_page() and popups.
    context.on(
        "page",
        lambda page: page.on("websocket", lambda ws: requested_urls.append(ws.url)),
    )
    page = context.new_page()
    yield page

    allowed = {origin_of(live_server_url)} | _allowed_foreign_origins
    for url in requested_urls:
        origin = origin_of(url)
        if origin is not None and origin not in allowed:
            problems.append(f"request to another origin: {url}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
