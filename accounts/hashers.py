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
import os
import secrets
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from argon2 import exceptions
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.core.exceptions import ValidationError
from django.db import connections

WORKER_SCRIPT = Path(__file__).with_name("argon2_worker.py")
# All the worker needs of the app's environment: none of its secrets (SECRET_KEY,
# FIELD_ENCRYPTION_KEYS, AUDIT_KEY, DATABASE_URL) reach a process that only hashes.
WORKER_ENVIRONMENT = ("PATH", "LANG")

BUSY_MESSAGE = "We're very busy right now \N{EM DASH} please try again in a moment."


class PasswordCheckBusy(ValidationError):
    """The worker did not hash in time (PASSWORD_HASH_TIMEOUT_SECONDS), or the queue before
    it was that long. A ValidationError, so a form that checks or sets a password answers
    it as a form error and re-renders; anywhere else supportgroups.middleware answers 503."""

    def __init__(self):
        super().__init__(BUSY_MESSAGE, code="password_check_busy")


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
            type=params.type.name,
        )
        return self.algorithm + reply["hash"]

    def verify(self, password, encoded):
        algorithm, rest = encoded.split("$", 1)
        assert algorithm == self.algorithm
        return argon2_worker().ask(op="verify", password=password.encode(), hash="$" + rest)["ok"]


class Argon2Worker:
    """This process's connection to its worker: one request at a time (callers queue on
    the lock, for at most PASSWORD_HASH_TIMEOUT_SECONDS); a worker that died, or was
    stopped for being too slow, is started again on the next request.

    Each exchange carries a random id the worker echoes: an answer that is not this
    request's, or any exception between writing and reading, stops the worker, so no
    answer is ever left in the pipe for the next caller to read as its own."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        """The worker's process id (started if it is not running)."""
        with self._lock:
            return self._running().pid

    def ask(self, *, password: bytes, **request) -> dict:
        request_id = secrets.token_hex(16)
        line = json.dumps(
            {**request, "password": _b64(password), "id": request_id}, default=_b64
        ).encode()
        release_idle_database_connections()
        timeout = settings.PASSWORD_HASH_TIMEOUT_SECONDS
        if not self._lock.acquire(timeout=timeout):
            raise PasswordCheckBusy
        try:
            reply = self._exchange(line, request_id, timeout)
            if reply is None:  # the worker had died (killed, out of memory): once more
                reply = self._exchange(line, request_id, timeout)
            if reply is None:
                raise RuntimeError("the Argon2 worker ended without answering")
        finally:
            self._lock.release()
        if "error" in reply:
            raise getattr(exceptions, reply["error"], ValueError)(reply["message"])
        return reply

    def _exchange(self, line: bytes, request_id: str, timeout: float) -> dict | None:
        """The worker's answer to one request; None when it had died (it is stopped).
        Raises PasswordCheckBusy after ``timeout`` seconds without an answer."""
        process = self._running()
        try:
            try:
                process.stdin.write(line + b"\n")
                process.stdin.flush()
            except BrokenPipeError:
                self._stop()
                return None
            answer = _read_line(process.stdout.fileno(), deadline=time.monotonic() + timeout)
            if answer is None:
                self._stop()
                return None
            reply = json.loads(answer)
            if reply.get("id") != request_id:
                raise RuntimeError("the Argon2 worker answered another request")
        except BaseException:
            self._stop()  # whatever is still in the pipe belongs to no one now
            raise
        return reply

    def _running(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                # -I: no accounts/ first on sys.path (accounts/selectors.py would shadow
                # the stdlib's), no PYTHON* variables, no user site.
                [sys.executable, "-I", str(WORKER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,
                env={name: os.environ[name] for name in WORKER_ENVIRONMENT if name in os.environ},
                # Its own session: its own autogroup, which it nices (argon2_worker.py).
                start_new_session=True,
            )
        return self._process

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            for pipe in (self._process.stdin, self._process.stdout):
                pipe.close()
            self._process = None

    def forget(self) -> None:
        """In a forked child: the parent's worker and lock are the parent's. Close this
        process's copies of the pipes (so the worker still sees its stdin close when the
        parent ends) without touching the worker itself."""
        process, self._process = self._process, None
        self._lock = threading.Lock()
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                pipe.close()
            process.returncode = 0  # not this process's child: never waited for here


def _read_line(fd: int, *, deadline: float) -> bytes | None:
    """One line from the pipe, waiting until ``deadline`` at most (PasswordCheckBusy
    then); None at end of file. Unbuffered: nothing read past the newline is kept."""
    received = b""
    while not received.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PasswordCheckBusy
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(remaining * 1000):
            raise PasswordCheckBusy
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        received += chunk
    return received


def release_idle_database_connections() -> None:
    """Give this thread's database connections back (to the pool, with one) unless a
    transaction is open on them: the next query takes one again."""
    for connection in connections.all(initialized_only=True):
        # (The attribute, not get_autocommit(): that would connect, and here only an
        # open connection matters.)
        if (
            connection.connection is not None
            and connection.autocommit
            and not connection.in_atomic_block
        ):
            connection.close()


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


_worker = Argon2Worker()
# A process forked from this one (a pre-forking server, multiprocessing) starts a worker of
# its own: sharing the parent's pipes would mix their requests and answers.
os.register_at_fork(after_in_child=_worker.forget)


def argon2_worker() -> Argon2Worker:
    return _worker
