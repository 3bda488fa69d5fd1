"""Argon2 at the lowest CPU priority, so a burst of sign-ins never starves live chat.

Argon2 is meant to be expensive: about 100 MiB and a few hundred milliseconds of CPU per
sign-in. On a small box, fifty people signing in at once would otherwise take the CPU
from the Daphne event loops that carry the meetings, and every room would stutter
(measured in `make bench`, "login storm"). Linux applies nice values per thread, so the
hash runs on its own short-lived thread niced to 19: chat keeps its priority, sign-ins
simply take a little longer when the box is busy.
"""

import contextlib
import os
import threading

from django.contrib.auth.hashers import Argon2PasswordHasher

LOWEST_PRIORITY = 19


class BackgroundArgon2PasswordHasher(Argon2PasswordHasher):
    """Django's Argon2 hasher unchanged (same algorithm name and parameters, so existing
    hashes verify and are not rehashed), computed at the lowest CPU priority. The Argon2
    library's lane threads are created by the niced thread and inherit its priority."""

    def encode(self, password, salt):
        return run_at_lowest_priority(super().encode, password, salt)

    def verify(self, password, encoded):
        return run_at_lowest_priority(super().verify, password, encoded)


def run_at_lowest_priority(function, *args):
    """Call `function(*args)` on a new thread niced to 19 and wait for it.

    The caller's own priority is untouched. Where nice cannot be set (not Linux, or a
    sandbox forbids it) the function still runs, at normal priority."""
    outcome = {}

    def run():
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name="argon2-lowest-priority")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
