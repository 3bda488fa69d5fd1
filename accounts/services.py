"""Every change to an account, session or second factor goes through here.

Each function writes its audit event in the same transaction and reaches live sockets
only after commit (``supportgroups.realtime``). Views, the allauth adapter, consumers and
commands all call these; none of them changes accounts directly.
"""

from __future__ import annotations

import functools
import json
import secrets
import time

import django_otp
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.tokens import default_token_generator
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import int_to_base36

from accounts.devices import summarise_user_agent
from accounts.models import (
    BackupCode,
    BackupCodeDevice,
    Session,
    TOTPDevice,
    User,
    backup_code_hash,
    session_public_id,
)
from accounts.selectors import user_by_handle, user_is_admin_now, user_requires_two_factor
from accounts.sessions import (
    DEVICE_KEY,
    LAST_SEEN_KEY,
    STARTED_KEY,
    SessionStore,
    session_expired,
    session_needs_touch,
)
from audit.events import Action
from audit.services import record_event, request_ip
from supportgroups.crypto import DecryptionError, decrypt_str, email_blind_index, encrypt_str
from supportgroups.errors import ServiceError
from supportgroups.mail import confirmed_address, email_body, email_on_commit
from supportgroups.prepared import fetch_all
from supportgroups.realtime import send_account_closed

BACKUP_CODE_COUNT = 10
EMAIL_VERIFY_MAX_AGE = 3 * 24 * 3600


class AccountError(ServiceError):
    """A refused change to an account or its second factor."""


# --- sign-up, login, logout -------------------------------------------------------------


@transaction.atomic
def account_record_signup(*, user: User, ip: str | None) -> None:
    record_event(action=Action.ACCOUNT_CREATED, actor=user, subject=user, ip=ip)


@transaction.atomic
def account_create(*, username: str, password: str, is_admin: bool = False) -> User:
    """An account made by the operator's tools (the demo data); people sign up through
    allauth, admins through the Django admin (account_create_by_admin)."""
    user = User.objects.create_user(
        username=username, password=password, is_staff=is_admin, is_superuser=is_admin
    )
    record_event(action=Action.ACCOUNT_CREATED, actor=user, subject=user)
    if is_admin:
        record_event(action=Action.ADMIN_APPOINTED, subject=user)
    return user


@transaction.atomic
def session_start(*, request: HttpRequest, user: User) -> None:
    """Called right after Django's login() (which already gave the session a new key)."""
    now = time.time()
    request.session[STARTED_KEY] = now
    request.session[LAST_SEEN_KEY] = now
    request.session[DEVICE_KEY] = summarise_user_agent(request.META.get("HTTP_USER_AGENT", ""))
    record_event(action=Action.LOGIN_SUCCEEDED, actor=user, subject=user, ip=_ip(request))


@transaction.atomic
def login_record_failure(*, handle: str, signed_in: User | None, ip: str | None) -> None:
    """A wrong handle or password. The person it concerns (if any) is kept for admins only.

    A signed-in person who mistypes their own password when asked to confirm it is them
    (before an export, say) did it themselves: they are recorded as the one who acted, so
    "Who has seen my data" does not tell them that someone else tried their password. It
    still counts as a failed password for the security signals."""
    user = user_by_handle(handle)
    confirming = user is not None and signed_in is not None and signed_in.pk == user.pk
    extra = {"known_account": user is not None}
    if confirming:
        extra["confirming_identity"] = True
    record_event(
        action=Action.LOGIN_FAILED,
        actor=user if confirming else None,
        subject=user,
        ip=ip,
        extra=extra,
    )


def login_record_throttled(*, handle: str, ip: str | None) -> None:
    """A sign-in refused unchecked: too many recent failures for this handle or address."""
    user = user_by_handle(handle)
    record_event(
        action=Action.LOGIN_THROTTLED,
        subject=user,
        ip=ip,
        extra={"known_account": user is not None},
    )


@transaction.atomic
def session_logout(
    *, request: HttpRequest, how: Action = Action.LOGGED_OUT, everywhere: bool = True
) -> None:
    """Sign out and close the sockets: every session of the person, or with
    ``everywhere=False`` only this one (the menu's "Sign out"; the sessions page offers
    "everywhere" as its own choice)."""
    user = request.user
    if user.is_authenticated:
        record_event(
            action=how,
            actor=user,
            subject=user,
            ip=_ip(request),
            extra=None if everywhere else {"only_this_session": True},
        )
        if everywhere:
            _end_sessions(
                Session.objects.filter(user=user), reason="signed_out", user=user, everything=True
            )
        else:
            _end_sessions(
                Session.objects.filter(user=user, session_key=request.session.session_key),
                reason="signed_out",
                user=user,
            )
    logout(request)


@transaction.atomic
def session_expire(*, request: HttpRequest, reason: str) -> None:
    """The idle or absolute timeout ended this session (seen on a page): sign it out like
    any other sign-out, so the sockets it opened are closed too (``signed_out``, 4001)."""
    user = request.user
    key = request.session.session_key
    if user.is_authenticated and key:
        _session_expired(user=user, session_key=key, reason=reason, ip=_ip(request))
    logout(request)


@transaction.atomic
def session_end_unverified(*, request: HttpRequest) -> None:
    """A session of someone who has two-factor authentication but was never verified by
    it (signed in before they turned it on elsewhere) is ended by that rule: audited as a
    sign-out without an actor, and any socket it opened is closed, like a timeout."""
    user = request.user
    key = request.session.session_key
    if user.is_authenticated and key:
        record_event(
            action=Action.LOGGED_OUT,
            subject=user,
            ip=_ip(request),
            extra={"two_factor_not_verified": True},
        )
        _end_sessions(Session.objects.filter(session_key=key), reason="signed_out", user=user)
    logout(request)


def session_touch(*, session_key: str, active: bool = True) -> str | None:
    """Activity on a socket (a message sent, a heartbeat while the page is visible) is
    activity of its session, by the same rules as a page: a session past its idle or
    absolute timeout ends now (its sockets are told); an alive one has its "last seen"
    refreshed (at most every ``last_seen_resolution()``).

    ``active=False`` (a heartbeat from a hidden page) only checks: the session still ends
    on time, but is not kept alive by a tab nobody looks at.

    Returns why the session is over ("signed_out", "idle", "absolute"), or None.
    The row is read fresh: the socket's own copy of the session is as old as the socket,
    and pages of the same session may have changed it since. Most calls only read it
    (every socket's heartbeat checks; "last seen" is written once a minute at most), and
    those take no row lock: a lock makes the transaction a writing one, whose commit
    waits for the disk, and a process's sockets checked their sessions about as often as
    its members sent messages. Only a call that will write locks the row, and decides
    again on what it reads under the lock.
    """
    row = _session_row(session_key)
    if row is None or row[1] is None:
        return "signed_out"
    data = SessionStore(session_key=session_key).decode(row[0])
    if session_expired(data) is None and not (active and session_needs_touch(data)):
        return None
    return _session_touch_locked(session_key=session_key, active=active)


def _session_row(session_key: str) -> tuple[str, int | None] | None:
    """The live session's data and user id (every socket's heartbeat reads it)."""
    now = timezone.now()
    if connection.vendor == "postgresql":  # a hot path: see supportgroups/prepared.py
        rows = fetch_all(_session_row_sql(), [session_key, now])
        return rows[0] if rows else None
    rows = Session.objects.filter(session_key=session_key, expire_date__gt=now)
    return rows.values_list("session_data", "user_id").first()


@functools.cache
def _session_row_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"SELECT {quote('session_data')}, {quote('user_id')}"  # noqa: S608
        f" FROM {quote(Session._meta.db_table)}"
        f" WHERE {quote('session_key')} = %s AND {quote('expire_date')} > %s::timestamptz"
    )


@transaction.atomic
def _session_touch_locked(*, session_key: str, active: bool) -> str | None:
    row = (
        Session.objects.select_for_update(no_key=True)
        .filter(session_key=session_key, expire_date__gt=timezone.now())
        .first()
    )
    if row is None or row.user_id is None:
        return "signed_out"
    store = SessionStore(session_key=session_key)
    data = store.decode(row.session_data)
    reason = session_expired(data)
    if reason:
        _session_expired(user=row.user, session_key=session_key, reason=reason, ip=None)
        return reason
    if active and session_needs_touch(data):
        now = time.time()
        data[LAST_SEEN_KEY] = now
        row.session_data = store.encode(data)
        row.last_seen = timezone.now()
        row.save(update_fields=["session_data", "last_seen"])
    return None


def session_hold(*, session_key: str | None) -> bool:
    """Whether this session is still signed in, holding its row until the transaction
    ends: a sign-out (which deletes the row) waits for a message being stored under it,
    and a message stored after a sign-out committed is refused."""
    if not session_key:
        return False
    held = (
        Session.objects.select_for_update(no_key=True)
        .filter(session_key=session_key, expire_date__gt=timezone.now(), user__isnull=False)
        .values_list("session_key", flat=True)
    )
    return bool(list(held[:1]))


def sessions_hold(*, session_keys: list[str]) -> set[str]:
    """``session_hold`` for several sessions at once, in one statement: those still signed
    in, each row held until the transaction ends. The rows are locked in key order, so two
    transactions holding overlapping sets (the chat's group commit in two processes) take
    them in the same order and cannot deadlock on them."""
    if not session_keys:
        return set()
    if connection.vendor == "postgresql":  # the chat's hot path: see supportgroups/prepared.py
        rows = fetch_all(_sessions_hold_sql(), [sorted(session_keys), timezone.now()], locks=True)
        return {key for (key,) in rows}
    held = (
        Session.objects.select_for_update(no_key=True)
        .filter(session_key__in=session_keys, expire_date__gt=timezone.now(), user__isnull=False)
        .order_by("session_key")
        .values_list("session_key", flat=True)
    )
    return set(held)


@functools.cache
def _sessions_hold_sql() -> str:
    """sessions_hold's query, bound by the server. Its one plan is made without the values
    (supportgroups/prepared.py), so it is led by the keys, one row each through the
    primary key (LATERAL: the row lock stays inside, so the planner keeps it per key).
    Written as a filter on all rows, the plan walked the expiry index over every session
    signed in, for each message. The keys come sorted, so the rows are locked in key order:
    sorted here by code point, which for Django's session keys (32 lowercase letters and
    digits) is also the order of the database's C and usual locale collations, in which
    sessions_of_user_hold takes them."""
    quote = connection.ops.quote_name
    return (
        "SELECT held.session_key FROM unnest(%s::varchar[]) AS wanted (session_key)"  # noqa: S608
        f" CROSS JOIN LATERAL (SELECT {quote('session_key')}"
        f" FROM {quote(Session._meta.db_table)}"
        f" WHERE {quote('session_key')} = wanted.session_key"
        f" AND {quote('expire_date')} > %s::timestamptz AND {quote('user_id')} IS NOT NULL"
        " FOR NO KEY UPDATE) AS held"
    )


def sessions_of_user_hold(*, user: User) -> None:
    """Hold every session row of ``user`` until the transaction ends, in key order (as
    sessions_hold takes them). A chat send of theirs in flight holds its session's row
    until its commit: this waits for it, and a send that comes later waits for this
    transaction and then finds the person signed out."""
    sessions = Session.objects.select_for_update().filter(user=user).order_by("session_key")
    list(sessions.values_list("session_key", flat=True))


def _session_expired(*, user: User, session_key: str, reason: str, ip: str | None) -> None:
    # Signed out by the clock, not by the person: no actor.
    record_event(action=Action.LOGGED_OUT, subject=user, ip=ip, extra={"timeout": reason})
    _end_sessions(Session.objects.filter(session_key=session_key), reason=reason, user=user)


def session_leave_quickly(*, request: HttpRequest) -> None:
    """The "Leave quickly" control: the same as signing out, recorded as such."""
    session_logout(request=request, how=Action.QUICK_EXIT)


@transaction.atomic
def sessions_end(
    *, user: User, request: HttpRequest | None = None, keep_current: bool, session_key: str = ""
) -> int:
    """End one session (by key), or all of the person's sessions (but this one if asked)."""
    sessions = Session.objects.filter(user=user)
    if session_key:
        sessions = sessions.filter(session_key=session_key)
    if keep_current and request is not None:
        sessions = sessions.exclude(session_key=request.session.session_key)
    ended = _end_sessions(sessions, reason="session_ended", user=user)
    record_event(
        action=Action.SESSION_REVOKED,
        actor=user,
        subject=user,
        ip=_ip(request),
        extra={"sessions_ended": ended, "kept_current": keep_current},
    )
    if not keep_current and request is not None:
        logout(request)
    return ended


# --- passwords --------------------------------------------------------------------------


@transaction.atomic
def password_changed(*, request: HttpRequest, user: User) -> None:
    """After allauth saved the new password: end every other session and their sockets.
    A new password an admin asked for (an incident) is now chosen."""
    others = Session.objects.filter(user=user).exclude(session_key=request.session.session_key)
    _end_sessions(others, reason="password_changed", user=user)
    extra = None
    if user.password_renewal_required:
        user.password_renewal_required = False
        user.save(update_fields=["password_renewal_required"])
        extra = {"renewal_required": True}
    record_event(
        action=Action.PASSWORD_CHANGED, actor=user, subject=user, ip=_ip(request), extra=extra
    )


@transaction.atomic
def password_reset(*, user: User, new_password: str, method: str, ip: str | None) -> None:
    """Set a new password after proving control of the email or a backup code."""
    user.set_password(new_password)
    user.save(update_fields=["password"])
    _end_sessions(
        Session.objects.filter(user=user), reason="password_changed", user=user, everything=True
    )
    record_event(
        action=Action.PASSWORD_RESET,
        actor=user,
        subject=user,
        ip=ip,
        extra={"method": method},
    )


def password_reset_request(*, email: str, request: HttpRequest) -> None:
    """Email a reset link if (and only if) the address is someone's verified recovery email;
    otherwise tell the address that it belongs to no account (as allauth does).

    The caller answers the same whatever happens here, and an email is sent either way so
    that the answer also takes as long: nobody learns whether the address is known.
    """
    user = (
        User.objects.filter(
            recovery_email_index=email_blind_index(email),
            recovery_email_verified=True,
            is_active=True,
        )
        .exclude(password__startswith="!")
        .first()
    )
    if user is None:
        email_on_commit(
            to=email.strip(),
            subject="Password reset requested",
            body=email_body("accounts/email/password_reset_unknown.txt"),
        )
        return
    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": int_to_base36(user.pk), "key": default_token_generator.make_token(user)},
    )
    email_on_commit(
        to=confirmed_address(user),
        subject="Reset your password",
        body=email_body(
            "accounts/email/password_reset.txt",
            # SITE_URL, not the request's Host: a Host header with another port (or any name
            # ALLOWED_HOSTS lets through) must not send the person's token elsewhere.
            {"link": f"{settings.SITE_URL}{path}", "username": user.username},
        ),
    )


@transaction.atomic
def password_reset_with_backup_code(
    *, handle: str, code: str, new_password: str, ip: str | None
) -> bool:
    """Reset with a one-time backup code. False (and nothing changed) if they don't match.

    Every attempt does the same work whether or not the handle exists or has backup
    codes: one account lookup, one keyed hash of the code, one conditional UPDATE of an
    unused code, one audit event. So the answer and its cost say nothing about the handle.

    A wrong code here neither counts towards nor respects the codes' own lock (the 2FA
    sign-in step's back-off): a stranger who knows a handle must not be able to lock its
    owner out of their own codes. Guessing is throttled per client instead (the view),
    against ten-letter codes from a 31-letter alphabet.
    """
    user = user_by_handle(handle, active_only=True)
    # With no such person, the same UPDATE runs for an owner that cannot exist (ids
    # start at 1; None would be another statement, "IS NULL").
    used = BackupCode.objects.filter(
        device__user_id=user.pk if user else 0,
        device__confirmed=True,
        code_hash=backup_code_hash(code),
        used_at__isnull=True,
    ).update(used_at=timezone.now())
    if not used:
        record_event(
            action=Action.TWO_FACTOR_FAILED,
            subject=user,
            ip=ip,
            extra={"during": "password_reset", "known_account": user is not None},
        )
        return False
    record_event(
        action=Action.BACKUP_CODE_USED,
        actor=user,
        subject=user,
        ip=ip,
        extra={"during": "password_reset"},
    )
    password_reset(user=user, new_password=new_password, method="backup_code", ip=ip)
    return True


# --- recovery email and contact details -------------------------------------------------


@transaction.atomic
def recovery_email_set(*, user: User, email: str, request: HttpRequest) -> None:
    """Send a confirmation link to the address; nothing is stored until it is opened.

    Storing only confirmed addresses means a typo or someone else's address never sits on
    the account, and the pages look the same whether or not another account already uses
    the address (that address is told instead): nobody learns which addresses are known.
    """
    email = email.strip()
    index = email_blind_index(email)
    if User.objects.filter(recovery_email_index=index).exclude(pk=user.pk).exists():
        email_on_commit(
            to=email,
            subject="Someone tried to use this address",
            body=email_body("accounts/email/address_in_use.txt"),
        )
        return
    # The link carries the address encrypted (never readable in logs or history).
    token = encrypt_str(json.dumps({"user": user.pk, "email": email}))
    link = f"{settings.SITE_URL}{reverse('account_verify_email', kwargs={'token': token})}"
    email_on_commit(
        to=email,
        subject="Confirm your recovery email",
        body=email_body("accounts/email/verify_email.txt", {"link": link}),
    )


@transaction.atomic
def recovery_email_remove(*, user: User, ip: str | None) -> None:
    user.set_recovery_email(None)
    user.save(update_fields=["recovery_email", "recovery_email_index", "recovery_email_verified"])
    record_event(
        action=Action.CONTACT_DETAILS_CHANGED,
        actor=user,
        subject=user,
        ip=ip,
        extra={"field": "recovery_email", "removed": True},
    )


@transaction.atomic
def recovery_email_verify(*, token: str, ip: str | None) -> User | None:
    """Store the address, confirmed, if the link is genuine, unexpired and still free."""
    try:
        data = json.loads(decrypt_str(token, where="email link", ttl=EMAIL_VERIFY_MAX_AGE))
    except (DecryptionError, ValueError):
        return None
    user = (
        User.objects.select_for_update(no_key=True)
        .filter(pk=data.get("user"), is_active=True)
        .first()
    )
    email = data.get("email") or ""
    if user is None or not email:
        return None
    index = email_blind_index(email)
    if User.objects.filter(recovery_email_index=index).exclude(pk=user.pk).exists():
        return None
    if user.recovery_email_index == index and user.recovery_email_verified:
        return user
    user.set_recovery_email(email)
    user.recovery_email_verified = True
    user.save(update_fields=["recovery_email", "recovery_email_index", "recovery_email_verified"])
    record_event(
        action=Action.CONTACT_DETAILS_CHANGED,
        actor=user,
        subject=user,
        ip=ip,
        extra={"field": "recovery_email"},
    )
    record_event(action=Action.EMAIL_VERIFIED, actor=user, subject=user, ip=ip)
    return user


@transaction.atomic
def contact_details_update(
    *, user: User, phone: str, emergency_contact: str, ip: str | None
) -> None:
    changed = []
    if (user.phone or "") != phone:
        user.phone = phone or None
        changed.append("phone")
    if (user.emergency_contact or "") != emergency_contact:
        user.emergency_contact = emergency_contact or None
        changed.append("emergency_contact")
    if not changed:
        return
    user.save(update_fields=changed)
    record_event(
        action=Action.CONTACT_DETAILS_CHANGED,
        actor=user,
        subject=user,
        ip=ip,
        extra={"fields": changed},
    )


# --- two-factor authentication ----------------------------------------------------------


@transaction.atomic
def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """The unconfirmed authenticator for this person, created on first visit to set-up."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def totp_enrolment_confirm(
    *, user: User, device: TOTPDevice, token: str, request: HttpRequest
) -> list[str] | None:
    """Confirm the app with a first code; returns the backup codes to show once, or None."""
    device = TOTPDevice.objects.select_for_update(no_key=True).get(pk=device.pk, user=user)
    if not device.verify_token(token):
        record_event(
            action=Action.TWO_FACTOR_FAILED,
            actor=user,
            subject=user,
            ip=_ip(request),
            extra={"during": "enrolment"},
        )
        return None
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _backup_codes_replace(user=user)
    extra = None
    if user.two_factor_renewal_required:
        # The authenticator and backup codes an admin asked to replace are gone now.
        user.two_factor_renewal_required = False
        user.save(update_fields=["two_factor_renewal_required"])
        extra = {"renewal_required": True}
    record_event(
        action=Action.TWO_FACTOR_ENABLED, actor=user, subject=user, ip=_ip(request), extra=extra
    )
    _mark_session_verified(request=request, device=device)
    # Other sessions signed in before 2FA existed are no longer good enough.
    others = Session.objects.filter(user=user).exclude(session_key=request.session.session_key)
    _end_sessions(others, reason="two_factor_changed", user=user)
    return codes


@transaction.atomic
def backup_codes_regenerate(*, user: User, ip: str | None) -> list[str]:
    codes = _backup_codes_replace(user=user)
    record_event(
        action=Action.TWO_FACTOR_ENABLED,
        actor=user,
        subject=user,
        ip=ip,
        extra={"backup_codes_regenerated": True},
    )
    return codes


@transaction.atomic
def two_factor_disable(*, user: User, request: HttpRequest) -> None:
    if user_requires_two_factor(user):
        raise AccountError(
            "two_factor_required", "Facilitators and admins must keep two-factor authentication on."
        )
    TOTPDevice.objects.filter(user=user).delete()
    BackupCodeDevice.objects.filter(user=user).delete()
    request.session.pop(django_otp.DEVICE_ID_SESSION_KEY, None)
    record_event(action=Action.TWO_FACTOR_DISABLED, actor=user, subject=user, ip=_ip(request))


@transaction.atomic
def two_factor_verify(
    *, user: User, token: str, ip: str | None
) -> TOTPDevice | BackupCodeDevice | None:
    """Check a code from the app or a backup code; the device that accepted it, or None."""
    token = (token or "").strip()
    digits = token.replace(" ", "")
    if digits.isdigit() and len(digits) == TOTPDevice.DIGITS:
        devices = list(
            TOTPDevice.objects.select_for_update(no_key=True).filter(user=user, confirmed=True)
        )
    else:
        devices = list(
            BackupCodeDevice.objects.select_for_update(no_key=True).filter(
                user=user, confirmed=True
            )
        )
    for device in devices:
        if device.verify_token(token):
            if isinstance(device, BackupCodeDevice):
                record_event(
                    action=Action.BACKUP_CODE_USED,
                    actor=user,
                    subject=user,
                    ip=ip,
                    extra={"remaining": device.remaining},
                )
            return device
    record_event(action=Action.TWO_FACTOR_FAILED, subject=user, ip=ip, extra={"during": "login"})
    return None


def two_factor_mark_verified(
    *, request: HttpRequest, device: TOTPDevice | BackupCodeDevice
) -> None:
    """After a successful second step: remember it in a session with a fresh key."""
    _mark_session_verified(request=request, device=device)


def _mark_session_verified(*, request: HttpRequest, device) -> None:  # noqa: ANN001
    request.session.cycle_key()
    django_otp.login(request, device)


def _backup_codes_replace(*, user: User) -> list[str]:
    BackupCodeDevice.objects.filter(user=user).delete()
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    codes = [_new_backup_code() for _ in range(BACKUP_CODE_COUNT)]
    BackupCode.objects.bulk_create(
        BackupCode(device=device, code_hash=backup_code_hash(code)) for code in codes
    )
    return codes


def _new_backup_code() -> str:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: easy to copy by hand
    raw = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


# --- deletion (privacy.services.account_delete is the way in) -----------------------------


@transaction.atomic
def account_remove(*, user: User, request: HttpRequest) -> None:
    """Remove the person's account: identity, contact details, sessions, second factors.

    Only ``privacy.services.account_delete`` calls this, after the apps above accounts
    have let go of what they keep about the person. The audit event keeps only the
    account's number, never what was deleted.
    """
    user_id = user.pk
    record_event(action=Action.ACCOUNT_DELETED, actor=user, subject=user, ip=_ip(request))
    _end_sessions(
        Session.objects.filter(user_id=user_id),
        reason="account_deleted",
        user=user,
        everything=True,
    )
    logout(request)
    User.objects.filter(pk=user_id).delete()


# --- admin changes -----------------------------------------------------------------------


@transaction.atomic
def account_create_by_admin(*, actor: User, user: User, ip: str | None) -> User:
    """Store an account made in the Django admin (its form already hashed the password)."""
    _require_admin(actor)
    user.save()
    record_event(
        action=Action.ACCOUNT_CREATED, actor=actor, subject=user, ip=ip, extra={"by_admin": True}
    )
    return user


@transaction.atomic
def account_update_by_admin(*, actor: User, user: User, changed: list[str], ip: str | None) -> None:
    """Saves a change made in the Django admin; making or unmaking an admin is its own event."""
    _require_admin(actor)
    user.save()
    if "is_staff" in changed or "is_superuser" in changed:
        action = (
            Action.ADMIN_APPOINTED if (user.is_staff or user.is_superuser) else Action.ADMIN_REMOVED
        )
        record_event(action=action, actor=actor, subject=user, ip=ip)
    others = [name for name in changed if name not in ("is_staff", "is_superuser", "password")]
    if others:
        record_event(
            action=Action.ACCOUNT_CHANGED_BY_ADMIN,
            actor=actor,
            subject=user,
            ip=ip,
            extra={"fields": others},
        )
    if "is_active" in changed and not user.is_active:
        _end_sessions(
            Session.objects.filter(user=user), reason="account_disabled", user=user, everything=True
        )


@transaction.atomic
def password_set_by_admin(
    *, actor: User, user: User, password: str | None, ip: str | None, current_session_key: str = ""
) -> None:
    """An admin sets someone's password in the Django admin (None: password sign-in off).

    Like a password reset, every session of the person ends and their sockets close; an
    admin setting their own keeps the session they are using (as changing it does).
    """
    _require_admin(actor)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.save(update_fields=["password"])
    sessions = Session.objects.filter(user=user)
    own = actor.pk == user.pk and bool(current_session_key)
    if own:
        sessions = sessions.exclude(session_key=current_session_key)
    _end_sessions(sessions, reason="password_changed", user=user, everything=not own)
    record_event(
        action=Action.ACCOUNT_CHANGED_BY_ADMIN,
        actor=actor,
        subject=user,
        ip=ip,
        extra={"fields": ["password"], "password_sign_in": password is not None},
    )


@transaction.atomic
def sessions_end_by_admin(
    *,
    actor: User,
    users: list[User] | None,
    ip: str | None,
    keep_session_key: str = "",
    cause: models.Model | None = None,
) -> dict[str, int]:
    """An admin signs out these people (None: everyone) on every device, and their open
    sockets close at once. The admin's own current session (``keep_session_key``) stays.

    Each person signed out gets their own event (they read "Sessions of yours were signed
    out"); ``cause`` (an incident) is the target of those events. Returns how many
    people and sessions were signed out."""
    _require_admin(actor)
    sessions = Session.objects.filter(user__isnull=False)
    if users is not None:
        sessions = sessions.filter(user__in=[user.pk for user in users])
    if keep_session_key:
        sessions = sessions.exclude(session_key=keep_session_key)
    # Every socket of each person closes, but the admin's own: only those of the
    # sessions ended (their current one stays open).
    ended = _end_sessions_of_people(
        sessions, reason="signed_out", by_session_only=actor.pk if keep_session_key else None
    )
    for user_id, count in sorted(ended.items()):
        record_event(
            action=Action.SESSION_REVOKED,
            actor=actor,
            subject=User(pk=user_id),
            target=cause,
            ip=ip,
            extra={"sessions_ended": count, "by_admin": True},
        )
    return {"people": len(ended), "sessions": sum(ended.values())}


@transaction.atomic
def credentials_renewal_require(
    *, actor: User, users: list[User], ip: str | None, cause: models.Model | None = None
) -> int:
    """An admin requires these people to choose a new password and set up their second
    factor again at their next sign-in; they are signed out everywhere now. Until both
    are done they reach nothing else (``accounts.middleware.CredentialRenewalMiddleware``)
    and no socket. The acting admin is never among them (they would lock themselves out
    in the middle of responding). Returns how many accounts must renew."""
    _require_admin(actor)
    targets = list(
        User.objects.select_for_update(no_key=True)
        .filter(pk__in=[user.pk for user in users], is_active=True)
        .exclude(pk=actor.pk)
        .order_by("pk")
    )
    for user in targets:
        user.password_renewal_required = True
        user.two_factor_renewal_required = True
        user.save(update_fields=["password_renewal_required", "two_factor_renewal_required"])
        _end_sessions(
            Session.objects.filter(user=user),
            reason="credentials_renewal",
            user=user,
            everything=True,
        )
        record_event(
            action=Action.CREDENTIALS_RENEWAL_REQUIRED,
            actor=actor,
            subject=user,
            target=cause,
            ip=ip,
        )
    return len(targets)


# --- helpers ----------------------------------------------------------------------------


def _end_sessions(sessions, *, reason: str, user: User, everything: bool = False) -> int:  # noqa: ANN001
    """Delete sessions of one person and, after commit, close the sockets they opened
    (``everything``: every socket of the person, told even when no session was left)."""
    ended = _end_sessions_of_people(
        sessions.filter(user_id=user.pk),
        reason=reason,
        by_session_only=None if everything else user.pk,
    )
    if everything and not ended:
        send_account_closed(user_id=user.pk, reason=reason, session_ids=None)
    return ended.get(user.pk, 0)


def _end_sessions_of_people(
    sessions,  # noqa: ANN001
    *,
    reason: str,
    by_session_only: int | None,
) -> dict[int, int]:
    """The one way sessions end: delete them (one statement, whoever's they are) and,
    after commit, close their owners' sockets: every socket of each owner, but for the
    person ``by_session_only`` (a user id), whose other sessions stay signed in: only the
    sockets the ended sessions opened. Returns how many sessions each person lost."""
    by_user: dict[int, list[str]] = {}
    for user_id, key in sessions.filter(user__isnull=False).values_list("user_id", "session_key"):
        by_user.setdefault(user_id, []).append(key)
    sessions.delete()
    for user_id, keys in sorted(by_user.items()):
        send_account_closed(
            user_id=user_id,
            reason=reason,
            session_ids=(
                [session_public_id(key) for key in keys] if user_id == by_session_only else None
            ),
        )
    return {user_id: len(keys) for user_id, keys in by_user.items()}


def _require_admin(actor: User) -> None:
    """Services re-check the role, whatever the admin site checked when the page loaded."""
    if not user_is_admin_now(actor):
        raise AccountError("not_admin", "Only site admins can do that.")


def _ip(request: HttpRequest | None) -> str | None:
    return request_ip(request) if request is not None else None
