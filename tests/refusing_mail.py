"""A mail backend that refuses some recipients, as an SMTP server does: for tests of what
the app does when one address of many is refused. Outside the app, like the mail server."""

from smtplib import SMTPRecipientsRefused

from django.core.mail.backends.locmem import EmailBackend

# Any recipient whose address contains this is refused.
REFUSED_MARK = "refused"


class RefusingBackend(EmailBackend):
    def send_messages(self, messages):  # noqa: ANN001, ANN201
        for message in messages:
            refused = {a: (550, b"No such user") for a in message.to if REFUSED_MARK in a}
            if refused:
                raise SMTPRecipientsRefused(refused)
        return super().send_messages(messages)


BACKEND = "tests.refusing_mail.RefusingBackend"
