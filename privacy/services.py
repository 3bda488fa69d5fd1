"""What a member does about their own data: export it, delete their account.

These sit above every domain app, so each may ask all of them; the identity part of a
deletion is still done by ``accounts.services``.
"""

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import services as account_services
from accounts.models import BackupCodeDevice, Session, TOTPDevice, User
from accounts.selectors import events_about_user
from audit.events import Action
from audit.services import record_event, request_ip
from board.services import posts_remove_for_user
from meetings.services import messages_remove_for_user
from privacy.exports import user_data_from_apps


@transaction.atomic
def account_export(*, user: User, request: HttpRequest) -> dict[str, Any]:
    """Everything stored about this person, decrypted, as one JSON-ready document."""
    record_event(action=Action.DATA_EXPORTED, actor=user, subject=user, ip=request_ip(request))
    return {
        "exported_at": timezone.now().isoformat(),
        "account": {
            "login_handle": user.username,
            "recovery_email": user.recovery_email,
            "recovery_email_verified": user.recovery_email_verified,
            "phone": user.phone,
            "emergency_contact": user.emergency_contact,
            "joined": user.date_joined.isoformat(),
            "last_login": user.last_login.isoformat() if user.last_login else None,
            "is_admin": user.is_staff,
        },
        "two_factor": {
            "authenticator_app": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
            "backup_codes_left": sum(
                d.remaining for d in BackupCodeDevice.objects.filter(user=user)
            ),
        },
        "sessions": [
            {
                "device": s.device,
                "started": s.created_at.isoformat(),
                "last_seen": s.last_seen.isoformat(),
                "expires": s.expire_date.isoformat(),
            }
            for s in Session.objects.filter(user=user, expire_date__gt=timezone.now())
        ],
        "events_about_you": [
            {
                "when": e.created_at.isoformat(),
                "what": e.action_enum.label,
                "by_you": e.actor_id == user.pk,
            }
            for e in events_about_user(user)
        ],
        **user_data_from_apps(user),
    }


@transaction.atomic
def account_delete(*, user: User, request: HttpRequest) -> None:
    """Delete the person's account, in one transaction: their messages and board posts stay
    in place as "[removed]" without their text, then the account goes (audited, sessions
    ended, sockets closed on commit); memberships, applications and the rest go with it."""
    messages_remove_for_user(user=user)
    posts_remove_for_user(user=user)
    account_services.account_remove(user=user, request=request)
