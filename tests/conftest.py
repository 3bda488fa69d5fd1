"""Fixtures shared by every test module.

The suite runs against real PostgreSQL and Redis started by tests/harness.py; the lines
added to pytest's header and summary say which, so a run's output shows what it tested.
"""

import functools

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connections


@functools.cache
def describe_services():
    # Computed once, at start-up: pytest-django later renames NAME to the test
    # database (and back, unless teardown fails), so predict the test name as Django does.
    db = settings.DATABASES["default"]
    vendor = connections["default"].vendor
    if vendor == "postgresql":
        test_name = (db.get("TEST") or {}).get("NAME") or f"test_{db['NAME']}"
        database = f"{vendor} {test_name} on {db['HOST']}:{db['PORT']}"
    else:
        # Plain `pytest` without DATABASE_URL falls back to the embedded default.
        database = f"{vendor} (not PostgreSQL: run `make test` for the real services)"
    channel_layer = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    cache = settings.CACHES["default"]["BACKEND"]
    return f"database: {database}; channel layer: {channel_layer}; cache: {cache}"


def pytest_configure(config):
    describe_services()


def pytest_report_header(config):
    return describe_services()


def pytest_terminal_summary(terminalreporter):
    # Repeated at the end: the header scrolls away, and -q or --no-header hide it.
    terminalreporter.write_line(f"ran against {describe_services()}")


@pytest.fixture(autouse=True)
def _clear_caches():
    # The cache lives in Redis and outlives a test (unlike the database, which is rolled
    # back), so rate-limit counters and cached pages must not leak into the next test.
    for alias in settings.CACHES:
        caches[alias].clear()
