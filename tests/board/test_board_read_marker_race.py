"""A read marker is never left behind by a place that ended while it was written.

The database rule of board/migrations/0003 deletes a place's read markers when its status
ends. A marker written by a transaction that checked the place just before a leave
committed would outlive it, so thread_mark_read locks the place's row while it writes
and reads its status again after the leave. Built with two real transactions."""

import threading

import pytest
from django.db import connections, transaction

from board import services
from board.models import Thread, ThreadRead
from groups import services as group_services
from tests.groups.test_row_locks import blocked_backends, wait_until


@pytest.mark.django_db(transaction=True)
def test_a_leave_committing_while_a_marker_is_written_leaves_no_marker(scene):
    thread = services.thread_start(
        actor=scene.birch.user, group=scene.group, title="A title", body="Some words."
    )
    leave_written = threading.Event()
    outcome = {}

    def leaver():
        # Ash leaves: the status changes (the rule deletes Ash's markers: none yet), and
        # the transaction stays open until the reader has written or is waiting.
        try:
            with transaction.atomic():
                group_services.membership_leave(actor=scene.ash.user, group=scene.group)
                leave_written.set()
                outcome["reader_waited"] = wait_until(
                    lambda: "reader" in outcome or blocked_backends() >= 1
                )
            outcome["leaver"] = "committed"
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            outcome["leaver"] = repr(error)
        finally:
            connections.close_all()

    def reader():
        try:
            leave_written.wait(10)
            services.thread_mark_read(
                actor=scene.ash.user, thread=Thread.objects.get(pk=thread.pk), up_to=1
            )
            outcome["reader"] = "done"
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            outcome["reader"] = repr(error)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=leaver), threading.Thread(target=reader)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)

    assert outcome == {"reader_waited": True, "leaver": "committed", "reader": "done"}
    assert not ThreadRead.objects.filter(membership=scene.ash).exists()
