"""Settings are read from the environment once, at import: test them in a fresh process.

Every test starts Python with a controlled environment (nothing inherited but PATH and
the locale), so a developer's .env, the harness's DATABASE_URL or a stray variable
cannot change the outcome.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
REQUIRED_SECRETS = ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "AUDIT_KEY")

# Importing the settings module is enough to parse the environment (and ten times
# faster than django.setup(), which the checks below pay for).
PRINT_SETTINGS = """
import json
import supportgroups.settings as settings
names = {names!r}
print("SETTINGS=" + json.dumps({{n: getattr(settings, n, None) for n in names}}, default=str))
"""


def production_secrets():
    return {
        # Long and random, as Django's deploy check (security.W009) wants it.
        "SECRET_KEY": secrets.token_urlsafe(64),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "BLIND_INDEX_KEY": secrets.token_urlsafe(32),
        "AUDIT_KEY": secrets.token_urlsafe(32),
    }


def clean_env(**overrides):
    env = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL") if name in os.environ}
    env.update(
        {
            "SUPPORTGROUPS_IGNORE_DOTENV": "1",
            "DJANGO_SETTINGS_MODULE": "supportgroups.settings",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(production_secrets())
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(args, **overrides):
    result = subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=clean_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )
    result.output = result.stdout + result.stderr
    return result


def manage(*args, **overrides):
    return run(["manage.py", *args], **overrides)


def settings_values(*names, **overrides):
    result = run(["-c", PRINT_SETTINGS.format(names=names)], **overrides)
    assert result.returncode == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("SETTINGS="))
    return json.loads(line.removeprefix("SETTINGS="))


# --- required secrets ------------------------------------------------------------------


def test_it_passes_the_check_with_every_secret_set():
    result = manage("check", DEBUG="false", ALLOWED_HOSTS="groups.example.org")
    assert result.returncode == 0, result.output


def test_it_refuses_to_start_in_production_without_allowed_hosts():
    result = manage("check", DEBUG="false")
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is empty" in result.output


@pytest.mark.parametrize("name", REQUIRED_SECRETS)
def test_it_fails_the_check_naming_a_missing_secret(name):
    result = manage("check", DEBUG="false", **{name: None})
    assert result.returncode != 0, result.output
    assert f"{name} is not set" in result.output
    assert "supportgroups.E00" in result.output
    others = [other for other in REQUIRED_SECRETS if other != name]
    assert not any(f"{other} is not set" in result.output for other in others), result.output


def test_it_treats_a_blank_secret_as_missing():
    result = manage("check", DEBUG="false", AUDIT_KEY="   ")
    assert result.returncode != 0, result.output
    assert "AUDIT_KEY is not set" in result.output


def test_it_names_every_missing_secret_at_once():
    result = manage("check", DEBUG="false", **dict.fromkeys(REQUIRED_SECRETS))
    assert result.returncode != 0, result.output
    for name in REQUIRED_SECRETS:
        assert f"{name} is not set" in result.output


def test_it_starts_the_asgi_app_with_every_secret_set():
    result = run(
        ["-c", "import supportgroups.asgi; print('ASGI-READY')"],
        DEBUG="false",
        ALLOWED_HOSTS="groups.example.org",
    )
    assert result.returncode == 0, result.output
    assert "ASGI-READY" in result.stdout


def collector_once_asgi_started(expression: str) -> list[str]:
    """What ``expression`` (about the ``gc`` module) prints in a process that has loaded
    the ASGI app, as a Daphne has."""
    result = run(
        ["-c", f"import gc, supportgroups.asgi; print('GC', {expression})"],
        DEBUG="false",
        ALLOWED_HOSTS="groups.example.org",
    )
    assert result.returncode == 0, result.output
    return result.stdout.split("GC")[1].split()


def test_it_keeps_the_start_up_objects_out_of_the_garbage_collectors_walks():
    [frozen] = collector_once_asgi_started("gc.get_freeze_count()")
    assert int(frozen) > 50_000  # Django and the app's modules: well over 100,000 objects


def test_it_walks_every_object_in_a_full_collection_only_after_100_of_the_middle_generation():
    # The young generations as Python sets them; the oldest 10 times rarer.
    assert collector_once_asgi_started("*gc.get_threshold()") == ["700", "10", "100"]


@pytest.mark.parametrize("name", REQUIRED_SECRETS)
def test_it_refuses_to_start_the_asgi_app_naming_a_missing_secret(name):
    result = run(
        ["-c", "import supportgroups.asgi; print('ASGI-READY')"], DEBUG="false", **{name: None}
    )
    assert result.returncode != 0, result.output
    assert "ASGI-READY" not in result.stdout
    assert "ImproperlyConfigured" in result.stderr
    assert "Refusing to start" in result.stderr
    assert f"{name} is not set" in result.stderr


def test_it_refuses_to_start_the_asgi_app_with_a_short_audit_key():
    result = run(["-c", "import supportgroups.asgi"], DEBUG="false", AUDIT_KEY="short")
    assert result.returncode != 0, result.output
    assert "AUDIT_KEY is too short" in result.stderr


# --- malformed values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("SECURE_COOKIES", "sometimes"),
        ("SECURE_SSL_REDIRECT", "2"),
        ("TRUST_X_FORWARDED_PROTO", "proxy"),
        ("SESSION_IDLE_TIMEOUT", "abc"),
        ("SESSION_IDLE_TIMEOUT", "5"),  # below the minimum
        ("SESSION_ABSOLUTE_TIMEOUT", "1.5"),
        ("SECURE_HSTS_SECONDS", "-1"),
        ("DATABASE_URL", "mysql://x"),
        ("DATABASE_URL", "postgres:///no-host"),
        ("REDIS_URL", "http://127.0.0.1:6379/0"),
        ("QUICK_EXIT_URL", "javascript:alert(1)"),
        ("QUICK_EXIT_URL", "www.bbc.co.uk/weather"),
        ("TIME_ZONE", "Mars/Olympus"),
        ("LOG_LEVEL", "loud"),
        ("FIELD_ENCRYPTION_KEYS", "notakey"),
        # A fixed id: pytest-xdist's workers must collect the same test names.
        pytest.param(
            "FIELD_ENCRYPTION_KEYS",
            f"{Fernet.generate_key().decode()},notakey",
            id="FIELD_ENCRYPTION_KEYS-a good key then notakey",
        ),
    ],
)
def test_it_refuses_a_malformed_value_naming_the_variable(name, value):
    result = manage("check", **{name: value})
    assert result.returncode != 0, result.output
    # The message names the variable; a traceback line merely quoting settings.py
    # (e.g. `DEBUG = env_bool("DEBUG", False)`) does not count.
    messages = [
        line
        for line in result.output.splitlines()
        if name in line and ("ImproperlyConfigured:" in line or "ERROR" in line or "E0" in line)
    ]
    assert messages, result.output


def test_it_does_not_echo_a_database_password_in_the_error():
    result = manage("check", DATABASE_URL="mysql://app:hunter2-database-secret@db/app")
    assert result.returncode != 0, result.output
    assert "DATABASE_URL" in result.output
    assert "hunter2-database-secret" not in result.output


# --- secrets from files ------------------------------------------------------------------


def test_it_reads_a_secret_from_a_file(tmp_path):
    secret = secrets.token_urlsafe(64)
    path = tmp_path / "secret_key"
    path.write_text(secret + "\n")  # as `echo` or a Docker secret would write it

    values = settings_values("SECRET_KEY", SECRET_KEY=None, SECRET_KEY_FILE=str(path))
    assert values["SECRET_KEY"] == secret

    result = manage(
        "check",
        DEBUG="false",
        SECRET_KEY=None,
        SECRET_KEY_FILE=str(path),
        ALLOWED_HOSTS="groups.example.org",
    )
    assert result.returncode == 0, result.output


def test_it_reads_every_required_secret_from_files(tmp_path):
    overrides = {}
    expected = production_secrets()
    for name, value in expected.items():
        path = tmp_path / name.lower()
        path.write_text(value)
        overrides[name] = None
        overrides[f"{name}_FILE"] = str(path)

    values = settings_values(
        "SECRET_KEY", "BLIND_INDEX_KEY", "AUDIT_KEY", "FIELD_ENCRYPTION_KEYS", **overrides
    )
    assert values["SECRET_KEY"] == expected["SECRET_KEY"]
    assert values["BLIND_INDEX_KEY"] == expected["BLIND_INDEX_KEY"]
    assert values["AUDIT_KEY"] == expected["AUDIT_KEY"]
    assert values["FIELD_ENCRYPTION_KEYS"] == [expected["FIELD_ENCRYPTION_KEYS"]]


def test_it_refuses_a_secret_set_both_directly_and_from_a_file(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text(secrets.token_urlsafe(64))
    result = manage("check", SECRET_KEY_FILE=str(path))  # SECRET_KEY is set too
    assert result.returncode != 0, result.output
    assert "Set SECRET_KEY or SECRET_KEY_FILE, not both." in result.output


def test_it_refuses_a_secret_file_that_cannot_be_read(tmp_path):
    missing = tmp_path / "nowhere"
    result = manage("check", SECRET_KEY=None, SECRET_KEY_FILE=str(missing))
    assert result.returncode != 0, result.output
    assert "SECRET_KEY_FILE: cannot read" in result.output


# --- defaults ------------------------------------------------------------------------------


def test_it_runs_on_the_embedded_default_when_nothing_is_configured():
    values = settings_values(
        "DATABASES",
        "CHANNEL_LAYERS",
        "CACHES",
        "EMAIL_BACKEND",
        "DEBUG",
        "DATABASE_URL",
        "REDIS_URL",
    )
    assert values["DEBUG"] is False
    assert values["DATABASE_URL"] is None
    assert values["REDIS_URL"] is None
    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert values["CHANNEL_LAYERS"]["default"]["BACKEND"] == (
        "channels.layers.InMemoryChannelLayer"
    )
    assert values["CACHES"]["default"]["BACKEND"] == (
        "django.core.cache.backends.locmem.LocMemCache"
    )
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_it_uses_postgresql_and_redis_when_configured():
    values = settings_values(
        "DATABASES",
        "CHANNEL_LAYERS",
        "CACHES",
        DATABASE_URL="postgres://app:pw@db.internal:5433/groups",
        REDIS_URL="redis://cache.internal:6379/2",
    )
    database = values["DATABASES"]["default"]
    assert database["ENGINE"] == "supportgroups.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"], database["USER"]) == (
        "db.internal",
        5433,
        "groups",
        "app",
    )
    layer = values["CHANNEL_LAYERS"]["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert [host["address"] for host in layer["CONFIG"]["hosts"]] == [
        "redis://cache.internal:6379/2"
    ]
    cache = values["CACHES"]["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert cache["LOCATION"] == "redis://cache.internal:6379/2"


def test_it_uses_smtp_when_an_email_host_is_configured():
    values = settings_values(
        "EMAIL_BACKEND",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_USE_TLS",
        EMAIL_HOST="smtp.example.org",
        EMAIL_PORT="2525",
    )
    assert values == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.org",
        "EMAIL_PORT": 2525,
        "EMAIL_USE_TLS": True,
    }


def test_it_is_secure_by_default_when_debug_is_off():
    values = settings_values(
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_NAME",
        "CSRF_COOKIE_NAME",
        "SESSION_COOKIE_HTTPONLY",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
        "ALLOWED_HOSTS",
    )
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert values["CSRF_COOKIE_NAME"].startswith("__Host-")
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    # X-Forwarded-Proto is only believed when the operator says a proxy sets it.
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    # No host is served until the operator names it.
    assert values["ALLOWED_HOSTS"] == []


def test_it_relaxes_only_for_local_development_when_debug_is_on():
    values = settings_values(
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "ALLOWED_HOSTS",
        DEBUG="true",
    )
    assert values["DEBUG"] is True
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert set(values["ALLOWED_HOSTS"]) <= {"localhost", "127.0.0.1", "[::1]"}


def test_it_trusts_x_forwarded_proto_only_when_told_to():
    values = settings_values(
        "SECURE_PROXY_SSL_HEADER", TRUST_X_FORWARDED_PROTO="true", TRUSTED_PROXIES="10.0.0.2"
    )
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_it_reads_lists_and_the_quick_exit_url():
    values = settings_values(
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "QUICK_EXIT_URL",
        ALLOWED_HOSTS=" example.org, www.example.org ,",
        CSRF_TRUSTED_ORIGINS="https://example.org",
        QUICK_EXIT_URL="https://neutral.example/forecast",
    )
    assert values == {
        "ALLOWED_HOSTS": ["example.org", "www.example.org"],
        "CSRF_TRUSTED_ORIGINS": ["https://example.org"],
        "QUICK_EXIT_URL": "https://neutral.example/forecast",
    }


def test_it_passes_the_deploy_check_with_production_values():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        ALLOWED_HOSTS="example.org",
        DATABASE_URL="postgres://app:pw@db.internal:5432/groups",
        REDIS_URL="redis://cache.internal:6379/0",
    )
    assert result.returncode == 0, result.output
    assert "System check identified no issues" in result.output
    # Clean because the settings are right, not because warnings were switched off.
    silenced = set(settings_values("SILENCED_SYSTEM_CHECKS")["SILENCED_SYSTEM_CHECKS"] or [])
    assert silenced <= {"security.W021", "security.W003"}
    if "security.W003" in silenced:
        # W003 only recognises Django's CSRF middleware by its exact dotted path.
        assert any(
            issubclass(import_string(path), CsrfViewMiddleware) for path in settings.MIDDLEWARE
        )


def test_it_fails_the_deploy_check_when_debug_is_on():
    # The deploy check is only worth something if it can fail.
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", DEBUG="true", ALLOWED_HOSTS="example.org"
    )
    assert result.returncode != 0, result.output
    assert "security.W018" in result.output  # DEBUG on in deployment


def test_the_password_hash_deadline_defaults_to_20_seconds_and_is_read_strictly():
    assert settings_values("PASSWORD_HASH_TIMEOUT_SECONDS") == {"PASSWORD_HASH_TIMEOUT_SECONDS": 20}
    assert settings_values("PASSWORD_HASH_TIMEOUT_SECONDS", PASSWORD_HASH_TIMEOUT_SECONDS="5") == {
        "PASSWORD_HASH_TIMEOUT_SECONDS": 5
    }
    for wrong, message in (("soon", "must be a whole number"), ("0", "must be at least 1")):
        result = manage("check", PASSWORD_HASH_TIMEOUT_SECONDS=wrong)
        assert result.returncode != 0
        assert f"PASSWORD_HASH_TIMEOUT_SECONDS {message}" in result.output
