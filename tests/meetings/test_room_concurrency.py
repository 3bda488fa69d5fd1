"""Many members posting at once: every message gets its own seq, 1..N with no gap and no
duplicate, because seqs are handed out under the meeting's row lock."""

import asyncio
import threading

import pytest
from django.db import connections

from meetings import services
from meetings.models import Meeting, Message
from tests.meetings.conftest import Socket, build_world, cookie, give_place, make_person, run

SOCKETS = 5
EACH = 10


@pytest.fixture
def no_rate_limit(settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 10_000


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections", "no_rate_limit")
async def test_five_sockets_sending_at_once_get_seqs_one_to_fifty(world):
    extra = [
        await run(give_place, world.group, await run(make_person, f"extra-{n}-login"), name)
        for n, name in enumerate(["Heron", "Moss", "Ash"])
    ]
    members = [world.river, world.fern, *extra]
    sockets = [Socket(world.path, await cookie(m)) for m in members]
    for socket in sockets:
        await socket.__aenter__()
    try:

        async def send_all(index, socket):
            for n in range(EACH):
                await socket.post(f"{index}:{n}", f"member{index}-msg{n:03d}")

        await asyncio.gather(*(send_all(i, s) for i, s in enumerate(sockets)))

        async def collect(socket):
            acks, seen = [], []
            while len(acks) < EACH or len(seen) < SOCKETS * EACH:
                frame = await socket.receive(timeout=5)
                if frame["type"] == "ack":
                    assert frame["duplicate"] is False
                    acks.append(frame["seq"])
                elif frame["type"] == "message":
                    seen.append(frame["seq"])
                else:
                    assert frame["type"] == "presence", frame
            return acks, seen

        results = await asyncio.gather(*(collect(s) for s in sockets))
    finally:
        for socket in sockets:
            await socket.__aexit__(None, None, None)

    all_acks = sorted(seq for acks, _ in results for seq in acks)
    assert all_acks == list(range(1, SOCKETS * EACH + 1))
    for acks, seen in results:
        assert acks == sorted(acks)  # one socket's own messages keep their order
        assert sorted(seen) == list(range(1, SOCKETS * EACH + 1))  # each got all 50, once

    rows = await run(
        lambda: list(
            Message.objects.filter(meeting=world.meeting).values_list("seq", "client_id", "body")
        )
    )
    assert [seq for seq, _, _ in rows] == list(range(1, SOCKETS * EACH + 1))
    for _seq, client_id, body in rows:
        index, n = body.split(":")
        assert client_id == f"member{index}-msg{int(n):03d}"
    assert await run(lambda: Meeting.objects.get(pk=world.meeting.pk).last_seq) == 50


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_rate_limit")
def test_posting_from_many_threads_at_once_never_reuses_or_skips_a_seq():
    """Real concurrency (the socket test shares one database thread): five threads, each
    with its own database connection, post at the same moment."""
    world = build_world()
    members = [world.river, world.fern] + [
        give_place(world.group, make_person(f"thread-{n}-login"), name)
        for n, name in enumerate(["Heron", "Moss", "Ash"])
    ]
    start = threading.Barrier(len(members))
    errors = []

    def post_all(index, membership):
        try:
            start.wait()
            for n in range(EACH):
                services.message_post(
                    meeting_id=world.meeting.pk,
                    membership_id=membership.pk,
                    client_id=f"thread{index}-msg{n:03d}",
                    body=f"{index}:{n}",
                )
            # And a retry of one of them, which must not take a new seq.
            again = services.message_post(
                meeting_id=world.meeting.pk,
                membership_id=membership.pk,
                client_id=f"thread{index}-msg000",
                body=f"{index}:0",
            )
            assert again.created is False
        except Exception as error:  # reported below, in the test's own thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post_all, args=(i, m)) for i, m in enumerate(members)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors

    seqs = list(Message.objects.filter(meeting=world.meeting).values_list("seq", flat=True))
    assert seqs == list(range(1, len(members) * EACH + 1))
    assert Meeting.objects.get(pk=world.meeting.pk).last_seq == len(members) * EACH
