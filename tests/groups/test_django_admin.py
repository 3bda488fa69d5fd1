"""The Django admin writes through the services and never pairs an account with a
pseudonym outside the one audited page (issue 18, findings 1 and 2).

- Setting a password there is audited and ends the person's sessions and sockets, like a
  password reset; an account made there is audited.
- The membership list refuses a filter by account (?user=<id>), the account list a filter
  by membership (?memberships=<id>), and the account delete page (which lists someone's
  memberships by pseudonym) is gone: the Membership page, recorded for the member to see,
  is the only place that shows both.
"""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import authenticate

from accounts.models import Session, User
from audit.events import Action
from supportgroups.realtime import user_group_name
from tests.groups.conftest import (
    PASSWORD,
    events,
    give_place,
    html,
    make_group,
    make_person,
    sign_in,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-2"


@pytest.fixture
def group(superuser):
    return make_group(superuser)


@pytest.fixture
def member(group):
    person = make_person("member-one")
    give_place(group, person, "Quiet Fox")
    return person


# --- passwords and accounts made in the admin -------------------------------------------------


def test_an_admin_setting_a_password_is_audited_and_ends_the_persons_sessions_and_sockets(
    superuser, member, django_capture_on_commit_callbacks
):
    sign_in(member)
    assert Session.objects.filter(user=member).count() == 1
    admin_client = sign_in_verified(superuser)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group_name(member.pk), channel)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/accounts/user/{member.pk}/password/",
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
        )

    assert response.status_code == 302
    assert authenticate(username="member-one", password=NEW_PASSWORD) is not None
    assert not Session.objects.filter(user=member).exists()
    event = async_to_sync(layer.receive)(channel)
    assert event == {"type": "account.closed", "reason": "password_changed", "sessions": None}
    [changed] = events(Action.ACCOUNT_CHANGED_BY_ADMIN)
    assert (changed.actor_id, changed.subject_id) == (superuser.pk, member.pk)
    assert changed.extra == {"fields": ["password"], "password_sign_in": True}
    assert changed.ip
    # The admin's own session is untouched.
    assert admin_client.get("/admin/").status_code == 200


def test_an_admin_setting_their_own_password_keeps_the_session_they_use(superuser):
    admin_client = sign_in_verified(superuser)

    response = admin_client.post(
        f"/admin/accounts/user/{superuser.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302
    assert admin_client.get("/admin/").status_code == 200
    assert len(events(Action.ACCOUNT_CHANGED_BY_ADMIN)) == 1


def test_a_mistyped_admin_password_changes_nothing(superuser, member):
    admin_client = sign_in_verified(superuser)

    response = admin_client.post(
        f"/admin/accounts/user/{member.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": "something else", "usable_password": "true"},
    )

    assert response.status_code == 200  # the form again, saying why
    assert authenticate(username="member-one", password=PASSWORD) is not None
    assert not events(Action.ACCOUNT_CHANGED_BY_ADMIN)


def test_an_account_made_in_the_admin_is_audited(superuser):
    admin_client = sign_in_verified(superuser)

    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "username": "made-by-admin",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "usable_password": "true",
        },
    )

    assert response.status_code == 302
    made = User.objects.get(username="made-by-admin")
    [created] = events(Action.ACCOUNT_CREATED, subject_id=made.pk)
    assert created.actor_id == superuser.pk
    assert created.extra == {"by_admin": True}


# --- no account beside a pseudonym outside the audited page ---------------------------------


def test_the_membership_list_refuses_a_filter_by_account(superuser, member, group):
    admin_client = sign_in_verified(superuser)

    for query in (f"user={member.pk}", f"user__id__exact={member.pk}", "user__username=member-one"):
        response = admin_client.get(f"/admin/groups/membership/?{query}")
        assert response.status_code == 400, query
        assert "Quiet Fox" not in html(response)
    # The filters it offers still work.
    response = admin_client.get(f"/admin/groups/membership/?group__id__exact={group.pk}")
    assert response.status_code == 200
    assert "Quiet Fox" in html(response)
    assert not events(Action.MEMBERSHIP_IDENTITY_VIEWED)


def test_the_account_list_refuses_a_filter_by_membership(superuser, member):
    membership = member.memberships.get()
    admin_client = sign_in_verified(superuser)

    for query in (f"memberships={membership.pk}", "memberships__pseudonym=Quiet Fox"):
        response = admin_client.get(f"/admin/accounts/user/?{query}")
        assert response.status_code == 400, query
        assert "member-one" not in html(response)
    assert admin_client.get("/admin/accounts/user/?is_staff__exact=0").status_code == 200


def test_the_account_delete_page_that_listed_pseudonyms_is_gone(superuser, member):
    admin_client = sign_in_verified(superuser)

    response = admin_client.get(f"/admin/accounts/user/{member.pk}/delete/")

    assert response.status_code == 403
    assert "Quiet Fox" not in html(response)
    assert User.objects.filter(pk=member.pk).exists()


def test_an_admin_setting_a_password_while_the_hasher_is_stalled_gets_a_calm_503(
    superuser, member, settings
):
    import contextlib
    import os
    import signal

    import supportgroups.settings as project_settings
    from accounts.hashers import argon2_worker

    admin_client = sign_in_verified(superuser)
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    settings.PASSWORD_HASH_TIMEOUT_SECONDS = 0.5
    before = User.objects.get(pk=member.pk).password
    stalled = argon2_worker().pid
    os.kill(stalled, signal.SIGSTOP)
    try:
        response = admin_client.post(
            f"/admin/accounts/user/{member.pk}/password/",
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
        )
    finally:
        with contextlib.suppress(ProcessLookupError):  # replaced, as it should be
            os.kill(stalled, signal.SIGCONT)

    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert "We&#x27;re very busy right now" in response.content.decode()
    assert User.objects.get(pk=member.pk).password == before
