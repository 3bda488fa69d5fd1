"""Session timeouts and the 2FA rule, applied to every request."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.contrib.messages.storage import default_storage
from django.shortcuts import redirect
from django.urls import resolve
from django.urls.exceptions import Resolver404

from accounts.selectors import (
    user_may_use_sockets,
    user_must_renew_credentials,
    user_two_factor_standing,
)
from accounts.services import session_end_unverified, session_expire
from accounts.sessions import LAST_SEEN_KEY, session_expired, session_needs_touch

__all__ = [
    "CredentialRenewalMiddleware",
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
