"""What a room keeps and shows: message bodies are never stored (or sent through Redis) in
plaintext; other members see a pseudonym, never a login handle or an account id; a message's
client id goes back to its author only."""

import json
import os

import pytest
import redis
from django.db import connection

from meetings.models import Message
from tests.meetings.conftest import Socket, cookie, dump_every_table, run

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]

SECRETS = [
    "I relapsed on Thursday after nine months clean",
    "My brother does not know I am here — please keep it that way",
    "Ünïcödé secret: 私は大丈夫じゃない",
]
MESSAGE_KEYS = {
    "type",
    "seq",
    "client_id",
    "author",
    "mine",
    "body",
    "hidden",
    "sent_at",
    "reported",
}
IDENTIFYING_KEYS = {
    "user",
    "user_id",
    "username",
    "handle",
    "login",
    "email",
    "author_id",
    "author_membership",
    "membership",
    "membership_id",
}


def redis_dump() -> str:
    """Every key and value in the test Redis (channel layer and cache), as text."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key)]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "zset":
            values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "hash":
            values = [v for pair in client.hgetall(key).items() for v in pair]
        else:
            values = []
        parts.append(key.decode(errors="replace"))
        parts.extend(v.decode(errors="replace") for v in values if v is not None)
    client.close()
    return "\n".join(parts)


def raw_message_bodies() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT body::text FROM meetings_message")
        return [body for (body,) in cursor.fetchall()]


async def talk(world):
    """River and Fern exchange the secrets; returns what Fern's socket received."""
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        for n, secret in enumerate(SECRETS[:2], start=1):
            await river.send_and_ack(secret, f"secret-{n:04d}")
        await fern.send_and_ack(SECRETS[2], "fern-secret-01")
        for _ in range(2):
            await fern.expect("message")
        await river.expect("message")
        await fern.send({"type": "resume", "after_seq": 0})
        for _ in range(3):
            await fern.expect("message")
        await fern.expect("resumed")
        in_redis = redis_dump()
        return fern.frames, river.frames, in_redis


async def test_no_message_body_is_stored_in_plaintext_in_any_table(world):
    _, _, in_redis = await talk(world)
    rows = await run(lambda: list(Message.objects.values_list("body", flat=True)))
    assert sorted(rows) == sorted(SECRETS)  # they are there, readable through the app

    dump = await run(dump_every_table)
    assert "meetings_message:" in dump
    for secret in SECRETS:
        assert secret not in dump
        assert secret.encode("utf-8").hex() not in dump
    raw_bodies = await run(raw_message_bodies)
    assert len(raw_bodies) == 3
    assert all(raw.startswith("gAAAA") for raw in raw_bodies), raw_bodies  # Fernet tokens

    # The channel layer carries them encrypted too (symmetric_encryption_keys).
    for secret in SECRETS:
        assert secret not in in_redis


async def test_other_members_see_a_pseudonym_never_an_identity(world):
    fern_frames, _, _ = await talk(world)
    river = world.river.user
    text = json.dumps(fern_frames, ensure_ascii=False)
    assert river.username not in text
    assert "river-login-handle" not in text

    def walk(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                assert key not in IDENTIFYING_KEYS, (key, value)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(fern_frames)
    messages = [f for f in fern_frames if f["type"] == "message"]
    assert len(messages) == 6
    for frame in messages:
        assert set(frame) == MESSAGE_KEYS
        assert frame["author"] in ("River", "Fern")
    presence = [f for f in fern_frames if f["type"] == "presence"]
    assert presence and all(set(f["present"]) <= {"River", "Fern"} for f in presence)


async def test_a_client_id_goes_back_to_its_author_only(world):
    fern_frames, river_frames, _ = await talk(world)
    for frame in fern_frames:
        if frame["type"] == "message":
            if frame["author"] == "Fern":
                assert frame["mine"] is True and frame["client_id"] == "fern-secret-01"
            else:
                assert frame["mine"] is False and frame["client_id"] is None
    for frame in river_frames:
        if frame["type"] == "message" and frame["author"] == "Fern":
            assert frame["client_id"] is None
    assert all(
        "secret-" not in json.dumps(f)
        for f in fern_frames
        if f["type"] == "message" and f["author"] == "River"
    )


async def test_an_error_about_someone_elses_client_id_says_nothing_about_them(world):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        await river.send_and_ack("Mine.", "taken-id-0001")
        await fern.expect("message")
        await fern.post("Also mine?", "taken-id-0001")
        error = await fern.expect_error("duplicate_client_id")
        assert "River" not in json.dumps(error)
        assert "river-login-handle" not in json.dumps(error)
        assert "Mine." not in json.dumps(error)
