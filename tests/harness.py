"""Run the test suite against throwaway PostgreSQL and Redis servers.

    python -m tests.harness [pytest args...]

The suite must run against the same kind of services as production (DESIGN.md,
"Testing"), but never against a developer's real databases. So every run gets a fresh
temporary directory holding its own PostgreSQL cluster and Redis server, on free loopback
ports, with freshly generated secrets; both are stopped and the directory deleted when
pytest is done, whatever happens.
"""

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DB_NAME = "supportgroups"
DB_USER = "supportgroups"
APP_DB_USER = "supportgroups_app"
STARTUP_TIMEOUT = 30  # seconds; a cold initdb + start takes ~2 s on a laptop


class ServiceError(Exception):
    """A test service did not start; the message says which and why."""


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    # Ask the kernel for an unused port. Another process could grab it before our server
    # binds it, but on a test machine that race is rare and fails loudly, not silently.
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def log_tail(path, lines=20):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def postgres_bin_dir():
    # Debian installs each major version side by side; use the newest.
    candidates = [
        p for p in glob.glob("/usr/lib/postgresql/*/bin/postgres") if Path(p).parts[-3].isdigit()
    ]
    candidates.sort(key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise ServiceError(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres); "
        "run scripts/install-test-deps.sh"
    )


def version_of(command):
    output = subprocess.run(
        [command, "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"(\d+\.\d+(\.\d+)?)", output)
    return match.group(1) if match else "?"


class Services:
    """Owns the temp dir and server processes; stop() is safe to call at any point."""

    def __init__(self):
        # Under /tmp, not $TMPDIR: when we run as root the `postgres` user must be able
        # to reach its data directory, and /root/... is closed to it.
        self.tmp = Path(tempfile.mkdtemp(prefix="supportgroups-test-", dir="/tmp"))
        self.tmp.chmod(0o755)
        self.processes = []  # (name, Popen, stop callable)
        self.pg_bin = None
        self.pg_port = free_port()
        self.redis_port = free_port()
        while self.redis_port == self.pg_port:
            self.redis_port = free_port()
        self.db_password = secrets.token_urlsafe(16)
        self.redis_log = self.tmp / "redis.log"

    # -- PostgreSQL ------------------------------------------------------------------

    def as_postgres_user(self, argv):
        # initdb and postgres refuse to run as root, so drop to the `postgres` system
        # user that Debian's postgresql package creates.
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", "postgres", "--", *argv]

    def start_postgres(self, *, durable: bool = False, settings: dict[str, str] | None = None):
        """``durable``: commits wait for the disk, as in production (the benchmarks);
        tests skip it, since durability is pointless for a throwaway cluster and costs
        seconds. ``settings``: more server settings (e.g. bench.sendpath's statistics)."""
        self.pg_bin = postgres_bin_dir()
        pg_dir = self.tmp / "pg"
        pg_dir.mkdir()
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError(
                    "running as root but there is no `postgres` system user to run the "
                    "test database as; install the postgresql package"
                ) from None
            os.chown(pg_dir, user.pw_uid, user.pw_gid)
        data = pg_dir / "data"
        pg_log = self.tmp / "postgres.log"
        pg_log.touch()
        pg_log.chmod(0o666)  # written by the postgres user when we are root

        with open(pg_log, "ab") as out:
            initdb = subprocess.run(
                self.as_postgres_user(
                    [
                        str(self.pg_bin / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        "postgres",
                        # Trust is fine: the cluster only listens on loopback and a socket
                        # in our private temp dir, and lives for one test run.
                        "-A",
                        "trust",
                        "-E",
                        "UTF8",
                        "--locale=C",
                        "--no-sync",
                    ]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=pg_dir,
            )
        if initdb.returncode != 0:
            raise ServiceError(f"PostgreSQL initdb failed:\n{log_tail(pg_log)}")

        with open(pg_log, "ab") as out:
            proc = subprocess.Popen(
                self.as_postgres_user(
                    [
                        str(self.pg_bin / "postgres"),
                        "-D",
                        str(data),
                        "-p",
                        str(self.pg_port),
                        "-c",
                        f"listen_addresses={HOST}",
                        "-c",
                        f"unix_socket_directories={pg_dir}",
                        *(
                            []
                            if durable
                            else [
                                "-c",
                                "fsync=off",
                                "-c",
                                "synchronous_commit=off",
                                "-c",
                                "full_page_writes=off",
                            ]
                        ),
                        *(f"-c{name}={value}" for name, value in (settings or {}).items()),
                    ]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=pg_dir,
                # Own session: a Ctrl-C meant for pytest must not kill the database under
                # it; we stop it ourselves afterwards.
                start_new_session=True,
            )
        self.processes.append(("PostgreSQL", proc, lambda: self.stop_postgres(proc, data)))

        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise ServiceError(
                    f"PostgreSQL exited with code {proc.returncode} while starting:\n"
                    f"{log_tail(pg_log)}"
                )
            ready = subprocess.run(
                [str(self.pg_bin / "pg_isready"), "-q", "-h", HOST, "-p", str(self.pg_port)],
            )
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"PostgreSQL did not accept connections on {HOST}:{self.pg_port} within "
                    f"{STARTUP_TIMEOUT}s:\n{log_tail(pg_log)}"
                )
            time.sleep(0.1)

        # The app connects as an ordinary role, like in production, so tests catch
        # anything that only works as a superuser. CREATEDB lets pytest-django create
        # and drop test_supportgroups.
        self.psql(
            f"CREATE ROLE {DB_USER} LOGIN CREATEDB PASSWORD '{self.db_password}'",
            f"CREATE DATABASE {DB_NAME} OWNER {DB_USER}",
        )

    def psql(self, *statements):
        for statement in statements:
            result = subprocess.run(
                [
                    str(self.pg_bin / "psql"),
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    HOST,
                    "-p",
                    str(self.pg_port),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    statement,
                ],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise ServiceError(f"PostgreSQL setup failed: {statement}\n{result.stderr}")

    @staticmethod
    def stop_postgres(proc, data):
        # With runuser in between, proc is runuser, not the postmaster; signal the
        # postmaster itself (its pid is the first line of postmaster.pid). As root we may
        # signal the postgres user's processes.
        pid = proc.pid
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        # SIGINT = "fast" shutdown: disconnect clients, exit. Nothing needs to be kept.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()

    # -- Redis -----------------------------------------------------------------------

    def start_redis(self):
        redis_server = shutil.which("redis-server")
        if not redis_server:
            raise ServiceError("redis-server is not installed; run scripts/install-test-deps.sh")
        redis_dir = self.tmp / "redis"
        redis_dir.mkdir()
        with open(self.redis_log, "ab") as out:
            proc = subprocess.Popen(
                [
                    redis_server,
                    "--port",
                    str(self.redis_port),
                    "--bind",
                    HOST,
                    "--save",
                    "",  # no snapshots: nothing here is worth keeping
                    "--appendonly",
                    "no",
                    "--dir",
                    str(redis_dir),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=redis_dir,
                start_new_session=True,
            )
        self.processes.append(("Redis", proc, lambda: self.stop_plain(proc)))

    def wait_for_redis(self):
        proc = next(p for name, p, _ in self.processes if name == "Redis")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise ServiceError(
                    f"Redis exited with code {proc.returncode} while starting:\n"
                    f"{log_tail(self.redis_log)}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((HOST, self.redis_port), timeout=1) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"Redis did not answer PING on {HOST}:{self.redis_port} within "
                    f"{STARTUP_TIMEOUT}s:\n{log_tail(self.redis_log)}"
                )
            time.sleep(0.05)

    @staticmethod
    def stop_plain(proc):
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # -- lifecycle -------------------------------------------------------------------

    def stop(self):
        for name, _proc, stop in reversed(self.processes):
            try:
                stop()
            except Exception as exc:  # keep going: the other server must stop too
                log(f"harness: could not stop {name}: {exc}")
        self.processes = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    def env(self):
        """The environment the app and the tests run with."""
        env = os.environ.copy()
        secret_chars = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
        env.update(
            {
                "DATABASE_URL": (
                    f"postgres://{DB_USER}:{self.db_password}@{HOST}:{self.pg_port}/{DB_NAME}"
                ),
                "REDIS_URL": f"redis://{HOST}:{self.redis_port}/0",
                # Only for tests that must act as a superuser, e.g. to prove that tampering
                # with the append-only audit table is detected.
                "TEST_PG_SUPERUSER_URL": f"postgres://postgres@{HOST}:{self.pg_port}/postgres",
                # Fresh keys every run: no test may depend on a particular key.
                "SECRET_KEY": "".join(secrets.choice(secret_chars) for _ in range(50)),
                "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "BLIND_INDEX_KEY": secrets.token_urlsafe(32),
                "AUDIT_KEY": secrets.token_urlsafe(32),
                # A developer's .env (written by `make run`) must not leak into tests.
                "SUPPORTGROUPS_IGNORE_DOTENV": "true",
                # Production-like settings, minus HTTPS (the live server speaks plain HTTP).
                "DEBUG": "false",
                "SECURE_COOKIES": "false",
                "SECURE_SSL_REDIRECT": "false",
                "ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
                "STATIC_ROOT": str(self.tmp / "static"),
                # No DJANGO_ALLOW_ASYNC_UNSAFE here: it would hide async-unsafe ORM calls in
                # consumers. tests/e2e/conftest.py allows them only while Playwright runs.
            }
        )
        return env


def create_app_role(services):
    """The role the app serves as, beside the owner (DB_USER) that migrates: as in
    production (README, "Database roles"). Every migrate grants it data privileges only;
    the audit tests connect as it to prove what it cannot do. Returns the environment
    that names it."""
    services.psql(f"CREATE ROLE {APP_DB_USER} LOGIN PASSWORD '{services.db_password}'")
    return {
        "DATABASE_APP_ROLE": APP_DB_USER,
        # Without a database name: tests connect to the test database they run in.
        "TEST_PG_APP_URL": (
            f"postgres://{APP_DB_USER}:{services.db_password}@{HOST}:{services.pg_port}/postgres"
        ),
    }


class Terminated(Exception):
    """We got SIGTERM (e.g. from a CI timeout)."""


def on_sigterm(signum, frame):
    # Turn SIGTERM into an exception so the finally blocks stop the servers.
    raise Terminated


# Options after which the harness leaves the number of workers alone: the caller's own
# xdist options, or wishes that only make sense in one process (a debugger; output shown as
# it is printed, which xdist's workers would swallow; a plain list of what was collected).
CHOOSES_WORKERS = {"-n", "--numprocesses", "--dist", "-d", "--tx", "--maxprocesses"}
NEEDS_ONE_PROCESS = {"--pdb", "--trace", "-s", "--capture", "--co", "--collect-only"}
# Short options that take a value: in a group such as `-xvk name`, the rest is the value.
SHORT_WITH_VALUE = set("kmrpcoWn")


def _options(args):
    """Each option in args as its long or single-letter form, values dropped."""
    for previous, arg in zip([None, *args], args, strict=False):
        if arg.startswith("--"):
            yield arg.split("=", 1)[0]
        elif arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                yield f"-{letter}"
                if letter in SHORT_WITH_VALUE:
                    break
        elif previous == "-p" and arg == "no:xdist":
            yield "-n"  # xdist switched off: as good as choosing no workers


def with_workers(args):
    """pytest's arguments, with one pytest-xdist worker per core (`-n auto`, capped in
    tests/conftest.py) unless the caller chose otherwise. Each worker has its own test
    database on the one PostgreSQL and its own database on the one Redis (tests/conftest.py).
    `--dist loadgroup` hands tests out one at a time, except those marked
    `@pytest.mark.xdist_group(name)`, which all run in one worker."""
    options = set(_options(args))
    if options & (CHOOSES_WORKERS | NEEDS_ONE_PROCESS) or len(os.sched_getaffinity(0)) < 2:
        return list(args)
    return ["-n", "auto", "--dist", "loadgroup", *args]


def run_pytest(args, env):
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=REPO_ROOT, env=env)
    try:
        return proc.wait()
    except (KeyboardInterrupt, Terminated) as interruption:
        # Ctrl-C reaches pytest too (same process group); SIGTERM only reached us, so
        # pass it on as a Ctrl-C. Either way pytest then runs its teardown (stopping
        # Daphne, dropping the test database) before the servers go away.
        if isinstance(interruption, Terminated):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        if proc.poll() is None:  # interrupted twice
            proc.kill()
            proc.wait()


def main(args):
    signal.signal(signal.SIGTERM, on_sigterm)
    # Shells start background jobs with SIGINT ignored, and children inherit that;
    # pytest must stay interruptible so that it can run its teardown when we ask.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    services = Services()
    collect = None
    try:
        env = services.env()
        # Redis starts instantly; launch it first so it comes up while initdb runs.
        services.start_redis()
        # Production serves static files through whitenoise's manifest storage, which
        # needs collected files, and the browser tests run with DEBUG off like production.
        # collectstatic needs neither server, so it runs while PostgreSQL initialises.
        collect_log = services.tmp / "collectstatic.log"
        with open(collect_log, "wb") as out:
            collect = subprocess.Popen(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        services.start_postgres()
        env.update(create_app_role(services))
        services.wait_for_redis()
        log(
            f"test services: PostgreSQL {version_of(str(services.pg_bin / 'postgres'))} on "
            f"{HOST}:{services.pg_port}, Redis {version_of('redis-server')} on "
            f"{HOST}:{services.redis_port} (ready in {time.monotonic() - started:.1f}s)"
        )
        if collect.wait() != 0:
            log(f"harness: collectstatic failed:\n{log_tail(collect_log, 40)}")
            return 1

        code = run_pytest(with_workers(args), env)
        if code == 5:
            log("harness: pytest collected no tests; treating that as a failure")
            return 1
        return code
    except ServiceError as exc:
        log(f"harness: {exc}")
        return 1
    except (KeyboardInterrupt, Terminated):
        log("harness: interrupted; stopping the test services")
        return 130
    finally:
        if collect is not None and collect.poll() is None:
            collect.kill()
            collect.wait()
        services.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
