"""Emails to admins about security signals, each sent once per window (not per event).

The audit log calls these (``audit.services.security_alerts_use``, set in accounts'
AppConfig) once an event worth an alert is committed."""

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_requires_two_factor
from audit.events import Action
from audit.models import Event
from supportgroups.mail import email_people_on_commit


def alert_admins(
    subject: str, body: str, *, once_key: str | None = None, window: int = 3600
) -> bool:
    """Send to every active admin with a confirmed recovery email; with ``once_key``, at most
    once per ``window`` seconds. Returns whether it was sent."""
    if once_key is not None and not cache.add(f"alert:{once_key}", 1, timeout=window):
        return False
    email_people_on_commit(
        people=User.objects.filter(is_staff=True, is_active=True), subject=subject, body=body
    )
    return True


def consider(event: Event) -> None:
    """Called after an event is committed: does it cross a threshold worth an email?"""
    action = event.action_enum
    if action == Action.LOGIN_FAILED:
        _failed_login_thresholds(event)
    elif action == Action.CONTACT_DETAILS_REVEALED:
        alert_admins(
            "Emergency contact details were revealed",
            "A facilitator revealed a member's emergency contact details after giving a "
            f"reason (audit row {event.seq}). The audit console's access review of the "
            "group shows who, about whom, and the reason.\n",
        )
    elif action == Action.TWO_FACTOR_DISABLED and _is_privileged(event.subject_id):
        alert_admins(
            "Two-factor authentication was turned off for a facilitator or admin",
            f"See audit row {event.seq} in the audit console.\n",
        )
    elif action == Action.ADMIN_APPOINTED:
        # (A broken chain is emailed by services.chain_verify_and_record, with details.)
        alert_admins(action.label, f"See audit row {event.seq} in the audit console.\n")


def _failed_login_thresholds(event: Event) -> None:
    hour_ago = timezone.now() - timedelta(hours=1)
    window = int(timezone.now().timestamp() // 3600)
    failed = Event.objects.filter(action=Action.LOGIN_FAILED, created_at__gte=hour_ago)
    if event.subject_id is not None:
        count = failed.filter(subject_id=event.subject_id).count()
        if count > settings.ALERT_FAILED_LOGINS_PER_ACCOUNT:
            alert_admins(
                "Many failed sign-ins for one account",
                f"{count} failed sign-ins for account {event.subject_id} in the last hour.\n",
                once_key=f"failed-account:{event.subject_id}:{window}",
            )
    if event.ip_index:
        count = failed.filter(ip_index=event.ip_index).count()
        if count > settings.ALERT_FAILED_LOGINS_PER_IP:
            alert_admins(
                "Many failed sign-ins from one address",
                f"{count} failed sign-ins from one address in the last hour "
                "(the audit console shows which).\n",
                once_key=f"failed-ip:{event.ip_index}:{window}",
            )


def _is_privileged(user_id: int | None) -> bool:
    if user_id is None:
        return False
    user = User.objects.filter(pk=user_id).first()
    return user is not None and user_requires_two_factor(user)
