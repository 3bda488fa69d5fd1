import time
from datetime import UTC, datetime

import segno
from allauth.account.internal.decorators import login_stage_required
from allauth.account.views import PasswordChangeView as AllauthPasswordChangeView
from allauth.account.views import SignupView as AllauthSignupView
from allauth.core import ratelimit
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.tokens import default_token_generator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import base36_to_int
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services
from accounts.forms import (
    BackupCodePasswordResetForm,
    ContactDetailsForm,
    PasswordResetRequestForm,
    RecoveryEmailForm,
    TwoFactorCodeForm,
    TwoFactorSetupForm,
)
from accounts.hashers import PasswordCheckBusy
from accounts.models import BackupCodeDevice, TOTPDevice, User
from accounts.reauth import reauthentication_required
from accounts.stages import TwoFactorStage
from audit.services import request_ip
from supportgroups.crypto import email_blind_index

# When this session last asked for a confirmation link (see recovery_email).
RECOVERY_LINK_SENT_KEY = "_sg_recovery_link_sent"

# --- leaving ----------------------------------------------------------------------------


# Exempt from CSRF on purpose: the control must work from any page (many have no form,
# so no token), with or without JavaScript, in one click or Escape twice. What CSRF would
# stop, another site making a visitor's browser sign them out everywhere, is stopped by
# the browser's own word instead: Sec-Fetch-Site, which pages cannot set. From another
# site the visitor is still sent to the neutral page, but nobody is signed out.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def leave_quickly(request: HttpRequest) -> HttpResponse:
    if request.headers.get("Sec-Fetch-Site") not in ("cross-site", "same-site"):
        services.session_leave_quickly(request=request)
    if request.method == "POST":
        return HttpResponse(status=204)
    return HttpResponseRedirect(settings.QUICK_EXIT_URL)


# --- the privacy centre -----------------------------------------------------------------


@login_required
def account_home(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "accounts/home.html",
        {
            "has_two_factor": selectors.user_has_two_factor(user),
            "requires_two_factor": selectors.user_requires_two_factor(user),
            "session_count": selectors.active_sessions_for_user(user).count(),
            "access_count": selectors.access_events_about_user(user).count(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def contact_details(request: HttpRequest) -> HttpResponse:
    user = request.user
    initial = {"phone": user.phone or "", "emergency_contact": user.emergency_contact or ""}
    form = ContactDetailsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.contact_details_update(user=user, ip=request_ip(request), **form.cleaned_data)
        messages.success(request, "Your contact details are saved.")
        return redirect("account_home")
    return render(request, "accounts/contact_details.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def recovery_email(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = RecoveryEmailForm(request.POST or None)
    if request.method == "POST" and "remove" in request.POST:
        services.recovery_email_remove(user=user, ip=request_ip(request))
        messages.success(request, "Your recovery email is removed.")
        return redirect("account_email")
    if request.method == "POST" and form.is_valid():
        limited = ratelimit.consume_or_429(request, action="recovery_email", user=user)
        if limited:
            return limited
        services.recovery_email_set(user=user, email=form.cleaned_data["email"], request=request)
        # Only when, never the address: it is not stored anywhere until it is confirmed.
        request.session[RECOVERY_LINK_SENT_KEY] = time.time()
        messages.success(
            request,
            "We've sent a link to that address. Open it to confirm your recovery email.",
        )
        return redirect("account_email")
    sent_at = request.session.get(RECOVERY_LINK_SENT_KEY)
    link_pending = sent_at is not None and time.time() - sent_at < services.EMAIL_VERIFY_MAX_AGE
    return render(
        request,
        "accounts/recovery_email.html",
        {
            "form": form,
            "link_sent_at": datetime.fromtimestamp(sent_at, tz=UTC) if link_pending else None,
            "link_days": services.EMAIL_VERIFY_MAX_AGE // 86400,
        },
    )


@require_http_methods(["GET", "POST"])
def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    # GET only shows a button: mail scanners that open links must not confirm anything.
    if request.method == "POST":
        user = services.recovery_email_verify(token=token, ip=request_ip(request))
        if user is not None:
            request.session.pop(RECOVERY_LINK_SENT_KEY, None)
            messages.success(request, "Your recovery email is confirmed.")
            return redirect("account_email" if request.user.is_authenticated else "home")
        return render(request, "accounts/verify_email.html", {"invalid": True}, status=400)
    return render(request, "accounts/verify_email.html", {"invalid": False})


@login_required
@require_http_methods(["GET", "POST"])
def sessions(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        which = request.POST.get("end", "")
        if which == "others":
            services.sessions_end(user=user, request=request, keep_current=True)
            messages.success(request, "You are signed out everywhere else.")
        elif which == "all":
            services.sessions_end(user=user, request=request, keep_current=False)
            messages.success(request, "You are signed out everywhere.")
            return redirect("account_login")
        elif which:
            services.sessions_end(
                user=user, request=request, keep_current=True, session_key=_session_key(user, which)
            )
            messages.success(request, "That session is ended.")
        return redirect("account_sessions")
    return render(
        request,
        "accounts/sessions.html",
        {
            "sessions": selectors.sessions_with_meeting_keys(user),
            "current_key": request.session.session_key,
        },
    )


def _session_key(user, public_id: str) -> str:  # noqa: ANN001
    """Sessions are named on the page by a hash, never by their secret key."""
    for session in selectors.active_sessions_for_user(user):
        if session.public_id == public_id:
            return session.session_key
    return "-"  # matches nothing


# --- two-factor authentication ----------------------------------------------------------


@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "accounts/two_factor.html",
        {
            "has_two_factor": selectors.user_has_two_factor(user),
            "requires_two_factor": selectors.user_requires_two_factor(user),
            "backup_codes_left": selectors.backup_codes_left(user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    user = request.user
    # A verified session sets up a new authenticator only when an admin asked for one
    # (it then replaces the old app and backup codes, as any set-up does).
    if (
        selectors.user_has_two_factor(user)
        and user.is_verified()
        and not user.two_factor_renewal_required
    ):
        return redirect("account_two_factor")
    device = services.totp_enrolment_start(user=user)
    form = TwoFactorSetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        limited = ratelimit.consume_or_429(request, action="verify_two_factor", user=user)
        if limited:
            return limited
        was_locked = _locked(device)
        codes = services.totp_enrolment_confirm(
            user=user, device=device, token=form.cleaned_data["code"], request=request
        )
        if codes is not None:
            return render(request, "accounts/backup_codes.html", {"codes": codes, "new": True})
        form.add_error("code", _code_error(was_locked=was_locked))
    uri = device.provisioning_uri(issuer=settings.OTP_ISSUER, label=settings.SITE_NAME)
    return render(
        request,
        "accounts/two_factor_setup.html",
        {
            "form": form,
            "qr_svg": segno.make(uri, error="m").svg_inline(
                scale=5,
                omitsize=True,
                dark="#1f2a2e",
                light="#ffffff",
                title="QR code for your authenticator app",
            ),
            "secret": " ".join(
                device.base32_secret[i : i + 4] for i in range(0, len(device.base32_secret), 4)
            ),
        },
    )


@login_required
@reauthentication_required(form_page="account_two_factor")
@require_POST
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    try:
        services.two_factor_disable(user=request.user, request=request)
    except services.AccountError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Two-factor authentication is off.")
    return redirect("account_two_factor")


@login_required
@reauthentication_required(form_page="account_two_factor")
@require_POST
def backup_codes_regenerate(request: HttpRequest) -> HttpResponse:
    if not selectors.user_has_two_factor(request.user):
        return redirect("account_two_factor")
    codes = services.backup_codes_regenerate(user=request.user, ip=request_ip(request))
    return render(request, "accounts/backup_codes.html", {"codes": codes, "new": False})


@login_stage_required(stage=TwoFactorStage.key, redirect_urlname="account_login")
@require_http_methods(["GET", "POST"])
def two_factor_login(request: HttpRequest) -> HttpResponse:
    """The second step of signing in, reached only from a correct password."""
    stage = request._login_stage
    user = stage.login.user
    backup = (request.POST if request.method == "POST" else request.GET).get("backup") == "1"
    form = TwoFactorCodeForm(request.POST or None, backup=backup)
    if request.method == "POST" and "cancel" in request.POST:
        return stage.abort()
    if request.method == "POST" and form.is_valid():
        limited = ratelimit.consume_or_429(request, action="verify_two_factor", user=user)
        if limited:
            return limited
        was_locked = any(
            _locked(d)
            for d in [
                *TOTPDevice.objects.filter(user=user, confirmed=True),
                *BackupCodeDevice.objects.filter(user=user, confirmed=True),
            ]
        )
        device = services.two_factor_verify(
            user=user, token=form.cleaned_data["code"], ip=request_ip(request)
        )
        if device is not None:
            response = stage.exit()
            services.two_factor_mark_verified(request=request, device=device)
            return response
        form.add_error("code", _code_error(was_locked=was_locked))
    return render(request, "accounts/two_factor_login.html", {"form": form, "backup": backup})


def _locked(device) -> bool:  # noqa: ANN001
    """Still waiting out the delay after earlier wrong codes (any code is refused now)."""
    allowed, details = device.verify_is_allowed()
    return not allowed and bool(details and details.get("locked_until"))


def _code_error(*, was_locked: bool) -> str:
    # Every wrong code starts a delay (1 s, 2 s, 4 s...), so ask whether the device was
    # locked *before* this code: only then was the code refused for coming too soon.
    if was_locked:
        return "Too many wrong codes. Please wait a little, then try a new code from your app."
    return "That code didn't work. Check the time on your phone and try the newest code."


# --- passwords --------------------------------------------------------------------------


class BusyHasherFormMixin:
    """A new password is hashed when the form is saved, after validation: when the Argon2
    worker is too busy (accounts/hashers.py), the form comes back with the calm "try again"
    error and everything typed, instead of an error page."""

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except PasswordCheckBusy as busy:
            form.add_error(None, busy)
            return self.form_invalid(form)


@method_decorator(login_required, name="dispatch")
class PasswordChangeView(BusyHasherFormMixin, AllauthPasswordChangeView):
    success_url = reverse_lazy("account_home")

    def form_valid(self, form):
        response = super().form_valid(form)
        if form.is_valid():  # not turned back busy
            services.password_changed(request=self.request, user=form.user)
        return response


password_change = PasswordChangeView.as_view()


class SignupView(BusyHasherFormMixin, AllauthSignupView):
    pass


signup = SignupView.as_view()


@require_http_methods(["GET", "POST"])
def password_reset(request: HttpRequest) -> HttpResponse:
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        # Keyed: allauth stores a plain SHA-256 of the key in Redis, guessable for emails.
        limited = ratelimit.consume_or_429(
            request, action="reset_password", key=email_blind_index(email)
        )
        if limited:
            return limited
        services.password_reset_request(email=email, request=request)
        return redirect("account_reset_password_done")
    return render(request, "account/password_reset.html", {"form": form})


def password_reset_done(request: HttpRequest) -> HttpResponse:
    return render(request, "account/password_reset_done.html")


@require_http_methods(["GET", "POST"])
def password_reset_with_backup_code(request: HttpRequest) -> HttpResponse:
    form = BackupCodePasswordResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Per client only: a limit per handle (or the codes' own lock) would let a
        # stranger who knows a handle lock its owner out of their backup codes. Ten-letter
        # codes leave guessing hopeless at this rate.
        limited = ratelimit.consume_or_429(request, action="reset_password_backup_code")
        if limited:
            return limited
        try:
            changed = services.password_reset_with_backup_code(
                handle=form.cleaned_data["handle"],
                code=form.cleaned_data["code"],
                new_password=form.cleaned_data["password1"],
                ip=request_ip(request),
            )
        except PasswordCheckBusy as busy:
            form.add_error(None, busy)
        else:
            if changed:
                messages.success(request, "Your password is changed. Please sign in.")
                return redirect("account_login")
            form.add_error(None, "That login handle and backup code don't match an account.")
    return render(request, "accounts/password_reset_backup_code.html", {"form": form})


@require_http_methods(["GET", "POST"])
def password_reset_from_key(request: HttpRequest, uidb36: str, key: str) -> HttpResponse:
    """The emailed link: the form to choose a new password, at the link's own address.

    Django's view would move the token from the address into the session (where it sat
    in clear, alive, until the new password was set). Here the token stays in the address
    the person already has in their history and their email, and nothing is stored:
    the form posts back to the same address, and the token is checked again then. No page
    of ours loads anything from elsewhere and every answer says ``no-referrer``, so the
    address does not travel on.
    """
    limited = ratelimit.consume_or_429(request, action="reset_password_from_key")
    if limited:
        return limited
    user = _user_for_reset_link(uidb36, key)
    form = SetPasswordForm(user, request.POST or None) if user is not None else None
    if request.method == "POST" and form is not None and form.is_valid():
        try:
            services.password_reset(
                user=user,
                new_password=form.cleaned_data["new_password1"],
                method="email",
                ip=request_ip(request),
            )
        except PasswordCheckBusy as busy:
            form.add_error(None, busy)
        else:
            messages.success(request, "Your password is changed. Please sign in.")
            return redirect("account_login")
    return render(
        request,
        "account/password_reset_from_key.html",
        {"form": form, "validlink": user is not None},
    )


def _user_for_reset_link(uidb36: str, key: str):  # noqa: ANN202
    """The active person this unexpired, unused link was made for, or None."""
    try:
        user_id = base36_to_int(uidb36)
    except ValueError:
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, key):
        return None
    return user


def email_management_moved(request: HttpRequest) -> HttpResponse:
    """allauth's own email pages would store addresses in clear: ours replace them."""
    return redirect(reverse("account_email"))
