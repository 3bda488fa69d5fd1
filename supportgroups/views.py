import functools
import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database (and Redis, when configured) answer; 503 otherwise."""
    checks = {"database": _database_ok()}
    if settings.REDIS_URL:
        checks["redis"] = _redis_ok()
    healthy = all(checks.values())
    body = {"status": "ok" if healthy else "unavailable"} | {
        name: "ok" if ok else "down" for name, ok in checks.items()
    }
    return JsonResponse(body, status=200 if healthy else 503)


# How long /healthz waits for the database: a load balancer needs a quick "no", not the
# pool's own wait for a connection (10 s, then another try per request).
HEALTHZ_DATABASE_TIMEOUT = 2


def _database_ok() -> bool:
    try:
        pool = connection.pool if connection.vendor == "postgresql" else None
        if pool is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone() == (1,)
        pool.open()
        with pool.connection(timeout=HEALTHZ_DATABASE_TIMEOUT) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        logger.warning("healthz: database check failed", exc_info=True)
        return False


@functools.lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    # One client (and connection pool) per process: health checks come every few seconds.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _redis_ok() -> bool:
    try:
        return bool(_redis_client(settings.REDIS_URL).ping())
    except redis.RedisError:
        logger.warning("healthz: redis check failed", exc_info=True)
        return False


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "errors/csrf.html", status=403)
