"""The websocket load generator: real clients of meetings/PROTOCOL.md, and of the echo.

One asyncio loop in the benchmark process drives every socket (see bench/__main__.py for
why it is not a separate process). A message's latency runs from just before the client
writes its ``send`` frame to the moment the LAST socket in its room (the author's own
included) has read it back. Each socket keeps every seq it was given, so lost and doubled
deliveries are counted exactly: every socket in a room must see every acknowledged seq of
that room once. The echo runs are the same code on ``ws/bench/echo/<room>/`` sockets with
the same rooms, members, processes and schedule. The E2EE runs (kind ``e2ee``) are meeting
rooms whose groups have end-to-end encrypted meetings: each socket registers a device, shares
its sending key with every device of its room, and seals each message with the reference
client (tests/e2ee_client.py: AES-GCM, an ECDSA signature, the franking commitment); the
server then checks the signature and the epoch coverage of every message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import heapq
import json
import math
import os
import random
import resource
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect

from bench.data import Room, Seat
from bench.stack import box_cpu_ticks

HEARTBEAT_SECONDS = 25  # the protocol's heartbeat (hello.limits.heartbeat_seconds)
RATE_WINDOW_SECONDS = 10  # the server's CHAT_RATE_LIMIT_SECONDS (a sliding window)
RATE_BUDGET = 4  # sends per member per window; the server allows 5, keep one spare
FILLER = (
    "thank you all for being here tonight, it helps to say this out loud to people who "
    "understand what the last few weeks have been like"
)


def cookie_name() -> str:
    from django.conf import settings

    return settings.SESSION_COOKIE_NAME


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def collector_paused():
    """No garbage collection in this process (the load generator) while a phase is
    measured: a full collection stops its event loop for tens of milliseconds (28.6 ms
    during one storm), and every message in flight would be counted that much later, as
    if the app had been slow. What was built before is collected and frozen first: enter
    it before the phase's clocks start."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Usage:
    """CPU of the Daphnes, PostgreSQL, Redis, this process (the load generator) and the
    whole box (other tenants of the machine included) over a stretch of time."""

    services = None  # bench.stack.Stack.service_cpu_seconds, set by __main__

    def __init__(self, daphnes: list):
        self.daphnes = daphnes
        self.wall = time.perf_counter()
        self.daphne_cpu = [d.cpu_seconds() for d in daphnes]
        self.client_cpu = client_cpu_seconds()
        self.service_cpu = Usage.services() if Usage.services else {}
        self.box = box_cpu_ticks()

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall
        per = [d.cpu_seconds() - c for d, c in zip(self.daphnes, self.daphne_cpu, strict=True)]
        busy, total = box_cpu_ticks()
        cpus = os.cpu_count() or 1
        services = Usage.services() if Usage.services else {}
        return {
            **{
                f"{name}_cpu_percent_of_one_core": round(
                    100 * (services[name] - self.service_cpu[name]) / wall, 2
                )
                for name in services
                if name in self.service_cpu
            },
            "seconds": round(wall, 1),
            "daphne_cpu_percent_of_box": round(100 * sum(per) / (wall * cpus), 2),
            "daphne_cpu_percent_of_one_core": [round(100 * p / wall, 2) for p in per],
            "load_generator_cpu_percent_of_one_core": round(
                100 * (client_cpu_seconds() - self.client_cpu) / wall, 2
            ),
            "box_busy_percent": round(100 * (busy - self.box[0]) / max(1, total - self.box[1]), 2),
        }


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    return sorted(values)[_rank(len(values), p) - 1]


def _rank(count: int, p: float) -> int:
    return max(1, min(count, round(p / 100 * count + 0.4999)))


@dataclass
class Msg:
    token: str
    room: int
    needed: int
    sent_at: float
    label: str = ""
    got: int = 0
    done_at: float | None = None
    seq: int | None = None
    acked_at: float | None = None
    sender: int = 0  # which Daphne the author's socket is on
    # (when, Daphne) of every member's receipt, kept only when tracing (ChatRun.trace)
    arrivals: list | None = None

    @property
    def latency(self) -> float | None:
        return None if self.done_at is None else self.done_at - self.sent_at


@dataclass
class Sock:
    room: int
    seat: Seat
    daphne: object
    ws: ClientConnection | None = None
    received: list = field(default_factory=list)  # seqs (room) or tokens (echo)
    hello: asyncio.Event = field(default_factory=asyncio.Event)
    closed_code: int | None = None
    error: str | None = None
    tasks: list = field(default_factory=list)
    device: object = None  # E2EE: tests.e2ee_client.E2EEDevice
    answer: asyncio.Event | None = None  # E2EE: device_registered / keys_shared came


class ChatRun:
    """A set of open sockets (rooms or echo rooms) and what they have seen."""

    def __init__(
        self,
        kind: str,
        rooms: list[Room],
        daphnes: list,
        *,
        heartbeat: bool = True,
        trace: bool = False,
    ):
        assert kind in ("room", "echo", "e2ee")
        self.kind = kind
        self.is_room = kind in ("room", "e2ee")
        self.rooms = rooms
        self.daphnes = daphnes
        self.heartbeat = heartbeat and self.is_room
        self.trace = trace
        self.sockets: list[list[Sock]] = []
        self.pending: dict[str, Msg] = {}
        self.messages: list[Msg] = []
        self.errors: Counter = Counter()
        self.unknown = 0
        self.duplicate_acks = 0
        self.out_of_order = 0
        self.skipped = 0
        self.refused_connects = 0
        self.dropped: list[tuple[float, int]] = []  # (when, close code): closed by the server
        self._closing = False
        self._counter = 0
        self._frames = 0
        # Each member's recent sends (time.monotonic()), for the server's rate limit.
        self._budget: dict[tuple[int, int], deque] = {}
        self.cursor = 0  # rate_step: the next member in turn

    # --- connecting ---------------------------------------------------------------------

    def _uri(self, room: Room, daphne) -> str:  # noqa: ANN001
        if self.is_room:
            return f"{daphne.ws_base}/ws/meetings/{room.meeting_id}/"
        return f"{daphne.ws_base}/ws/bench/echo/{room.name}/"

    async def connect(self, concurrency: int = 16, timeout: float = 30.0) -> float:
        """Open one socket per seat, alternating the Daphnes within each room (so every
        room spans both processes); returns seconds taken."""
        started = time.perf_counter()
        gate = asyncio.Semaphore(concurrency)
        jobs = []
        for r, room in enumerate(self.rooms):
            socks = []
            for n, seat in enumerate(room.seats):
                sock = Sock(room=r, seat=seat, daphne=self.daphnes[(n + r) % len(self.daphnes)])
                socks.append(sock)
                jobs.append(self._open(sock, room, gate, timeout))
            self.sockets.append(socks)
        await asyncio.gather(*jobs)
        if not self.open_sockets:
            raise RuntimeError(f"no {self.kind} socket could be opened")
        # Seats whose socket did not open stay in the room as already-closed sockets.
        return time.perf_counter() - started

    async def _open(self, sock: Sock, room: Room, gate: asyncio.Semaphore, timeout: float):
        async with gate:
            try:
                sock.ws = await connect(
                    self._uri(room, sock.daphne),
                    origin=sock.daphne.origin,
                    additional_headers={"Cookie": f"{cookie_name()}={sock.seat.cookie}"},
                    compression=None,
                    ping_interval=None,  # browsers send no ping frames; the app has its own
                    open_timeout=timeout,
                    close_timeout=2,
                    max_queue=None,
                )
            except Exception as error:  # noqa: BLE001 - counted and reported
                self.refused_connects += 1
                sock.closed_code = -2
                sock.error = repr(error)
                return
            sock.tasks.append(asyncio.create_task(self._read(sock)))
            if self.is_room:
                try:
                    await asyncio.wait_for(sock.hello.wait(), timeout)
                    if self.kind == "e2ee":
                        await self._register(sock, room, timeout)
                except TimeoutError:
                    self.refused_connects += 1
                    sock.error = "no hello"
        if self.heartbeat:
            sock.tasks.append(asyncio.create_task(self._beat(sock)))

    async def _register(self, sock: Sock, room: Room, timeout: float) -> None:
        from tests.e2ee_client import E2EEDevice

        sock.device = E2EEDevice(room.meeting_id)
        sock.answer = asyncio.Event()
        await sock.ws.send(json.dumps(sock.device.register_frame()))
        await asyncio.wait_for(sock.answer.wait(), timeout)

    async def share_keys(self, timeout: float = 30.0) -> None:
        """E2EE: every device starts an epoch shared with every device of its room (the
        browsers do this on join and on each ``devices`` frame)."""
        from tests.e2ee_client import raw_public

        async def share(sock: Sock, socks: list[Sock]) -> None:
            device = sock.device
            device.devices = {
                s.device.id: {"ecdh": base64.b64encode(raw_public(s.device.ecdh)).decode()}
                for s in socks
                if s.device is not None and s.device.id
            }
            device.new_epoch()
            sock.answer.clear()
            await sock.ws.send(json.dumps(device.share_frame(list(device.devices))))
            await asyncio.wait_for(sock.answer.wait(), timeout)

        gate = asyncio.Semaphore(16)

        async def one(sock: Sock, socks: list[Sock]) -> None:
            async with gate:
                await share(sock, socks)

        await asyncio.gather(
            *(
                one(sock, socks)
                for socks in self.sockets
                for sock in socks
                if sock.device is not None and sock.closed_code is None
            )
        )

    async def settle(self, quiet: float = 1.0, limit: float = 15.0) -> None:
        """Wait until join traffic (presence broadcasts) has died down."""
        deadline = time.perf_counter() + limit
        last = -1
        while time.perf_counter() < deadline:
            total = self._frames
            if total == last:
                return
            last = total
            await asyncio.sleep(quiet)

    async def close(self) -> None:
        self._closing = True
        for socks in self.sockets:
            for sock in socks:
                for task in sock.tasks:
                    task.cancel()
        closers = [
            sock.ws.close() for socks in self.sockets for sock in socks if sock.ws is not None
        ]
        for start in range(0, len(closers), 100):
            await asyncio.gather(*closers[start : start + 100], return_exceptions=True)
        for socks in self.sockets:
            for sock in socks:
                for task in sock.tasks:
                    with contextlib.suppress(BaseException):
                        await task

    @property
    def open_sockets(self) -> int:
        return sum(
            1
            for socks in self.sockets
            for sock in socks
            if sock.ws is not None and sock.closed_code is None
        )

    # --- frames ----------------------------------------------------------------------------

    async def _read(self, sock: Sock) -> None:
        ws = sock.ws
        pending = self.pending
        is_room = self.is_room
        sealed = self.kind == "e2ee"
        try:
            async for raw in ws:
                now = time.perf_counter()
                self._frames += 1
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    if sealed:
                        # (The load generator does not decrypt: the server's cost is what
                        # is measured; the browser's is measured in Chromium.)
                        token = (frame.get("e2ee") or {}).get("client_id") or ""
                    else:
                        body = frame.get("body") or ""
                        token = body.split(" ", 1)[0]
                    if is_room:
                        seq = frame["seq"]
                        if sock.received and seq < sock.received[-1]:
                            self.out_of_order += 1
                        sock.received.append(seq)
                    else:
                        sock.received.append(token)
                    msg = pending.get(token)
                    if msg is None:
                        self.unknown += 1
                        continue
                    msg.got += 1
                    if msg.arrivals is not None:
                        msg.arrivals.append((now, self.daphnes.index(sock.daphne)))
                    if msg.got == msg.needed:
                        msg.done_at = now
                elif kind == "ack":
                    msg = pending.get(frame.get("client_id"))
                    if msg is not None:
                        msg.seq = frame.get("seq")
                        msg.acked_at = now
                    if frame.get("duplicate"):
                        self.duplicate_acks += 1
                elif kind == "hello":
                    sock.hello.set()
                elif kind == "device_registered":
                    sock.device.id = frame["device"]["id"]
                    sock.answer.set()
                elif kind == "keys_shared":
                    sock.answer.set()
                elif kind == "error":
                    self.errors[frame.get("code")] += 1
                elif kind == "closed":
                    self.errors[f"closed:{frame.get('reason')}"] += 1
        except Exception as error:  # noqa: BLE001 - a dropped socket is counted, not fatal
            sock.error = repr(error)
        finally:
            sock.closed_code = ws.close_code if ws.close_code is not None else -1
            if not self._closing:
                self.dropped.append((time.perf_counter(), sock.closed_code))

    async def _beat(self, sock: Sock) -> None:
        await asyncio.sleep(random.uniform(0, HEARTBEAT_SECONDS))
        while True:
            with contextlib.suppress(Exception):
                await sock.ws.send('{"type":"ping"}')
            await asyncio.sleep(HEARTBEAT_SECONDS)

    # --- sending ----------------------------------------------------------------------------

    def _has_budget(self, room: int, seat: int) -> bool:
        """Fewer than RATE_BUDGET sends in the last RATE_WINDOW_SECONDS: the server counts
        a member's messages over the 10 s before each send, so windows aligned to the
        clock (4 at the end of one and 4 at the start of the next) had it refuse some."""
        sent = self._budget.setdefault((room, seat), deque())
        since = time.monotonic() - RATE_WINDOW_SECONDS
        while sent and sent[0] <= since:
            sent.popleft()
        return len(sent) < RATE_BUDGET

    def _spend(self, room: int, seat: int) -> None:
        self._budget[(room, seat)].append(time.monotonic())

    async def send(self, room: int, seat: int, label: str = "", *, guard: bool = True) -> bool:
        """Post one message as ``seat`` of ``room``; False if the member is out of budget."""
        if guard and self.is_room and not self._has_budget(room, seat):
            self.skipped += 1
            return False
        if self.is_room:
            self._has_budget(room, seat)
            self._spend(room, seat)
        sock = self.sockets[room][seat]
        if sock.ws is None or sock.closed_code is not None:
            self.errors["send_skipped_socket_dropped"] += 1
            return False
        self._counter += 1
        token = f"b{self._counter:07d}x{random.randrange(1 << 30):08x}"
        # Latency is to the last member still connected (dropped sockets are counted apart).
        needed = sum(1 for s in self.sockets[room] if s.closed_code is None)
        msg = Msg(token=token, room=room, needed=needed, sent_at=0.0, label=label)
        msg.sender = self.daphnes.index(sock.daphne)
        if self.trace:
            msg.arrivals = []
        self.pending[token] = msg
        self.messages.append(msg)
        msg.sent_at = time.perf_counter()
        if self.kind == "e2ee":
            frame = json.dumps(sock.device.seal(f"{token} {FILLER}", token)[0])
        else:
            frame = json.dumps({"type": "send", "client_id": token, "body": f"{token} {FILLER}"})
        try:
            await sock.ws.send(frame)
        except Exception:  # noqa: BLE001 - the socket went away under us; counted by _read
            del self.pending[token]
            self.messages.remove(msg)
            return False
        return True

    async def drain(self, messages: list[Msg], timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if all(m.done_at is not None for m in messages):
                return
            await asyncio.sleep(0.05)

    # --- accounting ---------------------------------------------------------------------------

    def delivery_check(self) -> dict:
        """Lost and doubled deliveries over every socket that stayed open, from seqs (rooms)
        or tokens (echo); sockets the server closed are counted apart, as dropped."""
        lost = duplicated = unacked = 0
        by_room: dict[int, list[Msg]] = defaultdict(list)
        for msg in self.messages:
            by_room[msg.room].append(msg)
        for r, socks in enumerate(self.sockets):
            if self.is_room:
                expected = {m.seq for m in by_room[r] if m.seq is not None}
                unacked += sum(1 for m in by_room[r] if m.seq is None)
                floor = min(expected) if expected else None
            else:
                expected = {m.token for m in by_room[r]}
                floor = None
            for sock in socks:
                if sock.closed_code is not None:
                    continue
                got = sock.received
                if floor is not None:
                    got = [s for s in got if s >= floor]
                lost += len(expected - set(got))
                duplicated += len(got) - len(set(got))
        codes = Counter(code for _, code in self.dropped)
        return {
            "lost": lost,
            "duplicated": duplicated,
            "unacked": unacked,
            "sockets_dropped": len(self.dropped),
            "drop_close_codes": dict(codes),
            "sockets_refused_or_timed_out": self.refused_connects,
        }


def trace_records(messages: list[Msg]) -> list[dict]:
    """Each message's timeline (perf_counter seconds, comparable with the Daphnes' records
    of bench/traced_asgi.py): sent, acked, each member's receipt."""
    return [
        {
            "client_id": m.token,
            "room": m.room,
            "label": m.label,
            "seq": m.seq,
            "sender_daphne": m.sender,
            "sent": m.sent_at,
            "acked": m.acked_at,
            "done": m.done_at,
            "arrivals": m.arrivals,
        }
        for m in messages
    ]


def label_around(messages, *, warm_until: float, start: float, end: float) -> None:  # noqa: ANN001
    """Label each message by when it was sent: "warm" (before ``warm_until``), "before"
    the window from ``start`` to ``end``, "storm" within it, or "after" it."""
    for msg in messages:
        if msg.sent_at < warm_until:
            msg.label = "warm"
        elif msg.sent_at < start:
            msg.label = "before"
        elif msg.sent_at <= end:
            msg.label = "storm"
        else:
            msg.label = "after"


def latency_summary(messages: list[Msg]) -> dict:
    """Percentiles over every message sent; one that never reached every member counts as
    infinitely late (a percentile that lands on one is reported as None)."""
    latencies = [m.latency * 1000 if m.latency is not None else math.inf for m in messages]
    done = [v for v in latencies if v != math.inf]
    return {
        "messages": len(messages),
        "completed": len(done),
        "p50_ms": _round(percentile(latencies, 50)),
        "p95_ms": _round(percentile(latencies, 95)),
        "p99_ms": _round(percentile(latencies, 99)),
        # What the p99 rests on: it is this message counted from the slowest (the 15th of
        # ~1,460 in a delivery phase, so a handful of stalls decide it).
        "p99_is_nth_slowest": len(messages) + 1 - _rank(len(messages), 99) if messages else None,
        "max_completed_ms": _round(max(done) if done else None),
    }


def timeline(messages: list[Msg], origin: float, bucket: float = 5.0) -> list[dict]:
    """Latency by when messages were sent (``bucket``-second slices from ``origin``)."""
    slices: dict[int, list[Msg]] = defaultdict(list)
    for msg in messages:
        slices[int((msg.sent_at - origin) // bucket)].append(msg)
    return [{"from_s": n * bucket, **latency_summary(slices[n])} for n in sorted(slices) if n >= 0]


def _round(value: float | None) -> float | None:
    return None if value is None or value == math.inf else round(value, 2)


# --- schedules ------------------------------------------------------------------------------


def conversation_schedule(
    sizes: list[int],
    duration: float,
    *,
    mean_gap: float,
    burst_every: float,
    seed: int,
) -> list[tuple[float, int, int]]:
    """(time, room, seat) sends: each member talks at random (exponential gaps of
    ``mean_gap`` seconds on average), and every ``burst_every`` seconds one room bursts:
    a fifth of its members (at least 3) answer within 1.5 seconds."""
    rng = random.Random(seed)
    events = []
    for r, size in enumerate(sizes):
        for s in range(size):
            t = rng.expovariate(1 / mean_gap)
            while t < duration:
                events.append((t, r, s))
                t += rng.expovariate(1 / mean_gap)
    t = burst_every / 2
    while t < duration - 2:
        r = rng.randrange(len(sizes))
        for s in rng.sample(range(sizes[r]), max(3, sizes[r] // 5)):
            events.append((t + rng.uniform(0, 1.5), r, s))
        t += burst_every
    heapq.heapify(events)
    return [heapq.heappop(events) for _ in range(len(events))]


async def play(run: ChatRun, schedule: list[tuple[float, int, int]], labeller) -> dict:  # noqa: ANN001
    """Send on schedule (open loop: a slow server does not slow the senders)."""
    started = time.perf_counter()
    worst_lag = 0.0
    for at, room, seat in schedule:
        delay = started + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            worst_lag = max(worst_lag, -delay)
        await run.send(room, seat, labeller(at))
    return {"schedule_lag_max_ms": round(worst_lag * 1000, 1)}


# --- capacity -------------------------------------------------------------------------------


def members_rate_cap(run: ChatRun) -> float:
    """The highest rate the run's open sockets may send at without any member passing the
    chat's rate limit (RATE_BUDGET per RATE_WINDOW_SECONDS each, one spare under the
    server's): above it a step would measure the limit, not the app. The echo has none."""
    if not run.is_room:
        return math.inf
    members = sum(1 for socks in run.sockets for sock in socks if sock.closed_code is None)
    return members * RATE_BUDGET / RATE_WINDOW_SECONDS


async def warm_up(run: ChatRun, rate: float, drain: float) -> dict:
    """Every open socket sends one message (at ``rate``), not timed: a socket's first send
    also costs its session check, which would otherwise land in the first steps. The same
    for the rooms and the echo, so both searches start from the same state."""
    members = sum(1 for socks in run.sockets for sock in socks if sock.closed_code is None)
    return await rate_step(run, rate, members / rate, drain, label="warm-up")


async def rate_step(
    run: ChatRun, rate: float, duration: float, drain: float, *, label: str | None = None
) -> dict:
    """Offer ``rate`` messages/s for ``duration`` s, spread over every room and member in
    turn (the turn carries on from the run's previous step, so each member's sends stay
    evenly spaced across steps). ``rate_limited``: messages the members' rate limit held
    back (the client's guard) or the server refused as too fast: such a step measured the
    limit, and says so."""
    members = [(r, s) for s in range(10) for r in range(len(run.sockets))]
    members = [(r, s) for r, s in members if s < len(run.sockets[r])]
    total = int(rate * duration)
    label = label or f"rate-{rate:g}"
    started = time.perf_counter()
    worst_lag = 0.0
    sent: list[Msg] = []
    usage = Usage(run.daphnes)
    skipped_before = run.skipped
    refused_before = run.errors["rate_limited"]
    for n in range(total):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            worst_lag = max(worst_lag, -delay)
        for _ in range(len(members)):
            room, seat = members[run.cursor % len(members)]
            run.cursor += 1
            if run.sockets[room][seat].closed_code is not None:
                continue
            if not run.is_room or run._has_budget(room, seat):
                break
        else:
            run.skipped += 1
            continue
        if await run.send(room, seat, label, guard=False):
            sent.append(run.messages[-1])
    sending_took = time.perf_counter() - started
    await run.drain(sent, drain)
    cpu = usage.stop()
    summary = latency_summary(sent)
    done = [m for m in sent if m.done_at is not None]
    summary.update(
        {
            "offered_per_s": rate,
            "sent_per_s": round(len(sent) / sending_took, 1) if sending_took else None,
            "delivered_per_s": round(len(done) / sending_took, 1) if sending_took else None,
            "incomplete": len(sent) - len(done),
            "rate_limited": run.skipped
            - skipped_before
            + run.errors["rate_limited"]
            - refused_before,
            "schedule_lag_max_ms": round(worst_lag * 1000, 1),
            "cpu": cpu,
        }
    )
    return summary


def step_passes(step: dict, *, p99_limit_ms: float) -> bool:
    return (
        step["incomplete"] == 0
        and step["p99_ms"] is not None
        and step["p99_ms"] <= p99_limit_ms
        and step["sent_per_s"] is not None
        and step["sent_per_s"] >= 0.9 * step["offered_per_s"]
    )


async def find_ceiling(  # noqa: PLR0913
    run: ChatRun,
    *,
    first_rate: float,
    precision: float,
    duration: float,
    drain: float,
    p99_limit_ms: float,
    deadline: float,
    log=print,  # noqa: ANN001
) -> dict:
    """The highest rate at which a step passes (p99 within the limit, nothing missing, the
    rate offered), the same search for the rooms and the echo: double from ``first_rate``
    until a step fails, then bisect between the last pass and the first fail until they are
    within ``precision`` of the pass (a first step that fails is bisected down towards 0
    the same way). A room run never offers more than its members' rate limit allows
    (``members_rate_cap``): it tries the cap itself instead, and a pass there is reported
    as bounded by the limit, not as the app's ceiling. Stops starting steps at
    ``deadline`` (reported as truncated)."""
    cap = members_rate_cap(run)
    steps: list[dict] = []
    passed, failed = 0, None
    truncated = False

    async def attempt(rate: float) -> bool:
        step = await rate_step(run, rate, duration, drain)
        step["passed"] = step_passes(step, p99_limit_ms=p99_limit_ms)
        steps.append(step)
        cpu = step["cpu"]
        log(
            f"  {run.kind} {rate:>6g}/s: p99 {step['p99_ms']} ms, sent {step['sent_per_s']}/s, "
            f"incomplete {step['incomplete']}, rate-limited {step['rate_limited']} -> "
            f"{'ok' if step['passed'] else 'over'} "
            f"(CPU % of one core: Daphnes {cpu['daphne_cpu_percent_of_one_core']}, "
            f"PostgreSQL {cpu.get('postgres_cpu_percent_of_one_core')}, "
            f"load generator {cpu['load_generator_cpu_percent_of_one_core']}; "
            f"box busy {cpu['box_busy_percent']}%)"
        )
        # Let queues empty before the next step, so steps do not leak into each other.
        await run.drain(run.messages, drain)
        await asyncio.sleep(1.0)
        return step["passed"]

    rate = min(first_rate, cap)
    while True:
        if steps and time.monotonic() > deadline:
            truncated = True
            break
        if not await attempt(rate):
            failed = rate
            break
        passed = rate
        if rate >= cap:
            break
        rate = min(rate * 2, cap)
    while failed is not None and failed - passed > precision * max(passed, failed / 2):
        if time.monotonic() > deadline:
            truncated = True
            break
        middle = round((passed + failed) / 2)
        if middle in (passed, failed):
            break
        if await attempt(middle):
            passed = middle
        else:
            failed = middle
    return {
        "ceiling_per_s": passed,
        "first_failed_per_s": failed,
        "members_rate_cap_per_s": None if cap == math.inf else cap,
        "bounded_by_members_rate_limit": failed is None and passed >= cap,
        # (As before: no step failed, so the ceiling is at least the last one.)
        "bounded_by_last_step": failed is None and not truncated,
        "rate_limited_steps": sum(1 for step in steps if step["rate_limited"]),
        "truncated_by_time_budget": truncated,
        "steps": steps,
    }
