"""The chat's group commit (issue 22): the sends a Daphne gets while one transaction is in
flight are stored together in the next one (meetings/group_commit.py,
meetings.services.messages_post). Each is still checked exactly as if it came alone, with
its own refusal; nothing is acknowledged or broadcast before the commit that stored it."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer
from django.db import DatabaseError, connection, connections, transaction
from django.test import Client

from accounts.models import Session
from groups.models import Status
from meetings import group_commit, services
from meetings.models import Meeting
from meetings.services import MessageSend, PostedMessage, RoomError, room_group_name
from supportgroups import realtime
from tests.database import wait_for_lock_waiter
from tests.meetings.conftest import (
    Socket,
    build_world,
    cookie,
    give_place,
    make_person,
    run,
    schedule,
    set_status,
)


def session_key_of(membership) -> str:  # noqa: ANN001
    client = Client()
    client.force_login(membership.user)
    return client.session.session_key


def outcome_code(outcome) -> str:  # noqa: ANN001
    if isinstance(outcome, PostedMessage):
        return f"seq {outcome.message.seq}" + ("" if outcome.created else " again")
    assert isinstance(outcome, RoomError), outcome
    return outcome.code


def river_says(world, client_id: str) -> MessageSend:  # noqa: ANN001
    """A plain "Hello." from River to the world's meeting."""
    return MessageSend(
        meeting_id=world.meeting.pk,
        membership_id=world.river.pk,
        client_id=client_id,
        body="Hello.",
    )


def stored(meeting: Meeting) -> list[tuple[int, str]]:
    return list(meeting.messages.order_by("seq").values_list("seq", "client_id"))


class Listener:
    """A channel-layer channel in a room's group, as a socket in the room would be."""

    def __init__(self, meeting: Meeting):
        self.channel = f"listener-{secrets.token_hex(8)}"
        async_to_sync(get_channel_layer().group_add)(room_group_name(meeting.pk), self.channel)

    def seqs(self) -> list[int]:
        """What reached the channel so far (a layer of its own for each look: a layer's
        receive belongs to the event loop it first ran in)."""
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)

        async def drain() -> list[int]:
            got = []
            while True:
                try:
                    event = await asyncio.wait_for(layer.receive(self.channel), 0.5)
                except TimeoutError:
                    return got
                assert event["type"] == "room.message", event
                got.append(event["seq"])

        return async_to_sync(drain)()


@pytest.mark.django_db(transaction=True)
def test_a_refused_send_in_a_batch_undoes_nothing_of_the_others(world, settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 3
    heron = give_place(world.group, make_person("heron-login-handle"), "Heron")
    set_status(world.fern, Status.MUTED, notify=False)
    held_meeting = schedule(world.other_group, world.admin)
    services.meetings_hold(actor=world.admin, groups=[world.other_group], ip=None)
    river, fern, stranger = (session_key_of(m) for m in (world.river, world.fern, world.stranger))
    gone = session_key_of(world.river)
    Session.objects.filter(session_key=gone).delete()  # signed out (a second browser)
    heron_key = session_key_of(heron)
    meeting = world.meeting

    def send(membership, client_id, key):  # noqa: ANN001, ANN202
        return MessageSend(
            meeting_id=(held_meeting if membership == world.stranger else meeting).pk,
            membership_id=membership.pk,
            client_id=client_id,
            body=f"{client_id} said",
            session_key=key,
        )

    listener = Listener(meeting)
    held_listener = Listener(held_meeting)
    outcomes = services.messages_post(
        sends=[
            send(world.river, "batch-0001", river),
            send(heron, "batch-0001", heron_key),  # someone else's client id
            send(world.fern, "batch-fern", fern),  # muted
            send(world.river, "batch-0002", gone),  # signed out a moment ago
            send(world.stranger, "batch-held", stranger),  # the group's meetings on hold
            send(world.river, "batch-0001", river),  # a retry: stored already
            send(world.river, "batch-0003", river),
            send(world.river, "batch-0004", river),
            send(world.river, "batch-0005", river),  # a fourth in the window: over the limit
            send(heron, "batch-heron", heron_key),
        ]
    )

    assert [outcome_code(o) for o in outcomes] == [
        "seq 1",
        "duplicate_client_id",
        "muted",
        "signed_out",
        "meetings_on_hold",
        "seq 1 again",
        "seq 2",
        "seq 3",
        "rate_limited",
        "seq 4",
    ]
    # Every refusal rolled back only itself: the seqs stay gapless, in order of arrival.
    assert stored(meeting) == [
        (1, "batch-0001"),
        (2, "batch-0003"),
        (3, "batch-0004"),
        (4, "batch-heron"),
    ]
    assert Meeting.objects.get(pk=meeting.pk).last_seq == 4
    assert Meeting.objects.get(pk=held_meeting.pk).last_seq == 0
    assert not held_meeting.messages.exists()
    # Broadcast once each, in seq order; the retry and the refused ones not at all.
    assert listener.seqs() == [1, 2, 3, 4]
    assert held_listener.seqs() == []


@pytest.mark.django_db(transaction=True)
def test_nothing_of_a_batch_is_broadcast_before_its_commit(world):
    listener = Listener(world.meeting)
    with transaction.atomic():
        outcomes = services.messages_post(
            sends=[
                MessageSend(
                    meeting_id=world.meeting.pk,
                    membership_id=member.pk,
                    client_id=f"pending-{n:04d}",
                    body="Not yet.",
                )
                for n, member in enumerate([world.river, world.fern])
            ]
        )
        assert [outcome_code(o) for o in outcomes] == ["seq 1", "seq 2"]
        assert listener.seqs() == []
    assert listener.seqs() == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_a_batch_rolled_back_as_a_whole_broadcasts_nothing(world):
    listener = Listener(world.meeting)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.messages_post(
            sends=[
                MessageSend(
                    meeting_id=world.meeting.pk,
                    membership_id=world.river.pk,
                    client_id="lost-0001",
                    body="Gone.",
                )
            ]
        )
        raise RuntimeError("the commit never came")
    assert listener.seqs() == []
    assert not world.meeting.messages.exists()


@pytest.mark.django_db(transaction=True)
def test_two_processes_batches_over_the_same_rooms_and_sessions_never_deadlock(settings):
    """Two batches that name the same sessions and rooms in opposite orders, at the same
    moment, from two connections (as two Daphnes would): locks are taken sessions first
    in key order, then rooms in id order, so neither waits for the other for ever."""
    settings.CHAT_RATE_LIMIT_MESSAGES = 10_000
    world = build_world()
    second = schedule(world.group, world.facilitator.user)
    keys = {m.pk: session_key_of(m) for m in (world.river, world.fern)}
    rounds = 8
    start = threading.Barrier(2)
    results: dict[str, list] = {}

    def batches(name: str, order) -> None:  # noqa: ANN001
        got = []
        try:
            for n in range(rounds):
                start.wait(timeout=20)
                got += services.messages_post(
                    sends=[
                        MessageSend(
                            meeting_id=meeting.pk,
                            membership_id=member.pk,
                            client_id=f"{name}-{n}-{meeting.pk}-{member.pk}",
                            body="Crossing.",
                            session_key=keys[member.pk],
                        )
                        for meeting, member in order
                    ]
                )
        except Exception as error:  # noqa: BLE001 - reported in the test's thread
            got.append(error)
        finally:
            results[name] = got
            connections.close_all()

    one = threading.Thread(
        target=batches, args=("one", [(second, world.river), (world.meeting, world.fern)])
    )
    other = threading.Thread(
        target=batches, args=("other", [(world.meeting, world.fern), (second, world.river)])
    )
    for thread in (one, other):
        thread.start()
    for thread in (one, other):
        thread.join(timeout=120)

    for name in ("one", "other"):
        assert all(isinstance(o, PostedMessage) for o in results[name]), results[name]
    for meeting in (world.meeting, second):
        assert [seq for seq, _ in stored(meeting)] == list(range(1, 2 * rounds + 1))


class RoomHeldElsewhere:
    """Another connection (a thread of its own) holds a room's row until ``release``."""

    def __init__(self, meeting: Meeting):
        self.meeting = meeting
        self.locked, self.released = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)
        self.thread.start()

    def _hold(self) -> None:
        try:
            with transaction.atomic():
                Meeting.objects.select_for_update().get(pk=self.meeting.pk)
                self.locked.set()
                self.released.wait(20)
        finally:
            connections.close_all()

    def release(self) -> None:
        self.released.set()
        self.thread.join(10)


@pytest.mark.django_db(transaction=True)
def test_a_room_another_transaction_holds_is_left_for_the_next_batch_not_waited_for(world):
    """A batch that may skip busy rooms stores the others at once and leaves the busy
    room's sends untried (outcome None, no seq taken); sent again waiting, they are stored
    once the room is free."""
    busy_room = world.meeting
    free_room = schedule(world.group, world.facilitator.user)

    def send(meeting: Meeting, client_id: str, *, wait: bool) -> MessageSend:
        return MessageSend(
            meeting_id=meeting.pk,
            membership_id=world.river.pk,
            client_id=client_id,
            body="Hello.",
            wait_for_room=wait,
        )

    holder = RoomHeldElsewhere(busy_room)
    try:
        assert holder.locked.wait(10)
        outcomes = services.messages_post(
            sends=[
                send(busy_room, "busy-0001", wait=False),
                send(free_room, "free-0001", wait=False),
                send(busy_room, "busy-0002", wait=False),
            ]
        )
        assert outcomes[0] is None and outcomes[2] is None
        assert outcome_code(outcomes[1]) == "seq 1"
        assert stored(busy_room) == []
        assert Meeting.objects.get(pk=busy_room.pk).last_seq == 0
    finally:
        holder.release()
    outcomes = services.messages_post(
        sends=[send(busy_room, "busy-0001", wait=True), send(busy_room, "busy-0002", wait=True)]
    )
    assert [outcome_code(o) for o in outcomes] == ["seq 1", "seq 2"]
    assert stored(busy_room) == [(1, "busy-0001"), (2, "busy-0002")]


# --- through the sockets ------------------------------------------------------------------


def pending_sends() -> int:
    """How many sends wait for the next transaction in this event loop."""
    batcher = group_commit._per_loop.get(asyncio.get_running_loop())
    return len(batcher.waiting) if batcher else 0


def stored_count(meeting: Meeting) -> int:
    """(On a thread of its own, as above.)"""
    try:
        return meeting.messages.count()
    finally:
        connection.close()


async def messages_seen(socket: Socket, count: int) -> None:
    """Read on until the socket has been given ``count`` messages in all."""
    socket.pending = [f for f in socket.pending if f["type"] not in ("message", "presence")]
    while len(socket.of_type("message")) < count:
        frame = await socket.receive(timeout=5)
        assert frame["type"] in ("message", "presence"), frame


def session_lockers(session_keys: list[str]) -> list[str]:
    """The transaction that last held each session's row (a row lock leaves its id in the
    row's xmax; the messages' own rows were written in savepoints, with ids of their own)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT session_key, xmax::text FROM {Session._meta.db_table}"  # noqa: S608
            " WHERE session_key = ANY(%s)",
            [session_keys],
        )
        lockers = dict(cursor.fetchall())
    return [lockers[key] for key in session_keys]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_sends_arriving_during_a_commit_share_the_next_and_are_acked_after_it(world):
    heron = await run(give_place, world.group, await run(make_person, "heron-login"), "Heron")
    moss = await run(give_place, world.group, await run(make_person, "moss-login"), "Moss")
    # (River twice: a second tab. A socket handles its frames one at a time, so one
    # socket's next send waits for its ack: it takes several sockets to fill a batch.)
    members = [world.river, world.fern, heron, moss, world.river]
    sockets = [Socket(world.path, await cookie(m)) for m in members]
    river, fern, heron_socket, moss_socket, river_again = sockets
    holder = None
    for socket in sockets:
        await socket.__aenter__()
    try:
        # One message each first (each socket's session is then known to be active).
        for n, socket in enumerate(sockets):
            assert (await socket.send_and_ack(f"Hello {n}", f"first-{n:04d}"))["seq"] == n + 1
        for socket in sockets:
            await messages_seen(socket, 5)
            await socket.expect_quiet()

        # Another connection holds the room's row: the next transaction waits for it.
        holder = RoomHeldElsewhere(world.meeting)
        await asyncio.to_thread(holder.locked.wait, 10)
        await river.post("in flight", "second-river")
        await asyncio.to_thread(wait_for_lock_waiter)
        # These arrive while that transaction is in flight: they wait for the next one.
        await fern.post("waits", "second-fern")
        await heron_socket.post("waits too", "second-heron")
        await moss_socket.post("not mine", "second-fern")  # fern's client id
        await river_again.post("Hello 0", "first-0000")  # a retry of a stored one
        deadline = time.monotonic() + 10
        while pending_sends() < 4:
            assert time.monotonic() < deadline, pending_sends()
            await asyncio.sleep(0.01)
        # Nothing acknowledged, nothing broadcast, nothing stored yet.
        for socket in sockets:
            await socket.expect_quiet()
        assert await asyncio.to_thread(stored_count, world.meeting) == 5

        await asyncio.to_thread(holder.release)
        assert (await river.expect_ignoring("ack", ("message",), timeout=5))["seq"] == 6
        assert (await fern.expect_ignoring("ack", ("message",), timeout=5))["seq"] == 7
        assert (await heron_socket.expect_ignoring("ack", ("message",), timeout=5))["seq"] == 8
        refused = await moss_socket.expect_ignoring("error", ("message",), timeout=5)
        assert (refused["code"], refused["client_id"]) == ("duplicate_client_id", "second-fern")
        again = await river_again.expect_ignoring("ack", ("message",), timeout=5)
        assert (again["client_id"], again["seq"], again["duplicate"]) == ("first-0000", 1, True)
        for socket in sockets:
            await messages_seen(socket, 8)
            assert [f["seq"] for f in socket.of_type("message")] == list(range(1, 9))
            await socket.expect_quiet()
        # The first waited alone; the four that came meanwhile were one transaction.
        first, *together = await run(session_lockers, [s.cookie for s in sockets])
        assert len(set(together)) == 1 and first not in together, (first, together)
    finally:
        if holder is not None:
            holder.released.set()
        for socket in sockets:
            await socket.__aexit__(None, None, None)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_transaction_cancelled_in_flight_leaves_no_send_waiting_forever(world):
    """The process stopping cancels the flusher while its transaction waits: the sends of
    that batch and those queued behind it are cancelled too (unacknowledged, they stay in
    their clients' outboxes), none is left awaiting an answer that never comes."""
    holder = RoomHeldElsewhere(world.meeting)
    await asyncio.to_thread(holder.locked.wait, 10)
    batcher = group_commit.GroupCommit()

    try:
        in_flight = asyncio.create_task(batcher.post(river_says(world, "flight-0001")))
        # Skipped once (the room is busy), then waited for: the transaction is in flight.
        await asyncio.to_thread(wait_for_lock_waiter)
        queued = asyncio.create_task(batcher.post(river_says(world, "queued-0001")))
        await asyncio.sleep(0)
        batcher.flusher.cancel()
        for task in (in_flight, queued):
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
        assert batcher.waiting == []
    finally:
        await asyncio.to_thread(holder.release)


# --- a busy process gathers ----------------------------------------------------------------


def made_busy(batcher: group_commit.GroupCommit, gap: float) -> None:
    """The arrivals of a process whose sends have come ``gap`` apart until now."""
    now = asyncio.get_running_loop().time()
    for n in range(100, 0, -1):
        batcher.arrived(now - n * gap)


def transactions_of(meeting: Meeting) -> list[set[str]]:
    """The messages' client ids grouped by the transaction that stored them (xmin)."""
    stored: dict[str, set[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text, client_id FROM meetings_message WHERE meeting_id = %s",
            [meeting.pk],
        )
        for xmin, client_id in cursor.fetchall():
            stored.setdefault(xmin, set()).add(client_id)
    return sorted(stored.values(), key=sorted)


def test_the_gap_between_sends_decides_whether_a_process_gathers():
    batcher = group_commit.GroupCommit()
    assert not batcher.gathering()  # a new process is quiet
    for n in range(200):  # 100 a second: not yet busy enough to wait
        batcher.arrived(n * 0.010)
    assert not batcher.gathering()
    for n in range(200):  # 250 a second
        batcher.arrived(2 + n * 0.004)
    assert batcher.gathering()
    assert batcher.gap == pytest.approx(0.004, abs=0.0005)
    batcher.arrived(2 + 200 * 0.004 + 1.5)  # one quiet second and a half ends it at once
    assert not batcher.gathering()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_busy_process_holds_a_lone_send_one_gap_for_the_next_to_share_its_commit(
    world, monkeypatch
):
    """Sends arriving less than GATHER_SECONDS apart: a send that would be a batch of one
    waits one gap, and the next shares its transaction (one commit for both)."""
    # Every gap scaled up 50 times, so a stall of this test's own process cannot end the
    # wait before the second send is posted.
    monkeypatch.setattr(group_commit, "GATHER_SECONDS", 0.5)
    batcher = group_commit.GroupCommit()
    made_busy(batcher, gap=0.4)
    assert batcher.gathering()
    first = asyncio.create_task(batcher.post(river_says(world, "busy-0001")))
    for _ in range(3):
        await asyncio.sleep(0)
    assert [send.client_id for send, _ in batcher.waiting] == ["busy-0001"]  # held
    second = asyncio.create_task(batcher.post(river_says(world, "busy-0002")))
    assert [(await asyncio.wait_for(t, 10)).message.seq for t in (first, second)] == [1, 2]
    stored_by = await asyncio.to_thread(transactions_of, world.meeting)
    assert stored_by == [{"busy-0001", "busy-0002"}]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_quiet_process_stores_a_lone_send_at_once(world):
    """At a meeting's pace nothing waits: the send is taken into its transaction at once
    and the next, coming later, has its own."""
    batcher = group_commit.GroupCommit()
    made_busy(batcher, gap=0.5)
    assert not batcher.gathering()
    first = asyncio.create_task(batcher.post(river_says(world, "quiet-0001")))
    for _ in range(3):
        await asyncio.sleep(0)
    assert batcher.waiting == []  # already on its way to the database
    assert (await asyncio.wait_for(first, 10)).message.seq == 1
    second = await asyncio.wait_for(batcher.post(river_says(world, "quiet-0002")), 10)
    assert second.message.seq == 2
    stored_by = await asyncio.to_thread(transactions_of, world.meeting)
    assert stored_by == [{"quiet-0001"}, {"quiet-0002"}]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_send_held_for_the_next_is_not_left_waiting_when_the_process_stops(
    world, monkeypatch
):
    monkeypatch.setattr(group_commit, "GATHER_SECONDS", 0.5)  # (as above)
    batcher = group_commit.GroupCommit()
    made_busy(batcher, gap=0.4)
    held = asyncio.create_task(batcher.post(river_says(world, "held-0001")))
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(batcher.waiting) == 1
    batcher.flusher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(held, 5)
    assert batcher.waiting == []
    assert await asyncio.to_thread(stored, world.meeting) == []


# --- the broadcasts, sent from the event loop -----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_broadcasts_handed_back_come_only_with_a_commit_and_are_sent_by_the_caller(world):
    """Inside ``broadcasts_handed_back`` a committed batch's broadcasts are handed back,
    not sent: nothing before the commit, nothing at all for a batch rolled back, and what
    was handed back reaches the room when the caller sends it."""
    listener = Listener(world.meeting)

    with (
        realtime.broadcasts_handed_back() as rolled_back,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.messages_post(sends=[river_says(world, "undone-0001")])
        raise RuntimeError("the commit never came")
    assert rolled_back.events == {}

    with realtime.broadcasts_handed_back() as handed_back:
        with transaction.atomic():
            services.messages_post(
                sends=[river_says(world, "kept-0001"), river_says(world, "kept-0002")]
            )
            assert handed_back.events == {}  # not before the commit
        group = room_group_name(world.meeting.pk)
        assert [e["seq"] for e in handed_back.events[group]] == [1, 2]
    assert listener.seqs() == []  # handed back, not sent

    async_to_sync(realtime.broadcast)(handed_back.events)
    assert listener.seqs() == [1, 2]
    # After the block, a commit sends its own broadcasts again.
    services.messages_post(sends=[river_says(world, "after-0001")])
    assert listener.seqs() == [3]


class GatedLayer:
    """The channel layer's first ``group_send`` waits until ``open`` (Redis slow to answer
    one broadcast); the others go straight through, in the order they are called."""

    def __init__(self, monkeypatch):  # noqa: ANN001
        self.layer = get_channel_layer()
        self.real_group_send = self.layer.group_send
        self.gate = asyncio.Event()
        self.calls = 0
        monkeypatch.setattr(self.layer, "group_send", self.group_send)

    async def group_send(self, group: str, event: dict) -> None:
        self.calls += 1
        if self.calls == 1:
            await self.gate.wait()
        await self.real_group_send(group, event)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_the_database_thread_stores_the_next_batch_while_a_broadcast_is_on_its_way(
    world, monkeypatch
):
    """A batch's sends are acknowledged once committed, and the next batch is stored,
    while the first batch's broadcast still waits for Redis (it used to hold the database
    thread until then); the room still gets its messages in seq order."""
    listener = await asyncio.to_thread(Listener, world.meeting)
    gated = GatedLayer(monkeypatch)
    batcher = group_commit.GroupCommit()

    try:
        first = await asyncio.wait_for(batcher.post(river_says(world, "first-0001")), 10)
        second = await asyncio.wait_for(batcher.post(river_says(world, "second-0001")), 10)
        assert (first.message.seq, second.message.seq) == (1, 2)
        assert await asyncio.to_thread(stored_count, world.meeting) == 2
        assert gated.calls == 1  # the first broadcast waits; the second waits behind it
    finally:
        gated.gate.set()
    await asyncio.wait_for(batcher.broadcasting, 10)
    assert await asyncio.to_thread(listener.seqs) == [1, 2]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_send_the_database_refuses_fails_alone_not_the_others_of_its_batch(world):
    """A batch is one transaction: one send the database refuses (here a client id longer
    than its column, which the socket's frame checks would have refused first) aborts it.
    The others of the batch are stored all the same, and only that send gets the error."""
    holder = RoomHeldElsewhere(world.meeting)
    await asyncio.to_thread(holder.locked.wait, 10)
    batcher = group_commit.GroupCommit()
    try:
        in_flight = asyncio.create_task(batcher.post(river_says(world, "flight-0001")))
        await asyncio.to_thread(wait_for_lock_waiter)
        # These wait together for the next transaction.
        good = asyncio.create_task(batcher.post(river_says(world, "good-0001")))
        too_long = asyncio.create_task(batcher.post(river_says(world, "x" * 300)))
        fern = asyncio.create_task(
            batcher.post(
                MessageSend(
                    meeting_id=world.meeting.pk,
                    membership_id=world.fern.pk,
                    client_id="fern-0001",
                    body="Me too.",
                )
            )
        )
        await asyncio.sleep(0)
    finally:
        await asyncio.to_thread(holder.release)
    assert (await asyncio.wait_for(in_flight, 10)).message.seq == 1
    assert [outcome_code(await asyncio.wait_for(t, 10)) for t in (good, fern)] == [
        "seq 2",
        "seq 3",
    ]
    with pytest.raises(DatabaseError):
        await asyncio.wait_for(too_long, 10)
    assert await asyncio.to_thread(stored, world.meeting) == [
        (1, "flight-0001"),
        (2, "good-0001"),
        (3, "fern-0001"),
    ]
