"""The app as production runs it, plus two switches for ``python -m bench.storm`` (a
diagnostic harness; nothing here is part of the product or of ``make bench``):

- ``POST /__bench/argon2``: one password check against an Argon2 hash with the app's own
  hasher (where and how a sign-in's check runs, the same parameters), and nothing else of
  a sign-in: what the hash alone costs the chat;
- ``BENCH_STORM_CHEAP_HASH=1``: password checks compare the text instead of running
  Argon2, so a sign-in costs everything but the hash (diagnostic only: the bench's
  people all have the bench's one password).
"""

from __future__ import annotations

import asyncio
import os

from supportgroups.asgi import application as _application

HASH_PATH = "/__bench/argon2"
_encoded: list[str] = []


def _check_once() -> bool:
    from django.contrib.auth.hashers import check_password, make_password

    from bench.data import PASSWORD

    if not _encoded:
        _encoded.append(make_password(PASSWORD))
    return check_password(PASSWORD, _encoded[0])


if os.environ.get("BENCH_STORM_CHEAP_HASH") == "1":
    from django.contrib.auth.hashers import Argon2PasswordHasher
    from django.utils.crypto import constant_time_compare

    from accounts.hashers import BackgroundArgon2PasswordHasher
    from bench.data import PASSWORD as _PASSWORD

    def _cheap_verify(self, password, encoded) -> bool:  # noqa: ANN001, ARG001
        return constant_time_compare(password, _PASSWORD)

    Argon2PasswordHasher.verify = _cheap_verify
    BackgroundArgon2PasswordHasher.verify = _cheap_verify


async def application(scope, receive, send):  # noqa: ANN001
    if scope["type"] == "http" and scope["path"] == HASH_PATH:
        while (await receive()).get("more_body"):
            pass
        ok = await asyncio.to_thread(_check_once)
        await send({"type": "http.response.start", "status": 200 if ok else 500, "headers": []})
        await send({"type": "http.response.body", "body": b"ok" if ok else b"no"})
        return
    await _application(scope, receive, send)


# --- where the hash runs (diagnostic only): BENCH_STORM_HASHER=thread | session ------------
# ``thread``: as before issue 22's fix, on a thread of the Daphne niced to 19 (Linux applies
# the nice value only within the Daphne's own autogroup). ``session``: in the worker
# process, niced to 19, but in the Daphne's session and so its autogroup.

_hasher_variant = os.environ.get("BENCH_STORM_HASHER")
if _hasher_variant == "thread":
    import contextlib
    import threading

    from django.contrib.auth.hashers import Argon2PasswordHasher as _Django

    from accounts.hashers import BackgroundArgon2PasswordHasher as _Ours

    def _at_lowest_priority(function, *args):  # noqa: ANN001, ANN002, ANN202
        outcome = {}

        def run() -> None:
            with contextlib.suppress(AttributeError, OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            outcome["value"] = function(*args)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        return outcome["value"]

    _Ours.verify = lambda self, password, encoded: _at_lowest_priority(
        _Django.verify, self, password, encoded
    )
elif _hasher_variant == "session":
    import subprocess
    import sys

    from accounts import hashers

    _IN_SESSION = (
        "import os; os.setpriority(os.PRIO_PROCESS, 0, 19); import sys;"
        " from accounts.argon2_worker import serve; serve(sys.stdin, sys.stdout)"
    )

    def _running(self):  # noqa: ANN001, ANN202
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _IN_SESSION],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        return self._process

    hashers.Argon2Worker._running = _running
