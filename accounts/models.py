from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin, UserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models
from django.utils import timezone

from supportgroups.crypto import EncryptedTextField, email_blind_index


class AccountManager(UserManager):
    def _create_user(self, username, email, password, **extra_fields):
        user = self.model(username=self.model.normalize_username(username), **extra_fields)
        if email:
            user.set_recovery_email(email)
        user.set_password(password)
        user.save(using=self._db)
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
