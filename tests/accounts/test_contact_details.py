"""The privacy centre (/account/): contact details, the recovery email and its link."""

import json
import re

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import User
from audit.events import Action
from tests.accounts.conftest import (
    PASSWORD,
    dump_every_table,
    events,
    new_client,
    normalise,
    signed_in_client,
)

pytestmark = pytest.mark.django_db

PHONE = "+44 7700 900123"
EMERGENCY = "Alex Doe (sister), +44 20 7946 0958"
EMAIL = "robin.example@mail.test"


def raw_user_row(user) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_user WHERE id = %s", [user.pk])
        return " | ".join(str(value) for value in cursor.fetchone())


def add_recovery_email(client, email, capture):
    with capture(execute=True):
        return client.post("/account/email/", {"email": email})


def link_in(mail) -> str:
    return re.search(re.escape(settings.SITE_URL) + r"(/\S+)", mail.body).group(1)


# --- contact details ------------------------------------------------------------------------


def test_it_says_who_can_see_each_contact_detail(owner):
    client = signed_in_client(owner)

    page = client.get("/account/contact/").content.decode()

    assert "no other\n    member can ever see them" in page
    assert "No other member ever sees it." in page
    assert "only in a safety emergency, after writing down why" in page
    assert "under “Who has seen my data”" in page
    assert "shown only in the same emergency as your phone number" in page


def test_it_saves_contact_details_encrypted(owner):
    client = signed_in_client(owner)

    response = client.post("/account/contact/", {"phone": PHONE, "emergency_contact": EMERGENCY})

    assert response.status_code == 302
    assert response["Location"] == "/account/"
    raw = raw_user_row(owner)
    for secret in [PHONE, "7700 900123", "Alex Doe", "7946 0958"]:
        assert secret not in raw
    owner.refresh_from_db()
    assert (owner.phone, owner.emergency_contact) == (PHONE, EMERGENCY)
    changed = events(Action.CONTACT_DETAILS_CHANGED)
    assert [(e.actor_id, e.subject_id, e.extra) for e in changed] == [
        (owner.pk, owner.pk, {"fields": ["phone", "emergency_contact"]})
    ]
    assert "7700" not in json.dumps([e.extra for e in changed])
    # The form shows them back to their owner.
    page = client.get("/account/contact/").content.decode()
    assert f'value="{PHONE}"' in page


def test_it_refuses_a_phone_number_with_letters(owner):
    client = signed_in_client(owner)

    response = client.post("/account/contact/", {"phone": "call me maybe", "emergency_contact": ""})

    assert response.status_code == 200
    assert "Please enter a phone number" in response.content.decode()
    owner.refresh_from_db()
    assert owner.phone is None
    assert not events(Action.CONTACT_DETAILS_CHANGED)


def test_it_clears_contact_details(owner):
    client = signed_in_client(owner)
    client.post("/account/contact/", {"phone": PHONE, "emergency_contact": EMERGENCY})

    client.post("/account/contact/", {"phone": "", "emergency_contact": ""})

    owner.refresh_from_db()
    assert owner.phone is None and owner.emergency_contact is None


# --- recovery email -------------------------------------------------------------------------


def test_it_stores_the_recovery_email_only_once_confirmed_and_then_encrypted(
    owner, django_capture_on_commit_callbacks, mailoutbox
):
    client = signed_in_client(owner)

    response = add_recovery_email(client, EMAIL, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert response["Location"] == "/account/email/"
    # Nothing is kept until the link is opened: a typo or someone else's address never
    # sits on the account.
    owner.refresh_from_db()
    assert owner.recovery_email is None and owner.recovery_email_index is None
    assert not events(Action.CONTACT_DETAILS_CHANGED)
    (mail,) = mailoutbox
    assert mail.to == [EMAIL]
    assert "/account/email/verify/" in mail.body
    assert EMAIL not in link_in(mail)  # the address travels encrypted in the link
    assert owner.username not in mail.body  # the handle never travels by email unasked
    # The page says a link is on its way (the address is nowhere, not even the session).
    waiting = " ".join(client.get("/account/email/").content.decode().split())
    assert "A confirmation link was sent on" in waiting and "works for 3 days" in waiting
    assert EMAIL not in waiting and EMAIL.split("@")[1] not in dump_every_table()

    client.post(link_in(mail))
    assert "A confirmation link was sent" not in client.get("/account/email/").content.decode()

    owner.refresh_from_db()
    assert owner.recovery_email == EMAIL and owner.recovery_email_verified
    assert EMAIL not in raw_user_row(owner)
    assert EMAIL not in dump_every_table()
    changed = events(Action.CONTACT_DETAILS_CHANGED)
    assert [(e.subject_id, e.extra) for e in changed] == [(owner.pk, {"field": "recovery_email"})]
    assert len(events(Action.EMAIL_VERIFIED)) == 1


def test_it_confirms_the_recovery_email_only_by_post(
    owner, django_capture_on_commit_callbacks, mailoutbox
):
    client = signed_in_client(owner)
    add_recovery_email(client, EMAIL, django_capture_on_commit_callbacks)
    link = link_in(mailoutbox[0])

    # A mail scanner opening the link confirms nothing: it gets a button.
    page = new_client().get(link)
    assert page.status_code == 200
    assert "Confirm this address" in page.content.decode()
    owner.refresh_from_db()
    assert not owner.recovery_email_verified
    assert not events(Action.EMAIL_VERIFIED)

    response = client.post(link)

    assert response.status_code == 302
    assert response["Location"] == "/account/email/"
    owner.refresh_from_db()
    assert owner.recovery_email_verified
    verified = events(Action.EMAIL_VERIFIED)
    assert [(e.actor_id, e.subject_id) for e in verified] == [(owner.pk, owner.pk)]
    # Pressing it again changes nothing and records nothing more.
    client.post(link)
    assert len(events(Action.EMAIL_VERIFIED)) == 1


def test_it_confirms_from_a_browser_that_is_not_signed_in(
    owner, django_capture_on_commit_callbacks, mailoutbox
):
    add_recovery_email(signed_in_client(owner), EMAIL, django_capture_on_commit_callbacks)

    response = new_client().post(link_in(mailoutbox[0]))

    assert response.status_code == 302
    assert response["Location"] == "/"
    owner.refresh_from_db()
    assert owner.recovery_email_verified


def test_it_refuses_a_tampered_link_and_a_link_for_an_address_taken_since(
    owner, outsider, django_capture_on_commit_callbacks, mailoutbox
):
    client = signed_in_client(owner)
    add_recovery_email(client, EMAIL, django_capture_on_commit_callbacks)
    old_link = link_in(mailoutbox[0])
    # Meanwhile someone else confirms the same address for their account.
    outsider_client = signed_in_client(outsider)
    add_recovery_email(outsider_client, EMAIL, django_capture_on_commit_callbacks)
    outsider_client.post(link_in(mailoutbox[-1]))

    tampered = client.post(old_link.replace("/verify/", "/verify/x"))
    outdated = client.post(old_link)

    assert tampered.status_code == outdated.status_code == 400
    assert "This link is not valid any more" in outdated.content.decode()
    owner.refresh_from_db()
    assert owner.recovery_email is None
    assert [e.subject_id for e in events(Action.EMAIL_VERIFIED)] == [outsider.pk]


def test_it_answers_the_same_when_the_address_belongs_to_someone_else(
    owner, outsider, django_capture_on_commit_callbacks, mailoutbox
):
    outsider_client = signed_in_client(outsider)
    add_recovery_email(outsider_client, EMAIL, django_capture_on_commit_callbacks)
    outsider_client.post(link_in(mailoutbox[-1]))
    mailoutbox.clear()
    fresh_client = signed_in_client(
        User.objects.create_user(username="new-wren", password=PASSWORD)
    )
    client = signed_in_client(owner)

    fresh = add_recovery_email(fresh_client, "fresh@mail.test", django_capture_on_commit_callbacks)
    taken = add_recovery_email(client, EMAIL.upper(), django_capture_on_commit_callbacks)

    assert (fresh.status_code, fresh["Location"]) == (taken.status_code, taken["Location"])
    said = [[m.message for m in r.wsgi_request._messages][-1] for r in (fresh, taken)]
    assert (
        said[0]
        == said[1]
        == ("We've sent a link to that address. Open it to confirm your recovery email.")
    )
    # Nothing was stored, and the address's owner is told that someone tried.
    owner.refresh_from_db()
    assert owner.recovery_email is None and owner.recovery_email_index is None
    outsider.refresh_from_db()
    assert outsider.recovery_email == EMAIL
    notice = mailoutbox[-1]
    assert notice.to == [EMAIL.upper()]
    assert "already used by another account" in notice.body
    assert outsider.username not in notice.body and "verify" not in notice.body


def test_it_shows_the_same_pages_afterwards_when_the_address_belongs_to_someone_else(
    owner, outsider, django_capture_on_commit_callbacks, mailoutbox
):
    outsider_client = signed_in_client(outsider)
    add_recovery_email(outsider_client, EMAIL, django_capture_on_commit_callbacks)
    outsider_client.post(link_in(mailoutbox[-1]))
    outsider.refresh_from_db()
    assert outsider.recovery_email == EMAIL
    fresh_user = User.objects.create_user(username="new-wren", password=PASSWORD)
    fresh_client = signed_in_client(fresh_user)
    client = signed_in_client(owner)

    add_recovery_email(fresh_client, "fresh@mail.test", django_capture_on_commit_callbacks)
    add_recovery_email(client, EMAIL, django_capture_on_commit_callbacks)

    def shown(person_client, person, email):
        pages = [
            person_client.get(path).content.decode()
            for path in ["/account/", "/account/email/", "/account/activity/"]
        ]
        return [
            re.sub(r"<time[^>]*>[^<]*</time>", "", normalise(page))
            .replace(email, "EMAIL")
            .replace(person.username, "HANDLE")
            for page in pages
        ]

    assert shown(fresh_client, fresh_user, "fresh@mail.test") == shown(client, owner, EMAIL)


def test_it_removes_the_recovery_email(owner, django_capture_on_commit_callbacks):
    client = signed_in_client(owner)
    add_recovery_email(client, EMAIL, django_capture_on_commit_callbacks)

    client.post("/account/email/", {"remove": "1"})

    owner.refresh_from_db()
    assert owner.recovery_email is None and owner.recovery_email_index is None
    assert events(Action.CONTACT_DETAILS_CHANGED)[-1].extra == {
        "field": "recovery_email",
        "removed": True,
    }


def test_it_limits_how_often_a_person_can_send_confirmation_links(
    owner, django_capture_on_commit_callbacks, mailoutbox
):
    client = signed_in_client(owner)

    statuses = [
        add_recovery_email(
            client, f"me{n}@mail.test", django_capture_on_commit_callbacks
        ).status_code
        for n in range(6)
    ]

    assert statuses == [302] * 5 + [429]
    assert len(mailoutbox) == 5
