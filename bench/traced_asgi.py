"""The app as production runs it, plus a timeline of what each Daphne did: for finding
what the slowest chat deliveries waited for (``python -m bench --delivery-only --trace``).

Daphne is started on ``bench.traced_asgi:application`` instead of
``supportgroups.asgi:application``: the same application object, with these records
written to ``$BENCH_TRACE_DIR/<pid>.jsonl`` (one JSON list per line, times from
``time.perf_counter()``, which is CLOCK_MONOTONIC and so comparable between the processes
of the box):

- ``["gc", start, end, generation, collected]``: every garbage collection;
- ``["lag", due, late_by]``: the event loop ran a 5 ms timer more than 3 ms late (what
  ran meanwhile held the loop, or the process waited for a CPU);
- ``["db", name, start, end]``: each piece of work on a database thread
  (``database_sync_to_async``), by function, with the thread's name;
- ``["post", start, end, broadcast_start, broadcast_end, [client ids]]``: one group
  commit (``meetings.services.messages_post``): its statements and commit run from
  ``start`` to ``broadcast_start``, the hand-over of its broadcasts to the event loop
  and the channel layer from there to ``broadcast_end``;
- ``["recv", client_id, received, acked]``: a chat send read by the consumer, and its ack.

Nothing here changes what the application does; it costs a few microseconds per record.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from pathlib import Path

from supportgroups.asgi import application as _application

_now = time.perf_counter
_lock = threading.Lock()
_out = open(  # noqa: SIM115 - open for the life of the process
    Path(os.environ.get("BENCH_TRACE_DIR", ".")) / f"{os.getpid()}.jsonl", "a", buffering=1
)


def record(*fields) -> None:  # noqa: ANN002
    line = json.dumps(fields)
    with _lock:
        _out.write(line + "\n")


# --- garbage collections ---------------------------------------------------------------------

_gc_started = [0.0]


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_started[0] = _now()
    else:
        record("gc", _gc_started[0], _now(), info["generation"], info["collected"])


gc.callbacks.append(_on_gc)


# --- the database thread ---------------------------------------------------------------------

from channels.db import DatabaseSyncToAsync  # noqa: E402

_thread_handler = DatabaseSyncToAsync.thread_handler


def _traced_thread_handler(self, loop, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    start = _now()
    try:
        return _thread_handler(self, loop, *args, **kwargs)
    finally:
        name = getattr(self.func, "__qualname__", None) or repr(self.func)
        record("db", name, start, _now(), threading.current_thread().name)


DatabaseSyncToAsync.thread_handler = _traced_thread_handler


# --- the chat's group commit -----------------------------------------------------------------

from meetings import consumers, services  # noqa: E402
from supportgroups import realtime  # noqa: E402

_messages_post = services.messages_post
_broadcast = threading.local()


def _traced_messages_post(*, sends):  # noqa: ANN001, ANN202
    _broadcast.times = [None, None]
    start = _now()
    try:
        return _messages_post(sends=sends)
    finally:
        b_start, b_end = _broadcast.times
        record("post", start, _now(), b_start, b_end, [s.client_id for s in sends])


services.messages_post = _traced_messages_post
_async_to_sync = realtime.async_to_sync


def _traced_async_to_sync(function):  # noqa: ANN001, ANN202
    converted = _async_to_sync(function)

    def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        times = getattr(_broadcast, "times", None)
        if times is not None and times[0] is None:
            times[0] = _now()
        try:
            return converted(*args, **kwargs)
        finally:
            if times is not None:
                times[1] = _now()

    return call


realtime.async_to_sync = _traced_async_to_sync

_on_send = consumers.RoomConsumer.on_send


async def _traced_on_send(self, frame: dict) -> None:  # noqa: ANN001
    received = _now()
    try:
        await _on_send(self, frame)
    finally:
        client_id = frame.get("client_id") or (frame.get("e2ee") or {}).get("client_id")
        record("recv", client_id, received, _now())


consumers.RoomConsumer.on_send = _traced_on_send


# --- the event loop --------------------------------------------------------------------------

_watching = [False]


async def _watch_loop() -> None:
    while True:
        due = _now() + 0.005
        await asyncio.sleep(0.005)
        late = _now() - due
        if late > 0.003:
            record("lag", due, late)


async def application(scope, receive, send):  # noqa: ANN001, ANN201
    if not _watching[0]:
        _watching[0] = True
        asyncio.get_running_loop().create_task(_watch_loop())
    return await _application(scope, receive, send)
