"""The one way the app sends email: after the transaction commits, one message per address.

After commit, so nobody is told about a change that rolled back; one message per address
(never a shared To: line), so recipients never learn who else was written to. A mail
server outage is logged and does not turn a committed change into a server error that
invites a retry.
"""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.template.loader import render_to_string


def email_on_commit(*, to: str | Iterable[str], subject: str, body: str) -> None:
    addresses = [to] if isinstance(to, str) else list(to)
    messages = [(f"[{settings.SITE_NAME}] {subject}", body, None, [a]) for a in addresses]
    if messages:
        transaction.on_commit(lambda: send_mass_mail(messages), robust=True)


def confirmed_address(person: Any) -> str | None:
    """The person's recovery email if they confirmed it (the only kind the app writes to
    or hands over), else None."""
    if person.recovery_email and person.recovery_email_verified:
        return person.recovery_email
    return None


def email_people_on_commit(*, people: Iterable[Any], subject: str, body: str) -> list[Any]:
    """To each person's recovery email, only where they confirmed it (``people`` are users).
    Returns the people written to."""
    reached = [person for person in people if confirmed_address(person)]
    email_on_commit(to=[confirmed_address(p) for p in reached], subject=subject, body=body)
    return reached


def email_body(template: str, context: dict[str, Any] | None = None) -> str:
    return render_to_string(template, {"SITE_NAME": settings.SITE_NAME, **(context or {})})
