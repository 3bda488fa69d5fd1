"""The app "as in production", started by the benchmark itself.

Throwaway PostgreSQL and Redis come from tests/harness.py (the same OS binaries and the
same cleanup as `make test`); on top of them run two Daphne processes started like the
production image's command (no access log, no ``--proxy-headers``) with DEBUG off, real
keys and the bench-only echo route switched on. The benchmark stands where production's
reverse proxy stands, so its address is the one trusted proxy (``TRUSTED_PROXIES``): the
login storm's people come from their own addresses (``X-Forwarded-For``), as they would
in production, and the per-address login rate limit counts each of them, not the bench.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.harness import HOST, REPO_ROOT, ServiceError, Services, free_port, log_tail, version_of

STARTUP_TIMEOUT = 30  # seconds for a Daphne to answer /healthz

_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def app_env(services: Services) -> dict[str, str]:
    """The environment of every app process (Daphnes and this one): the harness's
    production-like settings, real random keys, and the bench-only echo route."""
    env = services.env()
    env.pop("TEST_PG_SUPERUSER_URL", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "supportgroups.settings",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "BENCHMARK_ENDPOINTS": "true",
            "PYTHONUNBUFFERED": "1",
            # The bench is the proxy (supportgroups/hardening.py ForwardedHeadersMiddleware).
            "TRUSTED_PROXIES": HOST,
        }
    )
    return env


class Daphne:
    """One `python -m supportgroups.serve` (Daphne) process, as the production image runs it."""

    def __init__(
        self,
        env: dict[str, str],
        log_dir: Path,
        name: str,
        app: str = "supportgroups.asgi:application",
    ):
        self.port = free_port()
        self.name = name
        self.origin = f"http://{HOST}:{self.port}"
        self.ws_base = f"ws://{HOST}:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "supportgroups.serve",
                    "-v",
                    "0",
                    "-b",
                    HOST,
                    "-p",
                    str(self.port),
                    app,
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_until_healthy(self, deadline: float) -> None:
        last = "no answer"
        while True:
            if self.proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with code {self.proc.returncode}:\n"
                    f"{log_tail(self.log_path, 40)}"
                )
            try:
                with _no_proxy.open(f"{self.origin}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except OSError as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.name} did not answer /healthz ({last}):\n{log_tail(self.log_path, 40)}"
                )
            time.sleep(0.1)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise ServiceError(
                f"{self.name} died (code {self.proc.returncode}):\n{log_tail(self.log_path, 40)}"
            )

    def cpu_seconds(self) -> float:
        """utime + stime of the process, from /proc/<pid>/stat."""
        return process_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _stat(pid: int) -> list[str]:
    # After the ")" of the command name: state is field 3, ppid 4, utime 14, stime 15,
    # cutime 16, cstime 17 (so indexes 0, 1, 11, 12, 13, 14 here).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU of a server and its direct children, living or exited (PostgreSQL's backends)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except (OSError, IndexError):
            continue
        if int(entry.name) == root:
            ticks += sum(int(v) for v in fields[11:15])  # own + exited children
        elif int(fields[1]) == root:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def box_cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


class Stack:
    """PostgreSQL + Redis (tests.harness) and two Daphnes; stop() cleans up everything."""

    def __init__(self, log=print):
        self.log = log
        self.services = Services()
        self.daphnes: list[Daphne] = []
        self.env: dict[str, str] = {}
        self.log_dir = self.services.tmp / "logs"

    def start_services(self, pg_settings: dict[str, str] | None = None) -> dict[str, str]:
        started = time.monotonic()
        self.log_dir.mkdir()
        self.env = app_env(self.services)
        self.services.start_redis()
        # collectstatic needs neither server; it runs while PostgreSQL initialises.
        collect_log = self.log_dir / "collectstatic.log"
        with open(collect_log, "wb") as out:
            collect = subprocess.Popen(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            # As in production: every commit waits for the disk (the tests skip that).
            self.services.start_postgres(durable=True, settings=pg_settings)
            self.services.wait_for_redis()
            if collect.wait(timeout=120) != 0:
                raise ServiceError(f"collectstatic failed:\n{log_tail(collect_log, 40)}")
        finally:
            if collect.poll() is None:
                collect.kill()
                collect.wait()
        pg = version_of(str(self.services.pg_bin / "postgres"))
        self.versions = {"postgresql": pg, "redis": version_of("redis-server")}
        self.log(
            f"services: PostgreSQL {pg} on {HOST}:{self.services.pg_port}, Redis "
            f"{self.versions['redis']} on {HOST}:{self.services.redis_port} "
            f"({time.monotonic() - started:.1f}s)"
        )
        return self.env

    def start_daphnes(self, count: int = 2, *, trace_dir: Path | None = None) -> list[Daphne]:
        """``trace_dir``: run the app wrapped by bench/traced_asgi.py, which writes what
        each Daphne did (collections, event loop lag, database work) there."""
        started = time.monotonic()
        env, app = self.env, "supportgroups.asgi:application"
        if trace_dir is not None:
            trace_dir.mkdir(parents=True, exist_ok=True)
            env = {**env, "BENCH_TRACE_DIR": str(trace_dir)}
            app = "bench.traced_asgi:application"
        self.daphnes = [Daphne(env, self.log_dir, f"daphne-{n + 1}", app=app) for n in range(count)]
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for daphne in self.daphnes:
            daphne.wait_until_healthy(deadline)
        self.log(
            "daphne: "
            + ", ".join(f"{d.name} pid {d.pid} on :{d.port}" for d in self.daphnes)
            + f" ({time.monotonic() - started:.1f}s)"
        )
        return self.daphnes

    def check_alive(self) -> None:
        for daphne in self.daphnes:
            daphne.check_alive()

    def service_cpu_seconds(self) -> dict[str, float]:
        """CPU used so far by PostgreSQL (postmaster and backends) and Redis."""
        result = {}
        with contextlib.suppress(OSError, ValueError, IndexError):
            data = self.services.tmp / "pg" / "data" / "postmaster.pid"
            result["postgres"] = tree_cpu_seconds(int(data.read_text().splitlines()[0]))
        for name, proc, _stop in self.services.processes:
            if name == "Redis":
                with contextlib.suppress(OSError):
                    result["redis"] = process_cpu_seconds(proc.pid)
        return result

    def stop(self) -> None:
        for daphne in self.daphnes:
            with contextlib.suppress(Exception):
                daphne.stop()
        self.daphnes = []
        self.services.stop()
