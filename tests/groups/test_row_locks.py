"""Services lock the rows they change without blocking the audit log.

Every audit event is written under one PostgreSQL advisory lock held until commit (the
hash chain needs one writer at a time). A transaction that has written an event and then
commits a row pointing at a person (a new membership: its foreign keys are checked at
commit with a key-share lock on the user row) must not meet a service that holds that
user row locked while it waits for the audit lock. Taking a place once locked the
membership *together with its group and user rows* (plain FOR UPDATE through
select_related): the two waited for each other and PostgreSQL aborted one (first seen in
`make bench`, adding one person to many groups at once). Services now lock only their own
row, FOR NO KEY UPDATE. This test builds that interleaving with two real transactions.
"""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from audit.events import Action
from audit.models import Event
from groups import services
from groups.models import Membership, Status
from tests.groups.conftest import make_group, make_person


def blocked_backends() -> int:
    """How many other connections to this database are waiting for a lock right now."""
    with connection.cursor() as cursor:
        # Activity is snapshotted once per transaction; the caller is inside one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.django_db(transaction=True)
def test_taking_a_place_does_not_deadlock_with_an_audit_writer_about_the_same_person(admin):
    group = make_group(admin)
    other_group = make_group(admin, "Morning Grief Circle")
    newcomer = make_person("quiet-heron")
    membership = services.membership_create(group=group, user=newcomer, actor=admin, reason="test")
    holding_audit_lock = threading.Event()
    outcome = {}

    def audit_writer():
        # An admin gives the newcomer a place in a second group: the event is written
        # (audit lock held), the newcomer's own transaction queues behind it, and only
        # then does this one commit, checking its foreign key to the newcomer's row.
        try:
            with transaction.atomic():
                services.membership_create(
                    group=other_group, user=newcomer, actor=admin, reason="test"
                )
                holding_audit_lock.set()
                outcome["queued"] = wait_until(lambda: blocked_backends() >= 1)
            outcome["writer"] = "committed"
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            outcome["writer"] = repr(error)
        finally:
            connections.close_all()  # this thread's connection

    def newcomer_takes_place():
        try:
            holding_audit_lock.wait(10)
            services.membership_take_place(
                actor=membership.user,
                group=membership.group,
                pseudonym="Heron",
                typed_name="Heron",
                guidelines_acknowledged=True,
            )
            outcome["newcomer"] = "committed"
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            outcome["newcomer"] = repr(error)
        finally:
            connections.close_all()  # this thread's connection

    threads = [threading.Thread(target=audit_writer), threading.Thread(target=newcomer_takes_place)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert outcome == {"queued": True, "writer": "committed", "newcomer": "committed"}
    membership.refresh_from_db()
    assert (membership.pseudonym, membership.status) == ("Heron", Status.ACTIVE)
    signed = Event.objects.filter(action=Action.AGREEMENT_SIGNED, subject=newcomer)
    assert signed.count() == 1
    assert Membership.objects.filter(user=newcomer).count() == 2
