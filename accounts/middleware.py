"""Who is signed in (the user read with the session), session timeouts and the 2FA rule,
applied to every request."""

import time

from django.apps import apps
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import (
    AuthenticationMiddleware as DjangoAuthenticationMiddleware,
)
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.contrib.messages.storage import default_storage
from django.db import connection
from django.shortcuts import redirect, render
from django.urls import resolve
from django.urls.exceptions import Resolver404
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject
from django_otp.middleware import OTPMiddleware as DjangoOTPMiddleware
from django_otp.models import Device

from accounts.hashers import PasswordCheckBusy
from accounts.models import User
from accounts.selectors import (
    user_may_use_sockets,
    user_must_renew_credentials,
    user_two_factor_standing,
)
from accounts.services import session_end_unverified, session_expire
from accounts.sessions import LAST_SEEN_KEY, session_expired, session_needs_touch
from supportgroups.compiled_query import CompiledQuery

__all__ = [
    "AuthenticationMiddleware",
    "CredentialRenewalMiddleware",
    "OTPMiddleware",
    "SessionPolicyMiddleware",
    "TwoFactorMiddleware",
    "session_expired",
]


def _tell(request, response, text: str):  # noqa: ANN001, ANN202
    """A message shown on the next page, from a middleware that answers on its own.

    These middlewares sit before MessageMiddleware and return early, so neither
    ``request._messages`` nor MessageMiddleware's saving of it can be relied on.
    """
    storage = getattr(request, "_messages", None)
    if storage is None:
        storage = default_storage(request)
    storage.add(messages.INFO, text)
    storage.update(response)
    return response


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, with the signed-in user taken from the row the session was read with
    (accounts/sessions.py joins it): one statement for both instead of two, on every
    signed-in page (issue 22: the fixed cost of a page). The user is checked as
    ``django.contrib.auth.get_user`` checks one it reads itself: the session's user id
    and backend, the backend's "may this user sign in" (an inactive account is signed
    out), and the session's hash of the password (a password changed elsewhere signs this
    session out). Anything else goes Django's own way."""

    def process_request(self, request):  # noqa: ANN001, ANN201
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _user_of(request))


def _user_of(request):  # noqa: ANN001, ANN202
    if not hasattr(request, "_cached_user"):  # the attribute Django's middleware keeps
        request._cached_user = _user_read_with_session(request) or auth.get_user(request)
    return request._cached_user


def _user_read_with_session(request):  # noqa: ANN001, ANN202
    """The session's user from the session's own statement, AnonymousUser when the session
    no longer holds, or None to let ``auth.get_user`` decide (Django 5.2's checks)."""
    session = request.session
    try:
        user_id = User._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return None
    user = getattr(session, "loaded_user", None)
    if user is None or user.pk != user_id or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    backend = load_backend(backend_path)
    # Only for backends that find a user by id as ModelBackend does, and may let them in.
    if type(backend).get_user is not ModelBackend.get_user:
        return None
    if not backend.user_can_authenticate(user):
        return None
    session_hash = session.get(HASH_SESSION_KEY)
    session_auth_hash = user.get_session_auth_hash()
    if session_hash and constant_time_compare(session_hash, session_auth_hash):
        return user
    # As Django: a hash made with a SECRET_KEY_FALLBACKS key is renewed, any other ends it.
    if session_hash and any(
        constant_time_compare(session_hash, fallback)
        for fallback in user.get_session_auth_fallback_hash()
    ):
        session.cycle_key()
        session[HASH_SESSION_KEY] = session_auth_hash
        return user
    session.flush()
    return AnonymousUser()


# One compiled read per device model ("accounts.totpdevice", ...), made on first use.
_DEVICE_READS: dict[str, CompiledQuery] = {}


class OTPMiddleware(DjangoOTPMiddleware):
    """django-otp's, with the device that verified this session read by SQL compiled once
    per device model (supportgroups/compiled_query.py) instead of a queryset built on
    every signed-in request (issue 22: the fixed cost of a page). The device is still read
    fresh on every request, and django-otp's own ``_finalize_device`` still drops one that
    is gone, unconfirmed or someone else's, so removing or unconfirming a device ends the
    session's 2FA standing at once. Anything it does not understand reads as no device,
    as ``Device.from_persistent_id`` does."""

    def _device_from_persistent_id(self, persistent_id: str):  # noqa: ANN202
        persistent_id = self._normalize_persistent_id(persistent_id)
        try:
            model_label, device_id = persistent_id.rsplit("/", 1)
            app_label, model_name = model_label.split(".")
            device_model = apps.get_model(app_label, model_name)
            device_id = int(device_id)
        except (ValueError, LookupError):
            return None
        if not issubclass(device_model, Device):
            return None
        low, high = connection.ops.integer_field_range(device_model._meta.pk.get_internal_type())
        if not low <= device_id <= high:  # (the queryset would find nothing; the driver fails)
            return None
        label = device_model._meta.label_lower
        read = _DEVICE_READS.get(label)
        if read is None:
            read = _DEVICE_READS.setdefault(
                label,
                CompiledQuery(
                    lambda device_id: device_model.objects.filter(id=device_id), device_id=int
                ),
            )
        rows = read.run(device_id=device_id)
        return rows[0] if rows else None


class SessionPolicyMiddleware:
    """Idle and absolute timeouts; keeps "last seen" for the sessions page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            reason = session_expired(request.session)
            if reason:
                # Through the session service: audited, and the sockets this session
                # opened are closed (signed_out, 4001) like after any other sign-out.
                session_expire(request=request, reason=reason)
                return _tell(
                    request,
                    redirect_to_login(request.get_full_path()),
                    "You were signed out after a while without activity, to keep your account safe."
                    if reason == "idle"
                    else "You were signed out because this session had lasted a long time.",
                )
            if session_needs_touch(request.session):
                request.session[LAST_SEEN_KEY] = time.time()
        return self.get_response(request)


# Pages a signed-in person may reach before their second factor is in place.
TWO_FACTOR_EXEMPT_URL_NAMES = frozenset(
    {
        "home",
        "healthz",
        "leave_quickly",
        "account_logout",
        "account_two_factor_setup",
        "account_two_factor_login",
        "account_reauthenticate",
        "javascript-catalog",
    }
)


class TwoFactorMiddleware:
    """Facilitators and admins reach nothing else until their session is 2FA-verified.

    Also: a session of someone who has 2FA but was not verified by it (signed in before
    they turned it on elsewhere) is ended.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not user.is_verified():
            exempt = self._exempt(request)
            # Set-up stays closed to such a session: enrolling there would replace the
            # person's authenticator without ever asking for a code from it.
            if not exempt or self._is_set_up(request):
                # Both facts in one query (this runs on every page a member opens).
                has_two_factor, requires_two_factor = user_two_factor_standing(user)
                if has_two_factor:
                    session_end_unverified(request=request)
                    return _tell(
                        request,
                        redirect("account_login"),
                        "Please sign in again with your authenticator app.",
                    )
                if not exempt and requires_two_factor:
                    return _tell(
                        request,
                        redirect("account_two_factor_setup"),
                        "Your role needs two-factor authentication. Set it up to continue.",
                    )
            if exempt:
                # These pages stay open to a session the account socket may refuse (the
                # same rule as for every socket); base.html then leaves the socket's script
                # out, which would otherwise retry behind the page all the while. Asked when
                # the page is drawn: the view may just have verified the session (set-up).
                request.account_socket_refused = lambda: (
                    not user_may_use_sockets(user, request.session)
                )
        return self.get_response(request)

    @staticmethod
    def _is_set_up(request) -> bool:  # noqa: ANN001
        try:
            return resolve(request.path_info).url_name == "account_two_factor_setup"
        except Resolver404:
            return False

    @staticmethod
    def _exempt(request) -> bool:  # noqa: ANN001
        if request.path.startswith(settings.STATIC_URL):
            return True
        try:
            # view_name includes the namespace: "home" must not also exempt "groups:home".
            return resolve(request.path_info).view_name in TWO_FACTOR_EXEMPT_URL_NAMES
        except Resolver404:
            return True


RENEWAL_STEPS = {
    "account_change_password": (
        "After a security problem, an administrator asked you to choose a new password and "
        "then set up two-factor authentication again. Please choose a new password first."
    ),
    "account_two_factor_setup": (
        "Now set up two-factor authentication again: add this new key to your "
        "authenticator app. Your old codes and backup codes will stop working."
    ),
}


class CredentialRenewalMiddleware:
    """After a security incident an admin may require someone to choose a new password
    and set up their authenticator again (``accounts.services.credentials_renewal_require``).
    At their next sign-in (with the old password and second factor, which proves it is
    still them) they reach nothing but those two pages, in that order, until both are
    done; their sockets are refused meanwhile (``user_may_use_sockets``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and user_must_renew_credentials(user):
            step = (
                "account_change_password"
                if user.password_renewal_required
                else "account_two_factor_setup"
            )
            if not self._allowed(request, step):
                return _tell(request, redirect(step), RENEWAL_STEPS[step])
        return self.get_response(request)

    @staticmethod
    def _allowed(request, step: str) -> bool:  # noqa: ANN001
        if request.path.startswith(settings.STATIC_URL):
            return True
        try:
            name = resolve(request.path_info).view_name
        except Resolver404:
            return True
        return name == step or (
            name in TWO_FACTOR_EXEMPT_URL_NAMES and name != "account_two_factor_setup"
        )


class PasswordCheckBusyMiddleware:
    """Where a password is hashed outside a form's validation and no view turns the
    Argon2 worker's "too busy" into a form error (the Django admin, for one), the answer
    is a calm 503 asking to try again, never an error page (accounts/hashers.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, PasswordCheckBusy):
            return None
        response = render(request, "errors/busy.html", {"message": exception.message}, status=503)
        response["Retry-After"] = "10"
        return response
