"""How allauth fits our privacy rules: handle-only accounts, audited, 2FA as a login stage."""

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth import logout as django_logout
from django.core.exceptions import ValidationError

from accounts import services
from audit.services import request_ip
from supportgroups.crypto import blind_index
from supportgroups.hardening import client_fingerprint

RESERVED_HANDLES = [
    "admin",
    "administrator",
    "root",
    "support",
    "staff",
    "moderator",
    "facilitator",
    "system",
    "anonymous",
    "deleted",
    "removed",
    "help",
    "security",
]


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # One message for taken, reserved and banned handles: the answer is the same
        # whichever it is.
        "username_taken": "This login handle can't be used. Please choose another.",
        "username_blacklisted": "This login handle can't be used. Please choose another.",
        "too_many_login_attempts": (
            "Too many attempts to sign in. Please wait a few minutes and try again."
        ),
    }

    def clean_username(self, username, shallow=False):
        if username.lower() in RESERVED_HANDLES:
            raise self.validation_error("username_blacklisted")
        return super().clean_username(username, shallow=shallow)

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            services.account_record_signup(user=user, ip=request_ip(request) if request else None)
        return user

    def login(self, request, user):
        super().login(request, user)
        services.session_start(request=request, user=user)

    def logout(self, request):
        # The menu's "Sign out": this browser only; the sessions page signs out elsewhere.
        services.session_logout(request=request, everywhere=False)
        # services.session_logout already called Django's logout; this keeps allauth's
        # own expectations when the session was already anonymous.
        if request.user.is_authenticated:
            django_logout(request)

    def pre_authenticate(self, request, **credentials):
        # allauth turns a throttled sign-in away with a form error, not a 429, so our
        # 429 middleware never sees it: record it here for the security signals.
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            services.login_record_throttled(
                handle=credentials.get("username", ""), ip=request_ip(request)
            )
            raise

    def authentication_failed(self, request, **credentials):
        services.login_record_failure(
            handle=credentials.get("username", ""),
            signed_in=_signed_in(request),
            ip=request_ip(request),
        )

    def get_login_stages(self):
        return [*super().get_login_stages(), "accounts.stages.TwoFactorStage"]

    def get_client_ip(self, request):
        # allauth asks for the address only to key its rate limits (its email
        # notifications and user sessions are off here), and those keys live in Redis: a
        # keyed hash, never the address. REMOTE_ADDR is the client only when a trusted
        # proxy vouched for it (supportgroups.hardening.ForwardedHeadersMiddleware).
        return client_fingerprint(request.META.get("REMOTE_ADDR"))

    def _get_login_attempts_cache_key(self, request, **credentials):
        # allauth's own key starts with the current site's domain, which is the request's
        # Host header here: "LOCALHOST:8501" made a fresh counter. The handle alone (keyed
        # hash: allauth's plain SHA-256 of it would be guessable in Redis) does not move.
        login = credentials.get("username", credentials.get("email", "")) or ""
        return blind_index(login.strip().lower(), purpose="login-failures")


def _signed_in(request):  # noqa: ANN001, ANN202
    """Who is signed in on this request (asked to confirm their password), if anyone."""
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None
