import base64
import hashlib
import secrets
import time
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin, UserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin
from django_otp.oath import TOTP

from supportgroups.crypto import EncryptedTextField, blind_index, email_blind_index


class AccountManager(UserManager):
    def _create_user_object(self, username, email, password, **extra_fields):
        # The email goes into the encrypted field with its blind index, never in clear.
        if not username:
            raise ValueError("A login handle is required.")
        user = self.model(username=self.model.normalize_username(username), **extra_fields)
        if email:
            user.set_recovery_email(email)
        user.set_password(password)
        return user


class User(AbstractBaseUser, PermissionsMixin):
    """A person's private identity. Nobody but its owner and admins ever sees it.

    Inside a group a person appears only under that membership's pseudonym. The contact
    fields are encrypted at rest; the recovery email can be looked up only through its
    blind index.
    """

    username = models.CharField(
        "login handle",
        max_length=150,
        unique=True,
        validators=[UnicodeUsernameValidator()],
        help_text="Private: used only to sign in. Never shown to other members.",
    )
    recovery_email = EncryptedTextField(null=True, blank=True)
    recovery_email_index = models.CharField(max_length=64, null=True, blank=True, unique=True)
    recovery_email_verified = models.BooleanField(default=False)
    phone = EncryptedTextField(null=True, blank=True)
    emergency_contact = EncryptedTextField(null=True, blank=True)
    is_staff = models.BooleanField(
        "admin",
        default=False,
        help_text="Admins create groups, appoint facilitators and audit the access log.",
    )
    is_active = models.BooleanField(default=True)
    # Set by an admin responding to a security incident: until both are done, the person
    # reaches nothing but the pages that do them (accounts.middleware).
    password_renewal_required = models.BooleanField(default=False)
    two_factor_renewal_required = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = AccountManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "recovery_email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return f"account {self.pk}"

    def set_recovery_email(self, email: str | None) -> None:
        """Set the encrypted email and its blind index together (like set_password)."""
        email = (email or "").strip()
        if email:
            self.recovery_email = email
            self.recovery_email_index = email_blind_index(email)
        else:
            self.recovery_email = None
            self.recovery_email_index = None
        self.recovery_email_verified = False


# --- sessions ---------------------------------------------------------------------------


def session_public_id(session_key: str) -> str:
    """Names a session on pages, forms and socket events without exposing its secret key."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:16]


class Session(AbstractBaseSession):
    """Django's database session plus the owner, so a person can list and end theirs.

    Used through ``SESSION_ENGINE = "accounts.sessions"``. ``device`` is a coarse summary
    ("Firefox on Linux") for the owner's "your sessions" page; no IP is kept here.
    """

    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="sessions"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    device = models.CharField(max_length=80, blank=True)

    @property
    def public_id(self) -> str:
        return session_public_id(self.session_key)

    @classmethod
    def get_session_store_class(cls):
        from accounts.sessions import SessionStore

        return SessionStore


# --- two-factor authentication ----------------------------------------------------------


def _new_totp_key() -> str:
    return secrets.token_hex(20)


class TOTPDevice(ThrottlingMixin, Device):
    """An authenticator app (RFC 6238), with its secret encrypted at rest.

    Replaces django-otp's own TOTP plugin, whose table stores the secret in clear.
    A token is accepted once (``last_t``), within one step either side of now, and
    failures back off exponentially (``ThrottlingMixin``).
    """

    key = EncryptedTextField(default=_new_totp_key)
    last_t = models.BigIntegerField(default=-1)
    created_at = models.DateTimeField(default=timezone.now)

    STEP = 30
    DIGITS = 6
    TOLERANCE = 1

    class Meta(Device.Meta):
        verbose_name = "authenticator app"

    @property
    def bin_key(self) -> bytes:
        return bytes.fromhex(self.key)

    def _totp(self) -> TOTP:
        totp = TOTP(self.bin_key, step=self.STEP, digits=self.DIGITS)
        totp.time = time.time()
        return totp

    def verify_token(self, token) -> bool:  # noqa: ANN001 - django-otp signature
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        token = str(token).strip().replace(" ", "")
        totp = self._totp()
        verified = (
            token.isdigit()
            and len(token) == self.DIGITS
            and totp.verify(int(token), tolerance=self.TOLERANCE, min_t=self.last_t + 1)
        )
        if verified:
            self.last_t = totp.t()
            self.throttle_reset(commit=False)
            self.save(
                update_fields=["last_t", "throttling_failure_timestamp", "throttling_failure_count"]
            )
        else:
            self.throttle_increment(commit=False)
            self.save(update_fields=["throttling_failure_timestamp", "throttling_failure_count"])
        return bool(verified)

    def get_throttle_factor(self) -> int:
        return settings.OTP_THROTTLE_FACTOR

    @property
    def base32_secret(self) -> str:
        return base64.b32encode(self.bin_key).decode("ascii")

    def provisioning_uri(self, *, issuer: str, label: str) -> str:
        issuer = issuer.replace(":", "")
        params = urlencode(
            {
                "secret": self.base32_secret,
                "issuer": issuer,
                "algorithm": "SHA1",
                "digits": self.DIGITS,
                "period": self.STEP,
            }
        )
        return f"otpauth://totp/{quote(issuer)}:{quote(label)}?{params}"


def backup_code_hash(code: str) -> str:
    """Backup codes are stored as a keyed hash: unreadable in the database, still findable."""
    normalised = code.strip().replace("-", "").replace(" ", "").lower()
    return blind_index(normalised, purpose="backup-code")


class BackupCodeDevice(ThrottlingMixin, Device):
    """Ten single-use codes for when the authenticator app is lost."""

    created_at = models.DateTimeField(default=timezone.now)

    class Meta(Device.Meta):
        verbose_name = "backup codes"

    def verify_token(self, token) -> bool:  # noqa: ANN001 - django-otp signature
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        used = self.codes.filter(
            code_hash=backup_code_hash(str(token)), used_at__isnull=True
        ).update(used_at=timezone.now())
        if used:
            self.throttle_reset(commit=False)
            self.save(update_fields=["throttling_failure_timestamp", "throttling_failure_count"])
        else:
            self.throttle_increment(commit=False)
            self.save(update_fields=["throttling_failure_timestamp", "throttling_failure_count"])
        return bool(used)

    def get_throttle_factor(self) -> int:
        return settings.OTP_THROTTLE_FACTOR

    @property
    def remaining(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "code_hash"], name="unique_backup_code")
        ]

    def __str__(self) -> str:
        return f"backup code {self.pk} ({'used' if self.used_at else 'unused'})"
