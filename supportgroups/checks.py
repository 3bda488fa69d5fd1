"""Refuse to run without the secrets that protect members' data.

asgi.py runs these checks before serving, so Daphne will not start with a key missing;
``manage.py check`` and ``migrate`` report them the same way.
"""

from cryptography.fernet import Fernet
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register(checks.Tags.security)
def check_required_secrets(app_configs, **kwargs):
    errors = []
    for number, name in enumerate(settings.REQUIRED_SECRETS, start=1):
        if not _is_set(name):
            errors.append(
                checks.Error(
                    f"{name} is not set.",
                    hint=f"Set the {name} environment variable (or {name}_FILE); "
                    "see README.md, Configuration.",
                    id=f"supportgroups.E00{number}",
                )
            )
    for key in settings.FIELD_ENCRYPTION_KEYS:
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            errors.append(
                checks.Error(
                    "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key.",
                    hint="Generate one with: python -c 'from cryptography.fernet import "
                    "Fernet; print(Fernet.generate_key().decode())'",
                    id="supportgroups.E010",
                )
            )
            break
    if not settings.DEBUG and not settings.ALLOWED_HOSTS:
        errors.append(
            checks.Error(
                "ALLOWED_HOSTS is empty, so every request would be refused.",
                hint="Set ALLOWED_HOSTS to your domain(s), comma-separated.",
                id="supportgroups.E012",
            )
        )
    for name in ("BLIND_INDEX_KEY", "AUDIT_KEY"):
        value = getattr(settings, name)
        if value and len(value) < 32:
            errors.append(
                checks.Error(
                    f"{name} is too short (at least 32 characters).",
                    id="supportgroups.E011",
                )
            )
    return errors


def _is_set(name: str) -> bool:
    try:
        return bool(getattr(settings, name))
    except ImproperlyConfigured:
        # Django refuses to hand out an empty SECRET_KEY; that is "not set" too.
        return False
