"""The Argon2 worker: a small process that hashes and checks passwords for one app
process, one at a time, at the lowest CPU priority of the whole box.

Started by accounts/hashers.py (``python -I accounts/argon2_worker.py``, isolated: no
accounts/ on sys.path, where accounts/selectors.py would shadow the stdlib's; in a session
of its own, with none of the app's environment); it imports nothing of the app. One
request per line on stdin, one answer per line on stdout (JSON; passwords and salts travel
as base64 of their bytes; the request's ``id`` is echoed so the caller can tell its answer
from a stale one). It exits when stdin closes, that is when the app process that started
it ends.

Why a process and not a niced thread (README "Performance", login storm): Linux applies
a nice value only among the tasks of the same autogroup (the session) or cgroup, so a
thread niced to 19 inside a Daphne still competed at full weight with the other Daphne,
PostgreSQL and Redis, and a storm of sign-ins slowed every meeting. This process sits
in its own session, whose autogroup it niced to 19 too: it gets a CPU only when nothing
else wants it, wherever autogroups are on (desktops, the bench box) or not (containers).
"""

import base64
import contextlib
import json
import os
import sys

from argon2 import PasswordHasher, exceptions, low_level

LOWEST_PRIORITY = 19


def lower_own_priority() -> None:
    """Nice 19 for this process (its Argon2 lane threads inherit it) and, where the
    kernel groups by session, for its autogroup; where either cannot be set it still runs."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, LOWEST_PRIORITY)
    # The autogroup belongs to the session: nice it only if the session is this process's
    # own (started with start_new_session), never the app's.
    if os.getsid(0) == os.getpid():
        with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(LOWEST_PRIORITY))


def answer(request: dict) -> dict:
    password = base64.b64decode(request["password"])
    if request["op"] == "hash":
        encoded = low_level.hash_secret(
            password,
            base64.b64decode(request["salt"]),
            time_cost=request["time_cost"],
            memory_cost=request["memory_cost"],
            parallelism=request["parallelism"],
            hash_len=request["hash_len"],
            type=low_level.Type[request["type"]],
        )
        return {"hash": encoded.decode("ascii")}
    try:
        return {"ok": PasswordHasher().verify(request["hash"], password)}
    except exceptions.VerificationError:
        return {"ok": False}


def serve(requests, answers) -> None:  # noqa: ANN001
    for line in requests:
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            reply = answer(request)
        except Exception as error:  # noqa: BLE001 - the caller raises it again
            reply = {"error": type(error).__name__, "message": str(error)}
        answers.write(json.dumps({**reply, "id": request_id}) + "\n")
        answers.flush()


if __name__ == "__main__":
    lower_own_priority()
    serve(sys.stdin, sys.stdout)
