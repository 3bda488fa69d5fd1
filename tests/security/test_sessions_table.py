"""Issue 18, points 9 and 10: nothing of the request (IP, User-Agent, cookies, body) and no
live reset token sits in the sessions table, read as someone with the database would."""

import re

import pytest
from django.conf import settings

from accounts.models import TOTPDevice, User
from tests.accounts.conftest import (
    FIREFOX,
    PASSWORD,
    decoded_sessions,
    log_in,
    new_client,
    reauthenticate,
)
from tests.database import dump_every_table

pytestmark = pytest.mark.django_db

CLIENT_IP = "198.51.100.23"


def sessions_as_an_attacker_reads_them() -> str:
    return dump_every_table() + "\n" + decoded_sessions()


def assert_nothing_of_the_request_in(text, client, *body_values):
    assert CLIENT_IP not in text
    assert FIREFOX not in text and "Gecko/20100101" not in text
    assert "account_reauthentication_state" not in text
    assert "HTTP_COOKIE" not in text and "csrftoken" not in text
    # (The session's own key is the table's key; the CSRF cookie must not be there.)
    csrf = client.cookies.get(settings.CSRF_COOKIE_NAME)
    assert csrf is None or csrf.value not in text
    for value in body_values:
        assert value not in text


@pytest.mark.parametrize(
    ("path", "body", "form_page"),
    [
        ("/account/export/", {}, "/account/export/"),
        ("/account/delete/", {"confirm": "delete my account"}, "/account/delete/"),
        ("/account/two-factor/turn-off/", {}, "/account/two-factor/"),
        ("/account/two-factor/backup-codes/", {}, "/account/two-factor/"),
    ],
)
def test_a_post_waiting_for_the_password_keeps_nothing_of_the_request(
    owner_with_2fa, path, body, form_page
):
    client = owner_with_2fa.client
    body = {**body, "marker": "a-body-value-that-must-not-be-kept"}

    response = client.post(path, body, REMOTE_ADDR=CLIENT_IP)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/?next=")
    assert_nothing_of_the_request_in(
        sessions_as_an_attacker_reads_them(), client, "a-body-value-that-must-not-be-kept"
    )
    # Nothing was done; the password leads back to the page of the form.
    assert User.objects.filter(pk=owner_with_2fa.user.pk).exists()
    assert TOTPDevice.objects.filter(user=owner_with_2fa.user).exists()
    confirmed = client.post(response["Location"], {"password": PASSWORD})
    assert confirmed["Location"] == form_page
    assert_nothing_of_the_request_in(sessions_as_an_attacker_reads_them(), client)


def test_the_action_works_after_confirming_the_password(owner_with_2fa):
    client = owner_with_2fa.client
    reauthenticate(client)

    response = client.post("/account/export/", REMOTE_ADDR=CLIENT_IP)

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="my-data.json"'
    assert_nothing_of_the_request_in(sessions_as_an_attacker_reads_them(), client)


def test_a_reset_link_opened_leaves_no_token_in_the_sessions_table(
    owner, mailoutbox, django_capture_on_commit_callbacks
):
    owner.set_recovery_email("robin@mail.test")
    owner.recovery_email_verified = True
    owner.save()
    client = new_client()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/password/reset/", {"email": "robin@mail.test"})
    link = re.search(re.escape(settings.SITE_URL) + r"(/\S+)", mailoutbox[0].body).group(1)
    token = link.rstrip("/").rsplit("/", 1)[1].split("-", 1)[1]

    form_page = client.get(link)

    assert form_page.status_code == 200
    assert 'name="new_password1"' in form_page.content.decode()
    text = sessions_as_an_attacker_reads_them()
    assert token not in text and "_password_reset_token" not in text
    # A wrong password pair re-shows the form, still without keeping the token.
    client.post(link, {"new_password1": "short", "new_password2": "short"})
    assert token not in sessions_as_an_attacker_reads_them()
    done = client.post(
        link,
        {
            "new_password1": "a brand new long passphrase",
            "new_password2": "a brand new long passphrase",
        },
    )
    assert done["Location"] == "/accounts/login/"
    assert log_in(new_client(), owner.username, "a brand new long passphrase").status_code == 302


def test_guessing_reset_links_is_limited_per_client(owner):
    client = new_client()
    statuses = [
        client.post(
            f"/accounts/password/reset/key/{owner.pk}-c2b9qn-{n:032x}/",
            {"new_password1": "a brand new long passphrase", "new_password2": "x"},
        ).status_code
        for n in range(21)
    ]

    assert statuses == [200] * 20 + [429]
