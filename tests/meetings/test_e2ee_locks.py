"""Row locks of the E2EE services: two devices sharing their keys with each other at the same
moment (every device does this when people join) must not deadlock. Each share locks its
sender's device row, and storing a share checks the recipient's row (a foreign key: KEY
SHARE); a full FOR UPDATE lock on the sender would make those two wait for each other."""

import threading

import pytest
from django.db import connection, transaction

from meetings import services
from meetings.e2ee import ShareIn
from tests.meetings.e2ee_members import e2ee_world
from tests.meetings.test_e2ee_devices import registered
from tests.sockets import cookie_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_share_to_a_device_that_is_sharing_itself_does_not_wait_for_it():
    world = e2ee_world()
    river_client, river_device = registered(world, world.river)
    fern_client, fern_device = registered(world, world.fern)
    holding, release, failures = threading.Event(), threading.Event(), []

    def fern_shares_slowly():
        # Fern's share is under way: it holds the lock keys_share takes on her device.
        try:
            with transaction.atomic():
                services._sending_device(world.fern, cookie_of(fern_client), lock=True)
                holding.set()
                release.wait(10)
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)
        finally:
            connection.close()

    fern = threading.Thread(target=fern_shares_slowly)
    fern.start()
    try:
        assert holding.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        try:
            # River shares with Fern meanwhile: it must not wait for Fern's transaction.
            stored = services.keys_share(
                meeting_id=world.meeting.pk,
                membership_id=world.river.pk,
                session_key=cookie_of(river_client),
                epoch=1,
                shares=[
                    ShareIn(fern_device.pk, 0, bytes(60)),
                    ShareIn(river_device.pk, 0, bytes(60)),
                ],
            )
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")
        assert stored == 2
    finally:
        release.set()
        fern.join(10)
    assert failures == []
