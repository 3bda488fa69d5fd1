"""Fixtures shared by every test module.

The suite runs against real PostgreSQL and Redis started by tests/harness.py; the lines
added to pytest's header and summary say which, so a run's output shows what it tested.

Under pytest-xdist (the harness starts one worker per core) every worker gets its own
test database (pytest-django adds the ``_gw0`` suffix) and its own Redis database on the
same server (below), so one worker's cache flush or channel-layer traffic never reaches
another; Daphne subprocesses inherit both through the environment.
"""

import copy
import functools
import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.db import connections


def xdist_worker() -> str | None:
    """This process's pytest-xdist worker id ("gw0", "gw1"...), or None when not a worker."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def redis_url_with_database(url: str, index: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":  # unix:///path/redis.sock?db=N
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"] + [("db", str(index))]
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(path=f"/{index}"))


def give_this_worker_its_own_redis_database():
    """Point the cache, the channel layer, REDIS_URL and subprocesses at Redis database
    N + 1 for worker gwN (the harness's plain runs use database 0).

    Settings were read before any conftest loads, so they are changed here, before the
    first test touches the cache or the channel layer, and the handlers told as
    ``override_settings`` would tell them.
    """
    worker = xdist_worker()
    if not worker or not settings.REDIS_URL:
        return
    url = redis_url_with_database(settings.REDIS_URL, int(worker.removeprefix("gw")) + 1)
    os.environ["REDIS_URL"] = url  # Daphne subprocesses and tests that read it
    settings.REDIS_URL = url
    cache_settings = copy.deepcopy(settings.CACHES)
    for cache in cache_settings.values():
        if "redis" in cache["BACKEND"].lower():
            cache["LOCATION"] = url
    layer_settings = copy.deepcopy(settings.CHANNEL_LAYERS)
    for layer in layer_settings.values():
        for host in layer.get("CONFIG", {}).get("hosts", []):
            host["address"] = url
    settings.CACHES = cache_settings
    settings.CHANNEL_LAYERS = layer_settings
    for name, value in (("CACHES", cache_settings), ("CHANNEL_LAYERS", layer_settings)):
        setting_changed.send(sender=type(settings), setting=name, value=value, enter=True)


@functools.cache
def describe_services():
    # Computed once, at start-up: pytest-django later renames NAME to the test
    # database (and back, unless teardown fails), so predict the test name as Django does.
    db = settings.DATABASES["default"]
    vendor = connections["default"].vendor
    if vendor == "postgresql":
        test_name = (db.get("TEST") or {}).get("NAME") or f"test_{db['NAME']}"
        if xdist_worker():
            test_name = f"{test_name}_{xdist_worker()}"
        elif _xdist_workers:
            test_name = f"{test_name}_gw0…gw{_xdist_workers - 1} (one per worker)"
        database = f"{vendor} {test_name} on {db['HOST']}:{db['PORT']}"
    else:
        # Plain `pytest` without DATABASE_URL falls back to the embedded default.
        database = f"{vendor} (not PostgreSQL: run `make test` for the real services)"
    channel_layer = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    cache = settings.CACHES["default"]["BACKEND"]
    redis = f" (Redis {urlsplit(settings.REDIS_URL).path or '/0'})" if settings.REDIS_URL else ""
    if _xdist_workers and settings.REDIS_URL:
        redis = " (a Redis database per worker)"
    return f"database: {database}; channel layer: {channel_layer}; cache: {cache}{redis}"


# How many workers the controlling process of `pytest -n N` (which runs no tests itself,
# only reports) has started; 0 in a worker or a run without xdist.
_xdist_workers = 0


def pytest_configure(config):
    global _xdist_workers
    workers = getattr(config.option, "numprocesses", None)
    if isinstance(workers, int) and not xdist_worker() and config.option.dist != "no":
        _xdist_workers = workers
    give_this_worker_its_own_redis_database()
    describe_services()


# Each worker has its own test database, Daphne and Chromium (for tests/e2e), and they all
# share one PostgreSQL and one Redis: past a few workers a bigger machine gains little.
MAX_WORKERS = 4


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook; plain pytest runs without it
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per usable core, at most MAX_WORKERS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, MAX_WORKERS))


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
