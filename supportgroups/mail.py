"""The one way the app sends email: after the transaction commits, one message per address.

After commit, so nobody is told about a change that rolled back; one message per address
(never a shared To: line), so recipients never learn who else was written to, and each
with its own error handling, so one address the mail server refuses (or a connection
that drops) does not cost everyone after it their message. A failure is logged without
the address (logs hold no contact data) and does not turn a committed change into a
server error that invites a retry.

What was really handed to the mail server is known only after commit: a caller that
records it passes ``on_sent``, told once per address the server accepted (its own
writes, after the change itself committed).
"""

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def email_on_commit(
    *,
    to: str | Iterable[str],
    subject: str,
    body: str,
    on_sent: Callable[[str], None] | None = None,
) -> None:
    addresses = [to] if isinstance(to, str) else list(to)
    _send_each_on_commit([(a, a) for a in addresses], subject, body, on_sent)


def _send_each_on_commit(
    recipients: list[tuple[str, Any]],
    subject: str,
    body: str,
    on_sent: Callable[[Any], None] | None,
) -> None:
    """(address, whom) pairs; ``on_sent(whom)`` for each the mail server accepted."""
    if not recipients:
        return
    subject = f"[{settings.SITE_NAME}] {subject}"

    def send() -> None:
        connection = get_connection()
        try:
            for address, whom in recipients:
                try:
                    connection.send_messages(
                        [EmailMessage(subject, body, None, [address], connection=connection)]
                    )
                except Exception as error:  # noqa: BLE001 - one address must not stop the rest
                    # The exception's text can hold the address: only its kind is logged.
                    logger.warning(
                        "email %r to one address not sent: %s", subject, type(error).__name__
                    )
                    # A dropped connection is opened again for the next address.
                    connection.close()
                    continue
                if on_sent is not None:
                    on_sent(whom)
        finally:
            connection.close()

    transaction.on_commit(send, robust=True)


def confirmed_address(person: Any) -> str | None:
    """The person's recovery email if they confirmed it (the only kind the app writes to
    or hands over), else None."""
    if person.recovery_email and person.recovery_email_verified:
        return person.recovery_email
    return None


def email_people_on_commit(
    *,
    people: Iterable[Any],
    subject: str,
    body: str,
    on_sent: Callable[[Any], None] | None = None,
) -> list[Any]:
    """To each person's recovery email, only where they confirmed it (``people`` are users).
    Returns the people it will write to after commit; ``on_sent(person)`` is told, after
    commit, for each whose message the mail server accepted."""
    reached = [person for person in people if confirmed_address(person)]
    _send_each_on_commit([(confirmed_address(p), p) for p in reached], subject, body, on_sent)
    return reached


def email_body(template: str, context: dict[str, Any] | None = None) -> str:
    return render_to_string(template, {"SITE_NAME": settings.SITE_NAME, **(context or {})})
