"""Settings for supportgroups: one file, read from the environment.

Every variable is documented in README.md ("Configuration"). Secrets may also be
given as ``NAME_FILE`` pointing at a file that holds the value (Docker secrets).
A malformed value raises ImproperlyConfigured naming the variable; it never falls
back to a default silently. With nothing set (``make run`` writes a ``.env`` with
development keys) the app runs on the embedded default: SQLite, an in-memory
channel layer, a local-memory cache and the console email backend.
"""

import ipaddress
import os
import re
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _load_dotenv(path: Path) -> None:
    """Load KEY=VALUE lines from the git-ignored development .env, never overriding."""
    if not path.is_file():
        return
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ImproperlyConfigured(f"{path} line {number}: expected KEY=VALUE")
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


if os.environ.get("SUPPORTGROUPS_IGNORE_DOTENV", "").lower() not in _TRUE:
    _load_dotenv(BASE_DIR / ".env")


def env_str(name: str, default: str | None = None) -> str | None:
    """A string from NAME, or from the file named by NAME_FILE (for secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        if name in os.environ:
            raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
        try:
            return Path(file_name).read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(
                f"{name}_FILE: cannot read {file_name}: {error.strerror}"
            ) from error
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_networks(name: str) -> list:
    """Addresses or networks (``10.0.0.5``, ``10.0.0.0/24``, ``fd00::/8``), comma-separated."""
    networks = []
    for item in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses or networks (e.g. 10.0.0.5 or 10.0.0.0/24), "
                f"not {item!r}."
            ) from None
    return networks


def env_url(name: str, default: str | None, *, schemes: tuple[str, ...]) -> str | None:
    value = env_str(name, default)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}."
        )
    return value


# --- core -------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

# Missing production secrets are reported by a system check (supportgroups/checks.py)
# that names each variable; asgi.py runs the checks before serving.
SECRET_KEY = env_str("SECRET_KEY") or ""
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", [])
BLIND_INDEX_KEY = env_str("BLIND_INDEX_KEY") or ""
AUDIT_KEY = env_str("AUDIT_KEY") or ""
REQUIRED_SECRETS = ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "AUDIT_KEY")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_NAME = env_str("SITE_NAME", "Support groups")
# Used in emails sent without a request at hand (e.g. application news).
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000", schemes=("https", "http")).rstrip("/")
QUICK_EXIT_URL = env_url(
    "QUICK_EXIT_URL", "https://www.bbc.co.uk/weather", schemes=("https", "http")
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "allauth",
    "allauth.account",
    "django_otp",
    "supportgroups",
    "audit",
    "accounts",
    "groups",
    "screening",
    "meetings",
    "board",
    "moderation",
    "privacy",
    "console",
]

MIDDLEWARE = [
    # First: everything below sees the real client, or the peer when no proxy vouches.
    "supportgroups.hardening.ForwardedHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "supportgroups.middleware.SecurityHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    # Outside every middleware that may answer on its own (sign-in and 2FA redirects).
    "supportgroups.middleware.NoStoreMiddleware",
    # Before the session is loaded: a session key (cookie) holding NUL is refused too.
    "supportgroups.hardening.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Early, so the session and 2FA middlewares below can leave a message when they redirect.
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "supportgroups.middleware.CsrfViewMiddleware",
    # Django's, with the user read in the session's own statement (accounts/sessions.py).
    "accounts.middleware.AuthenticationMiddleware",
    "accounts.middleware.OTPMiddleware",  # django-otp's, its device read compiled once
    "accounts.middleware.SessionPolicyMiddleware",
    "accounts.middleware.TwoFactorMiddleware",
    # After the 2FA step: a new password and authenticator an admin asked for come next.
    "accounts.middleware.CredentialRenewalMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # A facilitator's page of a group they have not yet joined properly (name, agreement).
    "groups.middleware.PlaceNotTakenMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "audit.middleware.RateLimitAuditMiddleware",
    # Last, so it sees a view's exception first: a too-busy Argon2 worker is a calm 503.
    "accounts.middleware.PasswordCheckBusyMiddleware",
]

ROOT_URLCONF = "supportgroups.urls"
CSRF_FAILURE_VIEW = "supportgroups.views.csrf_failure"
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
ASGI_APPLICATION = "supportgroups.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "supportgroups.context_processors.site",
                "screening.context_processors.application_news",
                "console.context_processors.security_notices",
            ],
        },
    },
]

# --- data -------------------------------------------------------------------------------

DATABASE_URL = env_url("DATABASE_URL", None, schemes=("postgres", "postgresql"))
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=1)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    # Django's PostgreSQL backend, whose pool checks a connection it hands out only when
    # the server sent it something while it was idle (supportgroups/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "supportgroups.postgresql"
    # With the pool below, this checks a connection each time it is taken from the pool.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Prepared statements only (the chat's hot ones, and the audit guards' PL/pgSQL):
    # PostgreSQL planned the send path's "= ANY(array)" statements for every run, the
    # planning costing it several times the run (bench.sendpath --statements).
    _server_options = DATABASES["default"].setdefault("OPTIONS", {}).get("options", "")
    DATABASES["default"]["OPTIONS"]["options"] = (
        f"{_server_options} -c plan_cache_mode=force_generic_plan".strip()
    )
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # An unreachable database must fail fast (healthz, requests), not hang.
            "connect_timeout": 5,
            # The chat's hot statements are bound by the server and prepared on their
            # connection after their fifth run, with one generic plan each
            # (supportgroups/prepared.py; the ORM's own statements are bound by the client
            # and never prepared). Django leaves preparing off (None) by default for
            # poolers: behind PgBouncer in transaction mode, set its max_prepared_statements.
            "prepare_threshold": 5,
            # A pool per process. Under ASGI every request runs on a thread of its own, so
            # Django's persistent connections (kept per thread) would mean a new
            # PostgreSQL backend, with cold caches, for every page.
            "pool": {
                "min_size": 2,
                "max_size": DATABASE_POOL_MAX_SIZE,
                "timeout": 10,
            },
        }
    )
else:
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "var" / "db.sqlite3",
            # IMMEDIATE makes concurrent writers queue instead of failing mid-transaction,
            # which the audit hash chain relies on.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }

# The role the app serves as, when DATABASE_URL names the tables' owner (as it must for
# `migrate`): every migrate grants this role SELECT/INSERT/UPDATE/DELETE and nothing more
# (audit/database.py). Serve the app with a DATABASE_URL naming this role.
DATABASE_APP_ROLE = env_str("DATABASE_APP_ROLE")
if DATABASE_APP_ROLE and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", DATABASE_APP_ROLE):
    raise ImproperlyConfigured(
        "DATABASE_APP_ROLE must be a PostgreSQL role name of lower-case letters, digits "
        f"and underscores, not {DATABASE_APP_ROLE!r}."
    )

REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # channels_redis waits up to 5 s in a server-side BRPOP; redis-py 8's default
                # client read timeout (also 5 s) would kill quiet sockets first. No read
                # timeout (as before redis-py 6); keepalive notices a dead connection.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": None,
                        "socket_connect_timeout": 5,
                        "socket_keepalive": True,
                        # redis-py's pool refuses a command at once (MaxConnectionsError)
                        # when this many are in flight, 100 by default: a burst of
                        # broadcasts or joins in a busy process lost live messages.
                        "max_connections": 1000,
                    }
                ],
                "capacity": 1500,
                "expiry": 30,
                # Chat messages cross Redis: encrypt them there too.
                "symmetric_encryption_keys": [SECRET_KEY],
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "sg",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- passwords and sessions -------------------------------------------------------------

# Argon2id with Django's parameters, hashed by a worker process at the lowest CPU priority
# of the box (accounts/hashers.py) so that a crowd signing in cannot slow live meetings.
PASSWORD_HASHERS = [
    "accounts.hashers.BackgroundArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# How long a password check or hash may wait for the worker (its queue, then its answer):
# past it the sign-in answers "very busy, try again" and a stuck worker is replaced.
PASSWORD_HASH_TIMEOUT_SECONDS = env_int("PASSWORD_HASH_TIMEOUT_SECONDS", 20, minimum=1)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
# The __Host- prefix pins cookies to this exact host, HTTPS and path "/".
SESSION_COOKIE_NAME = "__Host-sessionid" if SECURE_COOKIES else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if SECURE_COOKIES else "csrftoken"
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Strict"
SESSION_ENGINE = "accounts.sessions"
# Messages ("Your draft is saved") wait in the server-side session, not in a readable
# cookie of their own.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_TIMEOUT", 30 * 60, minimum=60)
SESSION_ABSOLUTE_TIMEOUT = env_int("SESSION_ABSOLUTE_TIMEOUT", 12 * 60 * 60, minimum=60)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- sign-up, login and 2FA (django-allauth, django-otp) --------------------------------

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
# After signing in (or up): the person's groups, or the way to find one.
LOGIN_REDIRECT_URL = "groups:mine"
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "accounts.forms.LoginForm",
    "signup": "accounts.forms.SignupForm",
    "change_password": "accounts.forms.ChangePasswordForm",
}
# A private handle and a password are enough. The optional recovery email is ours
# (encrypted, blind-indexed), so allauth's own email tables stay empty.
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_EMAIL_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
ACCOUNT_USERNAME_MIN_LENGTH = 3
ACCOUNT_PRESERVE_USERNAME_CASING = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    # Ours: a backup code instead of the email (per client only, see accounts/views.py).
    "reset_password_backup_code": "10/m/ip,60/h/ip",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "reauthenticate": "10/m/user",
    # Ours, through allauth's rate limiter:
    "verify_two_factor": "10/m/ip,10/5m/user",
    "recovery_email": "5/h/user",
}
OTP_THROTTLE_FACTOR = env_int("OTP_THROTTLE_FACTOR", 1)
OTP_ISSUER = SITE_NAME

# --- audit and security signals --------------------------------------------------------------

AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 6 * 365, minimum=1)
ALERT_FAILED_LOGINS_PER_ACCOUNT = env_int("ALERT_FAILED_LOGINS_PER_ACCOUNT", 20, minimum=1)
ALERT_FAILED_LOGINS_PER_IP = env_int("ALERT_FAILED_LOGINS_PER_IP", 100, minimum=1)

# --- screening --------------------------------------------------------------------------

# Answers and notes of declined and withdrawn applications are deleted after this.
SCREENING_RETENTION_DAYS = env_int("SCREENING_RETENTION_DAYS", 90, minimum=1)

# --- meetings ---------------------------------------------------------------------------

MEETING_OPEN_LEAD_MINUTES = env_int("MEETING_OPEN_LEAD_MINUTES", 10)
CHAT_MAX_MESSAGE_LENGTH = env_int("CHAT_MAX_MESSAGE_LENGTH", 2000, minimum=1)
CHAT_MAX_FRAME_BYTES = env_int("CHAT_MAX_FRAME_BYTES", 16384, minimum=1024)
CHAT_RATE_LIMIT_MESSAGES = env_int("CHAT_RATE_LIMIT_MESSAGES", 5, minimum=1)
CHAT_RATE_LIMIT_SECONDS = env_int("CHAT_RATE_LIMIT_SECONDS", 10, minimum=1)
# A present member's browser says "still here" this often; twice that without a word and
# they no longer count as present.
CHAT_HEARTBEAT_SECONDS = 25
# Routes the bare echo consumer that `make bench` measures the chat against
# (bench/echo.py). Never in production.
BENCHMARK_ENDPOINTS = env_bool("BENCHMARK_ENDPOINTS", False)

# --- HTTP security headers --------------------------------------------------------------

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = False
# Preloading binds the whole domain and its subdomains to HTTPS for good; that is a
# choice for each operator (hstspreload.org), not a default, so the deploy check's
# reminder about it (W021) is silenced. W003 looks for Django's CSRF middleware by its
# exact path; ours (supportgroups.middleware.CsrfViewMiddleware) is a subclass of it.
SILENCED_SYSTEM_CHECKS = ["security.W021", "security.W003"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The reverse proxies in front of Daphne. Their X-Forwarded-For and -Proto are believed;
# from any other peer those headers are dropped (supportgroups/hardening.py).
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    if not TRUSTED_PROXIES:
        raise ImproperlyConfigured(
            "TRUST_X_FORWARDED_PROTO needs TRUSTED_PROXIES: the addresses of the proxies "
            "whose X-Forwarded-Proto may be believed."
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [NONE],
        "frame-ancestors": [NONE],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
    },
}

# --- static files -----------------------------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- email ------------------------------------------------------------------------------

EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "supportgroups@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- misc -------------------------------------------------------------------------------

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"TIME_ZONE must be a time zone name such as Europe/London, not {TIME_ZONE!r}."
    ) from None
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}."
    )
# English only: no translation catalogues to load or look up on every page (timesince,
# date and plural formatting were a tenth of the facilitator dashboard's time).
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # "Not Found: /groups/<slug>/" must not name an unlisted group (supportgroups/hardening.py).
    "filters": {"hide_unlisted_groups": {"()": "groups.logging.HideUnlistedGroupsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["hide_unlisted_groups"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Request logs would carry group URLs and IPs; keep Django's own at WARNING.
    "loggers": {
        "django.request": {"level": "WARNING", "filters": ["hide_unlisted_groups"]},
        "daphne": {"level": "WARNING"},
    },
}
