"""Pages over HTTP against the Daphnes, their SQL query counts in-process, and logins.

Page timings interleave every page with ``/healthz`` round-robin on keep-alive
connections (alternating the two Daphnes), so a noisy moment on the box lands on the
baseline as much as on the pages. Query counts use ``CaptureQueriesContext`` around
``django.test.Client`` requests in this process, against the same live database.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.chat import percentile
from bench.data import HOST

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CSRF_COOKIE = re.compile(r"csrftoken=([^;]+)")


@dataclass
class Page:
    name: str
    path: str
    cookie: str | None = None  # session key
    expect: int = 200


class Browser:
    """One keep-alive connection per Daphne; requests alternate between them."""

    def __init__(self, daphnes: list):
        self.daphnes = daphnes
        self.connections = [http.client.HTTPConnection(HOST, d.port, timeout=30) for d in daphnes]
        self.turn = 0

    def get(self, page: Page) -> tuple[float, int, bytes]:
        n = self.turn % len(self.connections)
        self.turn += 1
        conn = self.connections[n]
        headers = {"Host": f"{HOST}:{self.daphnes[n].port}", "Accept": "text/html"}
        if page.cookie:
            headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={page.cookie}"
        started = time.perf_counter()
        try:
            conn.request("GET", page.path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (http.client.HTTPException, OSError):
            conn.close()  # reconnect once (e.g. the server closed an idle keep-alive)
            conn.request("GET", page.path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        return time.perf_counter() - started, response.status, body

    def close(self) -> None:
        for conn in self.connections:
            conn.close()


def time_pages(
    daphnes: list, pages: list[Page], *, rounds: int, warmup: int = 5, seconds: float = 60
) -> dict:
    """p50/p95 per page over ``rounds`` interleaved requests each (after warm-up), or as
    many rounds as fit in ``seconds``."""
    browser = Browser(daphnes)
    timings: dict[str, list[float]] = {p.name: [] for p in pages}
    deadline = time.monotonic() + seconds
    try:
        for n in range(warmup + rounds):
            if n > warmup + 20 and time.monotonic() > deadline:
                break
            for page in pages:
                took, status, body = browser.get(page)
                if status != page.expect:
                    raise RuntimeError(
                        f"GET {page.path} answered {status}, expected {page.expect}: {body[:300]!r}"
                    )
                if n >= warmup:
                    timings[page.name].append(took * 1000)
    finally:
        browser.close()
    return {
        name: {
            "requests": len(values),
            "p50_ms": round(percentile(values, 50), 2),
            "p95_ms": round(percentile(values, 95), 2),
        }
        for name, values in timings.items()
    }


def count_queries(client: Client, path: str) -> int:
    """SQL queries of one GET (after one warm-up GET, so per-process caches are full)."""
    first = client.get(path)
    if first.status_code != 200:
        raise RuntimeError(f"in-process GET {path} answered {first.status_code}")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"in-process GET {path} answered {response.status_code}")
    return len(queries.captured_queries)


# --- the login storm ------------------------------------------------------------------------


@dataclass
class LoginResult:
    ok: bool
    status: int
    seconds: float
    started_at: float


def real_login(daphne, username: str, password: str, client_ip: str) -> LoginResult:  # noqa: ANN001
    """GET the login form (CSRF cookie and token), then POST the handle and password, as a
    browser behind the production proxy would (X-Forwarded-For names the person)."""
    started_at = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, daphne.port, timeout=60)
    try:
        base = {"Host": f"{HOST}:{daphne.port}", "X-Forwarded-For": client_ip}
        conn.request("GET", "/accounts/login/", headers=base)
        response = conn.getresponse()
        page = response.read().decode("utf-8", "replace")
        token = CSRF_INPUT.search(page)
        cookie = CSRF_COOKIE.search(response.getheader("Set-Cookie") or "")
        if response.status != 200 or not token or not cookie:
            return LoginResult(False, response.status, time.perf_counter() - started_at, started_at)
        from urllib.parse import urlencode

        form = urlencode(
            {"csrfmiddlewaretoken": token.group(1), "login": username, "password": password}
        )
        conn.request(
            "POST",
            "/accounts/login/",
            body=form,
            headers={
                **base,
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={cookie.group(1)}",
                "Origin": daphne.origin,
            },
        )
        response = conn.getresponse()
        response.read()
        signed_in = response.status == 302 and "sessionid=" in (
            response.getheader("Set-Cookie") or ""
        )
        return LoginResult(signed_in, response.status, time.perf_counter() - started_at, started_at)
    finally:
        conn.close()


def login_storm(  # noqa: PLR0913
    daphnes: list,
    usernames: list[str],
    password: str,
    *,
    seconds: float,
    results: list,
    ip_prefix: str = "10.77",
    attempt=None,  # noqa: ANN001 - (daphne, username, password, ip) -> LoginResult
) -> threading.Thread:
    """Start ``len(usernames)`` logins spread evenly over ``seconds`` (each on its own
    thread, so slow ones overlap as real people's would); returns the driving thread.
    ``attempt`` replaces the real sign-in (bench.storm's other modes)."""
    attempt = attempt or real_login

    def drive() -> None:
        gap = seconds / len(usernames)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(usernames)) as pool:
            futures = []
            for n, username in enumerate(usernames):
                delay = started + n * gap - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                futures.append(
                    pool.submit(
                        attempt,
                        daphnes[n % len(daphnes)],
                        username,
                        password,
                        f"{ip_prefix}.{n // 250}.{n % 250 + 1}",
                    )
                )
            for future in futures:
                try:
                    results.append(future.result())
                except Exception as error:  # noqa: BLE001 - counted as a failed login
                    results.append(LoginResult(False, 0, 0.0, 0.0))
                    results[-1].error = repr(error)

    thread = threading.Thread(target=drive, name="login-storm", daemon=True)
    thread.start()
    return thread
