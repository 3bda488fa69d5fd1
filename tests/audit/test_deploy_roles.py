"""The deployment's two database roles, end to end, on a PostgreSQL cluster of their own.

``deploy/postgres-init/10-roles.sh`` is what the compose ``db`` service runs on its first
start; then ``migrate`` runs as the owner (with DATABASE_APP_ROLE) and everything else as
the app role. The cluster is separate because the script creates roles under their
production names, and roles belong to a whole cluster.
"""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.harness import HOST, Services

REPO_ROOT = Path(__file__).resolve().parents[2]
OWNER_PASSWORD = "owner's password"  # a quote, to prove the script quotes it
APP_PASSWORD = "app-password"


def manage(services: Services, url: str, *args: str, **extra_env: str):
    env = {**services.env(), "DATABASE_URL": url, "REDIS_URL": "", **extra_env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def cluster():
    services = Services()
    try:
        services.start_postgres()
        # The harness made a role and database called supportgroups; the script makes its own.
        services.psql("DROP DATABASE supportgroups", "DROP ROLE supportgroups")
        yield services
    finally:
        services.stop()


def test_the_init_script_makes_an_owner_that_migrates_and_an_app_role_that_owns_nothing(cluster):
    env = {
        **os.environ,
        "PATH": f"{cluster.pg_bin}:{os.environ['PATH']}",
        "PGHOST": HOST,
        "PGPORT": str(cluster.pg_port),
        "POSTGRES_USER": "postgres",
        "DB_OWNER_PASSWORD": OWNER_PASSWORD,
        "DB_APP_PASSWORD": APP_PASSWORD,
    }
    script = subprocess.run(
        ["sh", "deploy/postgres-init/10-roles.sh"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert script.returncode == 0, script.stderr

    base = f"{HOST}:{cluster.pg_port}/supportgroups"
    owner_url = f"postgres://supportgroups:owner%27s%20password@{base}"
    app_url = f"postgres://supportgroups_app:{APP_PASSWORD}@{base}"
    migrated = manage(cluster, owner_url, "migrate", "-v0", DATABASE_APP_ROLE="supportgroups_app")
    assert migrated.returncode == 0, migrated.stderr

    verified = manage(cluster, app_url, "verify_audit_log")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.splitlines() == [
        "Audit log intact: 0 rows verified.",
        "Head: none (the log is empty)",
    ]
    assert verified.stderr == ""  # the app role does not own the audit table

    with psycopg.connect(app_url, autocommit=True) as app:
        for statement in (
            "TRUNCATE audit_event",
            "ALTER TABLE audit_event DISABLE TRIGGER ALL",
            "CREATE TEMP TABLE audit_event (seq bigint)",
            "CREATE TABLE anything (id int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
        owner = app.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_event'"
        ).fetchone()
        assert owner == ("supportgroups",)


def test_the_compose_file_migrates_as_the_owner_and_serves_as_the_app_role():
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    app_url = "DATABASE_URL: postgres://supportgroups_app:${DB_APP_PASSWORD"
    owner_url = "DATABASE_URL: postgres://supportgroups:${DB_OWNER_PASSWORD"
    assert compose.count(app_url) == 1  # in x-app, which web and scheduler share
    assert compose.count(owner_url) == 1
    migrate = compose[compose.index("  migrate:") : compose.index("  web:")]
    assert owner_url in migrate
    assert "DATABASE_APP_ROLE: supportgroups_app" in migrate
    assert "./deploy/postgres-init:/docker-entrypoint-initdb.d:ro" in compose
    # The database passwords are interpolated from deploy/db.env, never put into the app
    # containers' env_file.
    assert "env_file: deploy/.env" in compose
    assert "DB_OWNER_PASSWORD" not in (REPO_ROOT / "deploy" / "env.example").read_text()
