"""GET /healthz: 200 when the database and Redis answer, 503 when either does not."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def closed_port():
    # A port the kernel just handed out and nobody listens on: connections are refused
    # at once, so the checks fail fast instead of waiting for a timeout.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_it_answers_ok_when_the_database_and_redis_answer(client):
    # The harness runs real PostgreSQL and Redis; make sure this test really used them.
    assert settings.DATABASES["default"]["ENGINE"] == "supportgroups.postgresql"
    assert settings.REDIS_URL

    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_it_needs_no_sign_in_and_keeps_no_session(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.django_db
@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_it_answers_503_when_redis_is_unreachable(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "redis": "down"}


@pytest.mark.django_db
@override_settings(REDIS_URL=None)
def test_it_checks_only_the_database_on_the_embedded_default(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_it_refuses_other_methods(client):
    assert client.post("/healthz").status_code == 405


def test_it_answers_503_when_the_database_is_unreachable():
    # Point a fresh process at a port where no PostgreSQL listens; the test database of
    # this process is left alone. Redis is the harness's real one, so only the
    # database is down.
    password = "db-password-that-must-not-leak"
    script = (
        "import json, django\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "response = Client().get('/healthz')\n"
        "print('HEALTHZ=' + json.dumps({'status': response.status_code,"
        " 'body': response.json()}))\n"
    )
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "supportgroups.settings")
    env["DATABASE_URL"] = f"postgres://app:{password}@127.0.0.1:{closed_port()}/nothing"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    line = next(line for line in result.stdout.splitlines() if line.startswith("HEALTHZ="))
    answer = json.loads(line.removeprefix("HEALTHZ="))
    assert answer == {
        "status": 503,
        "body": {"status": "unavailable", "database": "down", "redis": "ok"},
    }
    # The failure is logged for the operator, without the credentials.
    assert "healthz: database check failed" in result.stderr
    assert password not in output
