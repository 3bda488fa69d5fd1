"""The suite really runs on the services production uses: PostgreSQL and Redis."""

import asyncio
import os
import secrets

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection


@pytest.mark.django_db
def test_it_runs_on_postgresql():
    assert connection.vendor == "postgresql"
    # pytest-django's throwaway test database, never the real one.
    assert connection.settings_dict["NAME"].startswith("test_")
    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), current_user")
        version, user = cursor.fetchone()
    assert version.startswith("PostgreSQL ")
    # The app connects as an ordinary role, not as a superuser.
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [user])
        assert cursor.fetchone() == (False,)


def test_it_round_trips_a_channel_layer_message_through_redis():
    layer = get_channel_layer()
    assert type(layer).__module__.startswith("channels_redis.")

    # A second, independent layer instance shares nothing in memory with the first,
    # so a message can only get from one to the other through Redis.
    other = channel_layers.make_backend("default")
    channel = f"harness.test.{secrets.token_hex(8)}"
    token = secrets.token_hex(8)

    async def round_trip():
        try:
            await layer.send(channel, {"type": "harness.ping", "token": token})
            return await asyncio.wait_for(other.receive(channel), timeout=5)
        finally:
            # Connections belong to this short-lived event loop; don't leave them open.
            await layer.close_pools()
            await other.close_pools()

    message = async_to_sync(round_trip)()
    assert message == {"type": "harness.ping", "token": token}


def test_it_caches_in_redis():
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    key = f"harness-{secrets.token_hex(8)}"
    cache.set(key, "value", 30)
    assert cache.get(key) == "value"

    # And the value is really in the Redis server, not in this process.
    location = settings.CACHES["default"]["LOCATION"]
    # LOCATION may list several servers (a list or a comma-separated string); the
    # first one is the primary, which holds every key written.
    location = location[0] if isinstance(location, list | tuple) else location.split(",")[0]
    client = redis.Redis.from_url(location)
    try:
        assert client.exists(cache.make_and_validate_key(key)) == 1
    finally:
        client.close()


# --- parallel runs -----------------------------------------------------------------------------


def test_it_runs_on_every_core_unless_the_caller_chose():
    from tests.harness import with_workers

    assert with_workers(["-q", "tests/audit"])[:4] == ["-n", "auto", "--dist", "loadgroup"]
    for chosen in (["-n", "0"], ["-n2"], ["--numprocesses=3"], ["--dist", "loadfile"]):
        assert with_workers(chosen) == chosen
    for one_process in (["--pdb"], ["-s"], ["-xs"], ["--capture=no"], ["--co"]):
        assert with_workers(one_process) == one_process
    assert with_workers(["-p", "no:xdist"]) == ["-p", "no:xdist"]
    # Values of options are not options: `-rs` reports skips, `-k s` selects by name.
    assert with_workers(["-rs", "-k", "s"])[0] == "-n"


def test_each_worker_has_its_own_redis_database():
    from tests.conftest import xdist_worker

    worker = xdist_worker()
    if worker is None:
        pytest.skip("not running under pytest-xdist")
    index = int(worker.removeprefix("gw")) + 1
    assert settings.REDIS_URL.endswith(f"/{index}")
    # The cache, the channel layer and the subprocesses (Daphne) all use it.
    assert settings.CACHES["default"]["LOCATION"] == settings.REDIS_URL
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] == (
        settings.REDIS_URL
    )
    assert os.environ["REDIS_URL"] == settings.REDIS_URL
    key = f"harness-{secrets.token_hex(8)}"
    caches["default"].set(key, "mine", 30)
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        assert client.connection_pool.connection_kwargs["db"] == index
        assert client.exists(caches["default"].make_and_validate_key(key)) == 1
    finally:
        client.close()
