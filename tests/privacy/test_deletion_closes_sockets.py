"""Deleting an account closes every socket the person has open, once the deletion commits."""

import pytest
from django.urls import reverse

from audit.events import Action
from audit.models import Event
from tests.accounts.test_account_socket import (
    PASSWORD,
    Socket,
    _close_worker_connections,  # noqa: F401  (autouse: frees the test database)
    client_with_cookie,
    cookie_of,
    make_person,
    run,
    signed_in_client,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def delete_account_from(cookie) -> int:
    client = client_with_cookie(cookie)
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    response = client.post(reverse("account_delete"), {"confirm": "delete my account"})
    return response.status_code


async def test_deleting_the_account_closes_the_sockets_of_every_session():
    member = await run(make_person, "quiet-otter", password=PASSWORD)
    here = await run(lambda: cookie_of(signed_in_client(member)))
    elsewhere = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(here) as this_tab, Socket(elsewhere) as other_device:
        assert this_tab.connected and other_device.connected
        assert await run(delete_account_from, here) == 200
        await this_tab.expect_signed_out()
        await other_device.expect_signed_out()

    deleted = await run(lambda: list(Event.objects.filter(action=Action.ACCOUNT_DELETED)))
    assert [(e.actor_id, e.subject_id) for e in deleted] == [(member.pk, member.pk)]
    async with Socket(elsewhere) as socket:
        assert socket.connected is False


async def test_a_refused_deletion_leaves_the_sockets_open():
    member = await run(make_person, "quiet-otter", password=PASSWORD)
    cookie = await run(lambda: cookie_of(signed_in_client(member)))

    async with Socket(cookie) as socket:
        assert socket.connected is True
        # Not re-authenticated: the page asks for the password first and deletes nothing.
        response = await run(
            lambda: client_with_cookie(cookie).post(
                reverse("account_delete"), {"confirm": "delete my account"}
            )
        )
        assert response.status_code == 302
        await socket.expect_still_open()
