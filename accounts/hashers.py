"""Argon2 out of the app processes' way, so a burst of sign-ins never slows live chat.

Argon2 is meant to be expensive: about 100 MiB and a few hundred milliseconds of CPU per
sign-in, on 8 lane threads. It used to run on a thread of the Daphne niced to 19, and a
storm of 50 sign-ins in 30 s still raised the chat's p99 by half (``python -m
bench.storm``: the sign-ins without the hash cost the chat nothing, the hash alone
most of it). Linux applies a nice value only among the tasks of one autogroup (a
session) or cgroup, and the Daphnes run in sessions of their own: the niced hash
competed at full weight with the other Daphne, PostgreSQL and Redis.

Each app process therefore hands its hashes to one small worker process of its own
(accounts/argon2_worker.py), started on first use in its own session at nice 19 with its
autogroup niced too, so it runs only on CPU time nobody else wants; one hash at a time
per app process, so a storm queues instead of taking every core.

A sign-in that waits for its hash gives its database connection back to the pool first
(when it is not inside a transaction): queued behind the worker on a busy box, 25
sign-ins each holding one of a Daphne's 10 pooled connections left the chat's database
thread none, and every meeting stopped until the pool's timeout.
"""

import base64
import json
import subprocess
import sys
import threading
from pathlib import Path

from argon2 import exceptions
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.db import connections

WORKER_SCRIPT = Path(__file__).with_name("argon2_worker.py")


class BackgroundArgon2PasswordHasher(Argon2PasswordHasher):
    """Django's Argon2 hasher unchanged (same algorithm name and parameters, so existing
    hashes verify and are not rehashed), computed in this process's Argon2 worker."""

    def encode(self, password, salt):
        params = self.params()
        reply = argon2_worker().ask(
            op="hash",
            password=password.encode(),
            salt=salt.encode(),
            time_cost=params.time_cost,
            memory_cost=params.memory_cost,
            parallelism=params.parallelism,
            hash_len=params.hash_len,
        )
        return self.algorithm + reply["hash"]

    def verify(self, password, encoded):
        algorithm, rest = encoded.split("$", 1)
        assert algorithm == self.algorithm
        return argon2_worker().ask(op="verify", password=password.encode(), hash="$" + rest)["ok"]


class Argon2Worker:
    """This process's connection to its worker: one request at a time (callers queue on
    the lock); a worker that died is started again on the next request."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        """The worker's process id (started if it is not running)."""
        with self._lock:
            return self._running().pid

    def ask(self, *, password: bytes, **request) -> dict:
        line = json.dumps({**request, "password": _b64(password)}, default=_b64) + "\n"
        release_idle_database_connections()
        with self._lock:
            reply = self._exchange(line)
            if reply is None:  # the worker had died (killed, out of memory): once more
                self._stop()
                reply = self._exchange(line)
            if reply is None:
                self._stop()
                raise RuntimeError("the Argon2 worker ended without answering")
        if "error" in reply:
            raise getattr(exceptions, reply["error"], ValueError)(reply["message"])
        return reply

    def _exchange(self, line: str) -> dict | None:
        process = self._running()
        try:
            process.stdin.write(line)
            process.stdin.flush()
            answer = process.stdout.readline()
        except (BrokenPipeError, ValueError):
            return None
        return json.loads(answer) if answer else None

    def _running(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, str(WORKER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                # Its own session: its own autogroup, which it nices (argon2_worker.py).
                start_new_session=True,
            )
        return self._process

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


def release_idle_database_connections() -> None:
    """Give this thread's database connections back (to the pool, with one) unless a
    transaction is open on them: the next query takes one again."""
    for connection in connections.all(initialized_only=True):
        if (
            connection.connection is not None
            and connection.get_autocommit()
            and not connection.in_atomic_block
        ):
            connection.close()


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


_worker = Argon2Worker()


def argon2_worker() -> Argon2Worker:
    return _worker
