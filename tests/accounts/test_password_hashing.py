"""Passwords are Argon2id with Django's parameters, hashed by a worker process of each app
process that runs at the lowest CPU priority of the whole box, one hash at a time, so a
crowd signing in cannot slow live meetings (accounts/hashers.py, README "Performance")."""

import contextlib
import os
import signal
import threading
from pathlib import Path

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, check_password, make_password
from django.test import Client, override_settings

import supportgroups.settings as project_settings
from accounts.hashers import (
    BackgroundArgon2PasswordHasher,
    PasswordCheckBusy,
    argon2_worker,
)
from tests.factories import make_person

PASSWORD = "quiet-heron-lantern"


@pytest.fixture
def project_hashers(settings):
    # The suite's conftests swap in a cheap hasher; these tests check the real one.
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS


def autogroup_nice(pid):
    """The nice value of the process's autogroup (None where the kernel has none).

    The file reads "/autogroup-12 nice 0"; it is missing on kernels without autogroups and
    empty for a task whose scheduling the kernel does not group by session (autogroups
    switched off, or the task in a cgroup of its own, as in many containers and CI boxes)."""
    try:
        text = Path(f"/proc/{pid}/autogroup").read_text()
    except OSError:
        return None
    _, found, nice = text.partition(" nice ")
    return int(nice) if found else None


def test_the_project_hashes_with_the_background_hasher_first():
    assert project_settings.PASSWORD_HASHERS[0] == "accounts.hashers.BackgroundArgon2PasswordHasher"
    # Only one hasher may claim "argon2": Django keeps the last one it sees per algorithm.
    algorithms = [h.rsplit(".", 1)[1] for h in project_settings.PASSWORD_HASHERS]
    assert "Argon2PasswordHasher" not in algorithms


def test_hashing_runs_in_a_worker_process_at_the_lowest_priority_of_the_box(project_hashers):
    own_priority = os.getpriority(os.PRIO_PROCESS, 0)

    make_password(PASSWORD)
    pid = argon2_worker().pid

    assert pid != os.getpid()
    # Nice 19 for the process and its lane threads; a session (so an autogroup) of its
    # own, niced too: a thread niced inside the app process yields only to that process.
    assert os.getpriority(os.PRIO_PROCESS, pid) == 19
    assert os.getsid(pid) == pid != os.getsid(0)
    if autogroup_nice(os.getpid()) is not None:
        assert autogroup_nice(pid) == 19
        assert autogroup_nice(os.getpid()) == 0
    assert os.getpriority(os.PRIO_PROCESS, 0) == own_priority
    # The app process itself never starts a hashing thread.
    assert all(t.name != "argon2-lowest-priority" for t in threading.enumerate())


def test_one_worker_serves_every_hash_of_the_process(project_hashers):
    encoded = make_password(PASSWORD)
    pid = argon2_worker().pid

    assert check_password(PASSWORD, encoded)
    make_password("another-long-passphrase")

    assert argon2_worker().pid == pid


def test_hashes_are_plain_argon2id_that_django_verifies_without_rehashing(project_hashers):
    encoded = make_password(PASSWORD)

    assert encoded.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")
    # Django's own hasher verifies it: nothing is locked to our class.
    assert Argon2PasswordHasher().verify(PASSWORD, encoded)
    assert not Argon2PasswordHasher().verify(PASSWORD + "s", encoded)
    assert not BackgroundArgon2PasswordHasher().must_update(encoded)

    rehashed = []
    assert check_password(PASSWORD, encoded, setter=rehashed.append)
    assert rehashed == []  # same algorithm and parameters: no rehash at next sign-in
    assert not check_password("wrong", encoded)


def test_the_same_salt_gives_django_s_own_hash(project_hashers):
    salt = "c2FsdHNhbHRzYWx0"

    assert BackgroundArgon2PasswordHasher().encode(
        "pässwörd ☂ long enough", salt
    ) == Argon2PasswordHasher().encode("pässwörd ☂ long enough", salt)


def test_existing_django_argon2_hashes_still_verify(project_hashers):
    legacy = Argon2PasswordHasher().encode(PASSWORD, "c2FsdHNhbHRzYWx0")

    assert check_password(PASSWORD, legacy)
    assert not check_password(PASSWORD.upper(), legacy)


@pytest.mark.parametrize(
    "broken",
    [
        "argon2$argon2id$not-a-hash",
        "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$dG9vLXNob3J0",
        "argon2$argon2id$v=19$m=1,t=2,p=8$c2FsdHNhbHRzYWx0$" + "A" * 43,
        "argon2$scrypt$v=19$m=102400,t=2,p=8$c2FsdHNhbHRzYWx0$" + "A" * 43,
    ],
)
def test_a_broken_hash_fails_as_with_django_s_hasher(project_hashers, broken):
    def outcome(hasher):
        try:
            return hasher.verify(PASSWORD, broken)
        except Exception as error:  # noqa: BLE001 - the outcome compared
            return type(error)

    assert outcome(BackgroundArgon2PasswordHasher()) == outcome(Argon2PasswordHasher())
    # The worker is still there for the next one.
    assert check_password(PASSWORD, make_password(PASSWORD))


def test_a_worker_that_died_is_replaced_on_the_next_hash(project_hashers):
    encoded = make_password(PASSWORD)
    first = argon2_worker().pid
    os.kill(first, signal.SIGKILL)

    assert check_password(PASSWORD, encoded)
    assert argon2_worker().pid != first


def test_threads_signing_in_at_once_each_get_their_own_answer(project_hashers):
    """One hash at a time goes through the pipe: concurrent callers queue, and no caller
    reads another's answer."""
    passwords = [f"{PASSWORD}-{n}" for n in range(4)]
    hashes = {password: make_password(password) for password in passwords}
    results = {}

    def check(password, against):
        results[(password, against)] = check_password(password, hashes[against])

    threads = [
        threading.Thread(target=check, args=(password, against))
        for password in passwords
        for against in passwords[:2]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == {(p, a): p == a for p in passwords for a in passwords[:2]}


def test_signing_in_through_the_form_checks_the_password_in_the_worker(db, project_hashers):
    person = make_person("calm-lantern", password=PASSWORD)
    worker = argon2_worker().pid
    cpu_before = _process_cpu_ticks(worker)

    response = Client().post("/accounts/login/", {"login": person.username, "password": PASSWORD})

    assert response.status_code == 302
    assert argon2_worker().pid == worker
    assert _process_cpu_ticks(worker) > cpu_before  # Argon2 ran there, not here


def _process_cpu_ticks(pid):
    """utime + stime of the process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_a_worker_started_in_the_app_s_own_session_leaves_its_priority_alone():
    """The worker nices its autogroup only when the session is its own: started any other
    way (by hand, under a process manager) it must not lower the app's priority with it."""
    import json
    import subprocess
    import sys

    from accounts.hashers import WORKER_SCRIPT

    ours = autogroup_nice(os.getpid())
    worker = subprocess.Popen(
        [sys.executable, "-I", str(WORKER_SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # One answer: its start-up (and any change of priority) is over.
        worker.stdin.write(json.dumps({"op": "verify", "password": "", "hash": "x"}) + "\n")
        worker.stdin.flush()
        assert "error" in json.loads(worker.stdout.readline())

        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 19
        assert autogroup_nice(os.getpid()) == ours
    finally:
        worker.kill()
        worker.wait()
        if ours is not None and autogroup_nice(os.getpid()) != ours:
            Path("/proc/self/autogroup").write_text(str(ours))  # undo the damage


@pytest.mark.django_db(transaction=True)
def test_a_sign_in_waiting_for_its_hash_holds_no_database_connection(project_hashers):
    """Sign-ins queued behind the worker on a busy box must not hold the pool's
    connections: the chat's database thread needs one for every message."""
    from django.db import connection

    from accounts.models import User

    encoded = make_password(PASSWORD)
    assert not User.objects.filter(username="nobody-here").exists()
    assert connection.connection is not None

    assert check_password(PASSWORD, encoded)

    assert connection.connection is None  # given back before the hash
    assert not User.objects.filter(username="nobody-here").exists()  # and taken again


@pytest.mark.django_db(transaction=True)
def test_a_hash_inside_a_transaction_keeps_the_transaction(project_hashers):
    from django.db import connection, transaction

    from accounts.models import User

    encoded = make_password(PASSWORD)
    with transaction.atomic():
        person = make_person("calm-heron", password=PASSWORD)

        assert check_password(PASSWORD, encoded)

        assert connection.connection is not None
        assert User.objects.filter(pk=person.pk).exists()  # still in the same transaction
    assert User.objects.filter(pk=person.pk).exists()


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@contextlib.contextmanager
def worker_stalled():
    """The worker stopped (SIGSTOP) as if the box gave it no CPU; resumed afterwards if it
    is still there."""
    pid = argon2_worker().pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def stalled_worker(project_hashers):
    with worker_stalled() as pid:
        yield pid


def test_a_stalled_worker_is_replaced_and_the_check_answers_busy(stalled_worker):
    encoded = Argon2PasswordHasher().encode(PASSWORD, "c2FsdHNhbHRzYWx0")

    # The deadline shrunk so the test does not wait 20 s.
    with override_settings(PASSWORD_HASH_TIMEOUT_SECONDS=0.5), pytest.raises(PasswordCheckBusy):
        check_password(PASSWORD, encoded)

    assert _gone(stalled_worker)  # killed, not left stuck
    assert check_password(PASSWORD, encoded)  # a new worker for the next request
    assert argon2_worker().pid != stalled_worker


def test_a_caller_queued_too_long_behind_another_answers_busy(project_hashers):
    encoded = Argon2PasswordHasher().encode(PASSWORD, "c2FsdHNhbHRzYWx0")
    worker = argon2_worker()
    worker._lock.acquire()  # another request of this process holds the worker
    try:
        with override_settings(PASSWORD_HASH_TIMEOUT_SECONDS=0.2), pytest.raises(PasswordCheckBusy):
            check_password(PASSWORD, encoded)
    finally:
        worker._lock.release()
    assert check_password(PASSWORD, encoded)


def test_signing_in_while_the_worker_is_stalled_answers_busy_on_the_form(db, project_hashers):
    person = make_person("calm-otter", password=PASSWORD)
    with worker_stalled(), override_settings(PASSWORD_HASH_TIMEOUT_SECONDS=0.5):
        response = Client().post(
            "/accounts/login/", {"login": person.username, "password": PASSWORD}
        )

    assert response.status_code == 200  # the form again, not a 500
    assert "We&#x27;re very busy right now" in response.content.decode()
    assert response.context["form"].non_field_errors() == [
        "We're very busy right now \N{EM DASH} please try again in a moment."
    ]
    assert f'value="{person.username}"' in response.content.decode()  # nothing lost
    assert "_auth_user_id" not in Client().session

    again = Client().post("/accounts/login/", {"login": person.username, "password": PASSWORD})
    assert again.status_code == 302


def test_an_answer_interrupted_by_an_exception_never_reaches_the_next_caller(project_hashers):
    """An exception between writing a request and reading its answer (a signal, a
    timeout, a client gone) must not leave that answer in the pipe: the next caller
    would read "ok" for someone else's password."""
    encoded = Argon2PasswordHasher().encode(PASSWORD, "c2FsdHNhbHRzYWx0")
    stalled = argon2_worker().pid

    class Interrupted(BaseException):
        pass

    def interrupt(signum, frame):  # noqa: ARG001
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    os.kill(stalled, signal.SIGSTOP)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted):
            check_password(PASSWORD, encoded)  # the right password: its answer is "ok"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if not _gone(stalled):
            os.kill(stalled, signal.SIGCONT)  # the old code's worker answers now

    assert not check_password("someone-else-s-wrong-password", encoded)
    assert check_password(PASSWORD, encoded)


def test_the_worker_gets_none_of_the_app_s_secrets(project_hashers, monkeypatch):
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "AUDIT_KEY", "DATABASE_URL"):
        monkeypatch.setenv(name, f"secret-{name.lower()}")
    os.kill(argon2_worker().pid, signal.SIGKILL)  # the next one starts with this environment

    make_password(PASSWORD)
    pid = argon2_worker().pid

    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    assert names <= {"PATH", "LANG"}
    assert b"secret-" not in b"".join(environ)
    # Isolated: accounts/ is not first on its sys.path (accounts/selectors.py).
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1] == b"-I"


def test_a_forked_process_starts_a_worker_of_its_own(project_hashers):
    """A child forked while the parent's worker is busy (its lock held) must not wait on
    the parent's lock nor share its pipes."""
    import select

    parent_worker = argon2_worker().pid
    readable, writable = os.pipe()
    argon2_worker()._lock.acquire()  # a request of the parent in flight at fork time
    try:
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            try:
                os.write(writable, str(argon2_worker().pid).encode())
            finally:
                os._exit(0)
        ready, _, _ = select.select([readable], [], [], 10)
        answer = os.read(readable, 64).decode() if ready else None
    finally:
        argon2_worker()._lock.release()
        os.close(writable)
    try:
        assert answer is not None, "the child waited on the parent's lock"
        assert int(answer) != parent_worker
    finally:
        if answer is None:
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(readable)
        if answer is not None and not _gone(int(answer)):
            os.kill(int(answer), signal.SIGKILL)
    assert argon2_worker().pid == parent_worker


BUSY = "We're very busy right now \N{EM DASH} please try again in a moment."


def test_signing_up_while_the_worker_is_stalled_answers_busy_on_the_form(
    db, stalled_worker, settings
):
    from accounts.models import User

    settings.PASSWORD_HASH_TIMEOUT_SECONDS = 0.5
    response = Client().post(
        "/accounts/signup/",
        {"username": "Patient-Wren", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 200  # the form again, not a 500
    assert response.context["form"].non_field_errors() == [BUSY]
    assert 'value="Patient-Wren"' in response.content.decode()  # nothing lost
    assert not User.objects.filter(username__iexact="Patient-Wren").exists()


def test_a_password_re_check_while_the_worker_is_stalled_answers_busy(db, project_hashers):
    from privacy.forms import LegalDisclosureForm

    person = make_person("calm-badger", password=PASSWORD)
    with worker_stalled(), override_settings(PASSWORD_HASH_TIMEOUT_SECONDS=0.5):
        form = LegalDisclosureForm(person, {"password": PASSWORD})
        assert not form.is_valid()

    assert form.errors["password"] == [BUSY]
    assert not form.password_failed  # not counted as a wrong password
