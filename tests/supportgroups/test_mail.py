"""supportgroups.mail: the one way the app emails people, after commit, one message per
address, and only to a recovery email its owner confirmed (the one rule every app uses,
incidents included)."""

import pytest
from django.db import transaction

from supportgroups.mail import confirmed_address, email_people_on_commit
from tests.factories import CHEAP_PASSWORD_HASHERS, make_person
from tests.refusing_mail import BACKEND, REFUSED_MARK

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


def test_it_writes_only_to_confirmed_addresses_and_says_whom(
    mailoutbox, django_capture_on_commit_callbacks
):
    confirmed = make_person("confirmed-fern", email="fern@example.org")
    unconfirmed = make_person("unconfirmed-moss", email="moss@example.org", email_verified=False)
    without = make_person("no-email-reed")

    with django_capture_on_commit_callbacks(execute=True):
        reached = email_people_on_commit(
            people=[confirmed, unconfirmed, without], subject="Hello", body="Words"
        )

    assert reached == [confirmed]
    assert [mail.to for mail in mailoutbox] == [["fern@example.org"]]
    assert [confirmed_address(p) for p in (confirmed, unconfirmed, without)] == [
        "fern@example.org",
        None,
        None,
    ]


def test_nothing_is_sent_when_the_change_rolls_back(mailoutbox, django_capture_on_commit_callbacks):
    person = make_person("rolled-back-ivy", email="ivy@example.org")
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        email_people_on_commit(people=[person], subject="Hello", body="Words")
        raise RuntimeError("rolled back")
    assert mailoutbox == []


def test_an_address_the_mail_server_refuses_costs_nobody_else_their_message(
    settings, mailoutbox, django_capture_on_commit_callbacks, caplog
):
    """One message per address, each with its own error handling: the refused one is
    logged (without its address: logs hold no contact data) and the rest still go;
    ``on_sent`` hears only of those the server accepted."""
    settings.EMAIL_BACKEND = BACKEND
    people = [
        make_person("first-fern", email="fern@example.org"),
        make_person("refused-moss", email=f"moss.{REFUSED_MARK}@example.org"),
        make_person("last-reed", email="reed@example.org"),
    ]
    accepted = []
    with django_capture_on_commit_callbacks(execute=True):
        queued = email_people_on_commit(
            people=people, subject="Hello", body="Words", on_sent=accepted.append
        )
    assert queued == people
    assert [mail.to for mail in mailoutbox] == [["fern@example.org"], ["reed@example.org"]]
    assert accepted == [people[0], people[2]]
    assert "to one address not sent: SMTPRecipientsRefused" in caplog.text
    assert "moss" not in caplog.text
