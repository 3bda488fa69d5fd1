"""Reads about accounts, each named after the rule it applies."""

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.utils import timezone

from accounts.models import BackupCodeDevice, Session, TOTPDevice, User
from accounts.roles import two_factor_role_facts, two_factor_role_names, user_has_two_factor_role
from accounts.user_row import UserRowQuery
from audit.events import Action
from audit.models import Event
from supportgroups.crypto import email_blind_index


def user_by_handle(handle: str | None, *, active_only: bool = False) -> User | None:
    """The account with this login handle, whatever its case and the spaces around it."""
    users = User.objects.filter(username__iexact=(handle or "").strip())
    if active_only:
        users = users.filter(is_active=True)
    return users.first()


def user_by_recovery_email(email: str) -> User | None:
    """Find an account by its recovery email without the email being stored in clear."""
    return User.objects.filter(recovery_email_index=email_blind_index(email)).first()


def user_is_admin_now(user: User) -> bool:
    """Read again from the database: services re-check the role, whatever a page checked
    when it loaded."""
    return User.objects.filter(pk=user.pk, is_staff=True, is_active=True).exists()


def user_requires_two_factor(user: User) -> bool:
    """Admins, and people with a role other apps say needs one (facilitators), must use a
    second factor."""
    if not user.is_authenticated:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return user_has_two_factor_role(user)


def user_has_two_factor(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def _two_factor_standing_facts() -> dict:
    return {
        "has_two_factor": Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
        **two_factor_role_facts(),
    }


# Compiled to SQL once per process (accounts/user_row.py): only the person's id differs.
_two_factor_standing_query = UserRowQuery(
    _two_factor_standing_facts, registered=two_factor_role_names
)


def user_two_factor_standing(user: User) -> tuple[bool, bool]:
    """(``user_has_two_factor``, ``user_requires_two_factor``) asked in one query: the
    check of every page a session not verified by a second factor opens
    (accounts/middleware.py), read fresh on each request."""
    row = _two_factor_standing_query.run(user.pk) or {}
    requires = (
        user.is_staff
        or user.is_superuser
        or any(value for name, value in row.items() if name.startswith("role_"))
    )
    return bool(row.get("has_two_factor")), bool(requires)


def backup_codes_left(user: User) -> int:
    device = BackupCodeDevice.objects.filter(user=user, confirmed=True).first()
    return device.remaining if device else 0


def active_sessions_for_user(user: User) -> QuerySet[Session]:
    return Session.objects.filter(user=user, expire_date__gt=timezone.now()).order_by("-last_seen")


def sessions_with_meeting_keys(user: User) -> QuerySet[Session]:
    """The person's sessions, each with ``meeting_keys``: the live device keys it made for
    encrypted meetings (one per group; meetings/models.py Device, reached through the
    session so this layer needs nothing from above it)."""
    devices = Session._meta.get_field("e2ee_devices").related_model.objects
    return active_sessions_for_user(user).prefetch_related(
        Prefetch(
            "e2ee_devices",
            queryset=devices.filter(retired_at__isnull=True)
            .select_related("membership__group")
            .order_by("created_at"),
            to_attr="meeting_keys",
        )
    )


def events_about_user(user: User) -> QuerySet[Event]:
    """Audit events whose subject is this person, newest first."""
    return Event.objects.filter(subject_id=user.pk).order_by("-seq")


def access_events_about_user(user: User) -> QuerySet[Event]:
    """Someone else looked at this person's data (or they exported it themselves)."""
    return events_about_user(user).filter(action__in=[int(a) for a in Action.access_actions()])


def session_is_two_factor_verified(user: User, session) -> bool:  # noqa: ANN001
    """What django-otp's middleware decides for HTTP, decided from a bare session (sockets)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.models import Device

    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    if not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id, for_verify=False)
    return device is not None and device.user_id == user.pk and device.confirmed


def user_must_renew_credentials(user: User) -> bool:
    """An admin asked this person for a new password and a new second factor (a security
    incident): until both are done they reach nothing else."""
    return bool(user.password_renewal_required or user.two_factor_renewal_required)


def user_may_use_sockets(user: User, session) -> bool:  # noqa: ANN001
    """The 2FA rule for websockets: the same as for pages (and, like pages, nothing until
    credentials an admin asked to renew are renewed)."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user_must_renew_credentials(user):
        return False
    if user_has_two_factor(user) or user_requires_two_factor(user):
        return session_is_two_factor_verified(user, session)
    return True
