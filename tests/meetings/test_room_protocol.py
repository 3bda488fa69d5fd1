"""The room protocol (meetings/PROTOCOL.md): resume, idempotent sends, and every bad input
answered with its stable error code while the socket stays usable."""

import asyncio
import json
import time

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from meetings.models import Meeting, Message, Presence
from meetings.selectors import REPLAY_LIMIT
from tests.meetings.conftest import Socket, cookie, run

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]


@pytest.fixture
def no_rate_limit(settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 10_000


def stored(meeting):
    return list(Message.objects.filter(meeting=meeting).order_by("seq"))


async def assert_still_usable(socket, client_id="after-error-01"):
    """After an error the same socket still answers and still posts."""
    await socket.still_usable()
    ack = await socket.send_and_ack("Still here.", client_id)
    assert ack["duplicate"] is False


# --- resume -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_rate_limit")
async def test_resume_replays_exactly_the_missed_messages_in_order(world):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        for n in range(1, 9):
            poster = river if n % 3 else fern
            await poster.send_and_ack(f"message number {n}", f"client-id-{n:04d}")

    # Fern reloads the page having rendered up to seq 3.
    async with Socket(world.path, await cookie(world.fern)) as fern:
        assert fern.hello["last_seq"] == 8
        await fern.send({"type": "resume", "after_seq": 3})
        replayed = [await fern.expect("message") for _ in range(5)]
        resumed = await fern.expect("resumed")
        await fern.expect_quiet()

    assert [m["seq"] for m in replayed] == [4, 5, 6, 7, 8]
    assert [m["body"] for m in replayed] == [f"message number {n}" for n in range(4, 9)]
    assert [m["author"] for m in replayed] == ["River", "River", "Fern", "River", "River"]
    assert [m["mine"] for m in replayed] == [False, False, True, False, False]
    # The client id goes back to its author only, on replay too.
    assert [m["client_id"] for m in replayed] == [None, None, "client-id-0006", None, None]
    assert resumed == {"type": "resumed", "after_seq": 3, "last_seq": 8, "more": False}


async def test_resume_without_after_seq_replays_everything(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send_and_ack("one", "client-id-0001")
        await river.send_and_ack("two", "client-id-0002")
        await river.send({"type": "resume"})
        assert [(await river.expect("message"))["seq"] for _ in range(2)] == [1, 2]
        assert (await river.expect("resumed"))["last_seq"] == 2


async def test_resume_when_nothing_was_missed_only_says_resumed(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send_and_ack("one", "client-id-0001")
        await river.send({"type": "resume", "after_seq": 1})
        assert await river.expect("resumed") == {
            "type": "resumed",
            "after_seq": 1,
            "last_seq": 1,
            "more": False,
        }
        await river.expect_quiet()


@pytest.mark.parametrize("after_seq", [2**63, 2**70, 10**30])
async def test_resume_past_the_bigint_range_is_refused_not_echoed(world, after_seq):
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send({"type": "resume", "after_seq": after_seq})
        await river.expect_error("invalid_resume")
        assert river.of_type("resumed") == []
        await assert_still_usable(river)


async def test_resume_of_the_largest_seq_is_answered_with_nothing(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send({"type": "resume", "after_seq": 2**63 - 1})
        resumed = await river.expect("resumed")
        assert (resumed["last_seq"], resumed["more"]) == (2**63 - 1, False)


async def test_resume_replays_a_page_says_more_follows_and_the_client_asks_again(world):
    total = REPLAY_LIMIT + 5

    def seed():
        # Bulk-made for speed: a thousand messages through message_post would mostly
        # measure the rate limit. Bodies are still encrypted by the field.
        Message.objects.bulk_create(
            Message(
                meeting=world.meeting,
                seq=n,
                client_id=f"seeded-{n:06d}",
                author=world.river,
                body=f"seeded {n}",
            )
            for n in range(1, total + 1)
        )
        Meeting.objects.filter(pk=world.meeting.pk).update(last_seq=total)

    await run(seed)
    async with Socket(world.path, await cookie(world.fern)) as fern:
        await fern.send({"type": "resume", "after_seq": 0})
        first = [await fern.expect("message") for _ in range(REPLAY_LIMIT)]
        page = await fern.expect("resumed")
        assert (page["last_seq"], page["more"]) == (REPLAY_LIMIT, True)
        await fern.send({"type": "resume", "after_seq": REPLAY_LIMIT})
        rest = [await fern.expect("message") for _ in range(5)]
        page = await fern.expect("resumed")
        assert (page["last_seq"], page["more"]) == (total, False)
    assert [m["seq"] for m in first + rest] == list(range(1, total + 1))


# --- idempotent sends -------------------------------------------------------------------------


async def test_a_retried_client_id_is_stored_once_and_acked_as_a_duplicate(world):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        first = await river.send_and_ack("Only once, please.", "retry-me-0001")
        again = await river.send_and_ack("Only once, please.", "retry-me-0001")
        assert first == {"type": "ack", "client_id": "retry-me-0001", "seq": 1, "duplicate": False}
        assert again == {"type": "ack", "client_id": "retry-me-0001", "seq": 1, "duplicate": True}
        assert (await fern.expect("message"))["seq"] == 1
        await fern.expect_quiet()  # the retry is not broadcast again

    rows = await run(stored, world.meeting)
    assert [(m.seq, m.client_id, m.body) for m in rows] == [
        (1, "retry-me-0001", "Only once, please.")
    ]


async def test_a_retry_after_a_page_reload_is_still_a_duplicate(world):
    river_cookie = await cookie(world.river)
    async with Socket(world.path, river_cookie) as river:
        await river.send_and_ack("Sent before the reload.", "outbox-item-0001")
    async with Socket(world.path, river_cookie) as river:
        ack = await river.send_and_ack("Sent before the reload.", "outbox-item-0001")
        assert (ack["seq"], ack["duplicate"]) == (1, True)
    assert len(await run(stored, world.meeting)) == 1


async def test_someone_elses_client_id_is_refused(world):
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        await river.send_and_ack("Mine.", "shared-id-0001")
        assert (await fern.expect("message"))["body"] == "Mine."
        await fern.post("Trying to overwrite it.", "shared-id-0001")
        error = await fern.expect_error("duplicate_client_id")
        assert error["client_id"] == "shared-id-0001"
        await assert_still_usable(fern)

    rows = await run(stored, world.meeting)
    assert [(m.client_id, m.body, m.author_id) for m in rows] == [
        ("shared-id-0001", "Mine.", world.river.pk),
        ("after-error-01", "Still here.", world.fern.pk),
    ]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param("{not json", "invalid_json", id="invalid-json"),
        pytest.param(" ", "invalid_json", id="blank-text"),
        pytest.param("[1, 2, 3]", "invalid_frame", id="array"),
        pytest.param("42", "invalid_frame", id="number"),
        pytest.param('"send"', "invalid_frame", id="string"),
        pytest.param("null", "invalid_frame", id="null"),
        pytest.param('{"body": "no type"}', "invalid_frame", id="no-type"),
        pytest.param('{"type": 7}', "invalid_frame", id="type-not-a-string"),
        pytest.param('{"type": "shout"}', "unknown_type", id="unknown-type"),
        pytest.param('{"type": "hello"}', "unknown_type", id="server-only-type"),
        pytest.param("[" * 3000 + "]" * 3000, "invalid_json", id="nested-too-deep"),
        pytest.param(
            '{"type": "send", "client_id": "deep-nest-01", "body": '
            + "[" * 3000
            + "]" * 3000
            + "}",
            "invalid_json",
            id="nested-in-object",
        ),
    ],
)
async def test_a_malformed_frame_gets_its_error_code_and_the_socket_survives(world, raw, code):
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send_text(raw)
        await river.expect_error(code)
        await assert_still_usable(river)


async def test_a_binary_frame_gets_invalid_frame(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.communicator.send_to(bytes_data=b'{"type": "ping"}')
        await river.expect_error("invalid_frame")
        await assert_still_usable(river)


async def test_an_oversized_frame_gets_frame_too_large(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        padding = "x" * settings.CHAT_MAX_FRAME_BYTES
        await river.send({"type": "ping", "padding": padding})
        await river.expect_error("frame_too_large")
        await assert_still_usable(river)


async def test_frame_size_is_counted_in_bytes_not_characters(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        # Fewer characters than the limit, more bytes (each "é" is two in UTF-8).
        text = json.dumps(
            {"type": "ping", "padding": "é" * (settings.CHAT_MAX_FRAME_BYTES // 2)},
            ensure_ascii=False,
        )
        assert len(text) < settings.CHAT_MAX_FRAME_BYTES < len(text.encode())
        await river.send_text(text)
        await river.expect_error("frame_too_large")
        await assert_still_usable(river)


async def test_a_body_over_the_length_limit_is_refused_and_not_stored(world):
    limit = settings.CHAT_MAX_MESSAGE_LENGTH
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.post("x" * (limit + 1), "too-long-0001")
        error = await river.expect_error("body_too_long")
        assert error["client_id"] == "too-long-0001"
        # Exactly the limit is fine.
        ack = await river.send_and_ack("y" * limit, "just-right-01")
        assert ack["seq"] == 1
    rows = await run(stored, world.meeting)
    assert [len(m.body) for m in rows] == [limit]


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param({"type": "send", "client_id": "empty-body-01", "body": ""}, id="empty"),
        pytest.param(
            {"type": "send", "client_id": "empty-body-01", "body": " \n\t "}, id="whitespace"
        ),
        pytest.param({"type": "send", "client_id": "empty-body-01"}, id="missing"),
        pytest.param({"type": "send", "client_id": "empty-body-01", "body": 42}, id="number"),
        pytest.param({"type": "send", "client_id": "empty-body-01", "body": None}, id="null"),
    ],
)
async def test_an_empty_body_is_refused(world, frame):
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send(frame)
        await river.expect_error("empty_body")
        await assert_still_usable(river)
    assert len(await run(stored, world.meeting)) == 1  # only the message after the error


@pytest.mark.parametrize(
    "client_id",
    [
        pytest.param(None, id="missing"),
        pytest.param("short", id="too-short"),
        pytest.param("a" * 65, id="too-long"),
        pytest.param("has spaces in it", id="spaces"),
        pytest.param("semi;colon;id", id="punctuation"),
        pytest.param("ünïcödé-id", id="non-ascii"),
        pytest.param(12345678, id="number"),
        pytest.param("abcdefgh\n", id="trailing-newline"),
        pytest.param("a" * 64 + "\n", id="longest-plus-newline"),
    ],
)
async def test_a_bad_client_id_is_refused(world, client_id):
    frame = {"type": "send", "body": "Hello."}
    if client_id is not None:
        frame["client_id"] = client_id
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send(frame)
        await river.expect_error("invalid_client_id")
        await assert_still_usable(river)
    rows = await run(stored, world.meeting)
    assert [m.client_id for m in rows] == ["after-error-01"]


@pytest.mark.parametrize(
    "after_seq",
    [
        pytest.param("5", id="string"),
        pytest.param(-1, id="negative"),
        pytest.param(1.5, id="fraction"),
        pytest.param(True, id="boolean"),
        pytest.param(None, id="null"),
        pytest.param([1], id="list"),
    ],
)
async def test_a_bad_resume_value_is_refused(world, after_seq):
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send({"type": "resume", "after_seq": after_seq})
        await river.expect_error("invalid_resume")
        await assert_still_usable(river)


async def test_text_that_is_not_valid_unicode_is_refused(world):
    # "\ud800" is a lone UTF-16 surrogate: JSON can spell it, UTF-8 (and so the database,
    # once encrypted) cannot hold it.
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send_text('{"type": "send", "client_id": "surrogate-01", "body": "\\ud800"}')
        await river.expect_error("invalid_json")
        await assert_still_usable(river)
    rows = await run(stored, world.meeting)
    assert [m.client_id for m in rows] == ["after-error-01"]


async def test_html_and_script_are_stored_and_echoed_verbatim(world):
    body = "<script>alert('hi')</script> & <b>bold</b> \"quoted\" 'single' 🌧️"
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        await river.post(body, "script-body-01")
        own, _ = await river.expect_both("message", "ack")
        theirs = await fern.expect("message")
        assert own["body"] == theirs["body"] == body
        await fern.send({"type": "resume", "after_seq": 0})
        assert (await fern.expect("message"))["body"] == body
    rows = await run(stored, world.meeting)
    assert rows[0].body == body


# --- rate limit -------------------------------------------------------------------------------


async def test_the_sixth_message_within_ten_seconds_is_rate_limited(world):
    assert (settings.CHAT_RATE_LIMIT_MESSAGES, settings.CHAT_RATE_LIMIT_SECONDS) == (5, 10)
    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
    ):
        for n in range(1, 6):
            await river.send_and_ack(f"message {n}", f"flood-{n:04d}")
        await river.post("message 6", "flood-0006")
        error = await river.expect_error("rate_limited")
        assert error["client_id"] == "flood-0006"
        await river.still_usable()
        # A retry of a stored message is not a new message: still acked.
        ack = await river.send_and_ack("message 5", "flood-0005")
        assert (ack["seq"], ack["duplicate"]) == (5, True)
        # The limit is per member: Fern may still talk.
        assert (await fern.send_and_ack("I'm here too.", "fern-0001"))["seq"] == 6

    rows = await run(stored, world.meeting)
    assert [m.client_id for m in rows] == [f"flood-{n:04d}" for n in range(1, 6)] + ["fern-0001"]


async def test_the_rate_limit_holds_across_any_window_not_only_fixed_buckets(world, settings):
    """At most N messages in ANY S seconds: a burst straddling a clock boundary is as much
    a flood as one that doesn't."""
    settings.CHAT_RATE_LIMIT_SECONDS = 3
    window = settings.CHAT_RATE_LIMIT_SECONDS
    async with Socket(world.path, await cookie(world.river)) as river:
        # Start the burst just before a multiple of the window...
        while not 0.70 <= (time.time() % window) / window <= 0.80:
            await asyncio.sleep(0.02)
        for n in range(1, 6):
            await river.send_and_ack(f"message {n}", f"burst-{n:04d}")
        # ...and send one more just after it: six messages in about a second.
        while (time.time() % window) / window > 0.5:
            await asyncio.sleep(0.02)
        await river.post("message 6", "burst-0006")
        await river.expect_error("rate_limited")
    assert len(await run(stored, world.meeting)) == 5


async def test_the_limit_lets_a_member_talk_again_after_the_window(world, settings):
    settings.CHAT_RATE_LIMIT_SECONDS = 2
    async with Socket(world.path, await cookie(world.river)) as river:
        await river.send_and_ack("message 1", "again-0001")
        first_acked = time.monotonic()
        for n in range(2, 6):
            await river.send_and_ack(f"message {n}", f"again-{n:04d}")
        await river.post("message 6", "again-0006")
        await river.expect_error("rate_limited")
        # Once the first message is more than a window old, there is room for one more.
        await asyncio.sleep(first_acked + 2.1 - time.monotonic())
        assert (await river.send_and_ack("message 6", "again-0006"))["seq"] == 6


# --- heartbeat --------------------------------------------------------------------------------


async def test_a_ping_gets_a_pong_and_keeps_the_member_present(world):
    async with Socket(world.path, await cookie(world.river)) as river:
        before = await run(lambda: Presence.objects.get(membership=world.river).seen_at)
        await river.send({"type": "ping"})
        assert await river.expect("pong") == {"type": "pong"}
        after = await run(lambda: Presence.objects.get(membership=world.river).seen_at)
        assert after > before


async def test_a_message_is_encoded_once_for_everyone_but_its_author(world, monkeypatch):
    # All of one process's sockets in the room get the same event object from the
    # channel layer; the frame the others see is the same for each, so it is encoded once.
    encoded = []

    async def counting(cls, content):  # noqa: ANN001, ANN202
        if content.get("type") == "message":
            encoded.append(content)
        return json.dumps(content)

    async with (
        Socket(world.path, await cookie(world.river)) as river,
        Socket(world.path, await cookie(world.fern)) as fern,
        Socket(world.path, await cookie(world.fern)) as fern_again,
    ):
        monkeypatch.setattr(AsyncJsonWebsocketConsumer, "encode_json", classmethod(counting))
        await river.send_and_ack("Said to everyone here.", "encoded-once-01")
        seen = [await fern.expect("message"), await fern_again.expect("message")]
        monkeypatch.undo()
    [own] = [f for f in river.frames if f["type"] == "message"]
    assert len(encoded) == 2
    assert (own["mine"], own["client_id"]) == (True, "encoded-once-01")
    assert seen[0] == seen[1]
    assert seen[0] == {**own, "mine": False, "client_id": None}
