"""Retention of the log: ``manage.py prune_audit_log`` deletes the old head of the chain,
records the pruning as an event, and leaves a chain that ``verify_audit_log`` still
verifies from its new start, and in which tampering is still caught.

How old events are made: the log is append-only (PostgreSQL refuses UPDATE, and DELETE
unless the pruning service says it is pruning), so events cannot be aged after the fact,
and re-writing rows as the superuser and re-hashing them would test our own forgery
rather than the app. Instead the events are written by the real ``record_event`` while
Django's clock is set back (``clock_shifted``, see conftest): each row gets an old
``created_at`` and a hash over it, exactly as if it had been written then. Retention is
set per test with the ``retention`` fixture where a short period reads better than the
6-year default: in the settings and, as ``migrate`` does, in the database, which enforces
its own copy (see test_chain_ends).
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import Error as DatabaseError
from django.db import transaction
from django.utils import timezone

from audit.database import set_database_retention
from audit.events import Action
from audit.models import Event
from tests.audit.conftest import (
    build_world,
    clock_shifted,
    events,
    sign_in_through_pages,
    text_of,
)
from tests.audit.test_audit_log import as_superuser, run_manage
from tests.factories import make_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def retention(settings):
    """Set the retention in days, in the settings and in the database (as migrate does,
    as the tables' owner; the test connection is that owner)."""

    def set_days(days: int) -> None:
        settings.AUDIT_RETENTION_DAYS = days
        set_database_retention(days=days)

    return set_days


def prune(*args) -> str:
    out = StringIO()
    call_command("prune_audit_log", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def verify() -> str:
    out = StringIO()
    call_command("verify_audit_log", stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()[0]  # the second line is the head (test_chain_ends)


def seqs() -> list[int]:
    return list(Event.objects.order_by("seq").values_list("seq", flat=True))


def history(*, old: int, new: int, age: timedelta):
    """``old`` events written ``age`` ago, then ``new`` events now."""
    with clock_shifted(-age):
        old_events = make_events(old, ip="192.0.2.1")
    return old_events, make_events(new, ip="192.0.2.2", action=Action.LOGIN_FAILED)


# --- refusing, and nothing to do --------------------------------------------------------------


def test_it_does_nothing_when_nothing_is_older_than_the_retention(retention):
    retention(30)
    with clock_shifted(timedelta(days=-29)):
        make_events(3)
    make_events(2)
    before = seqs()
    cutoff = (timezone.now() - timedelta(days=30)).date()

    assert prune() == f"Pruned 0 audit event(s) from before {cutoff:%Y-%m-%d}."

    assert seqs() == before
    assert events(Action.AUDIT_LOG_PRUNED) == []
    assert verify() == "Audit log intact: 5 rows verified."


def test_it_never_prunes_the_whole_log(retention):
    # The newest row anchors everything written after it.
    retention(30)
    with clock_shifted(timedelta(days=-40)):
        make_events(4)
    assert prune().startswith("Pruned 0 audit event(s)")
    assert seqs() == [1, 2, 3, 4]
    assert events(Action.AUDIT_LOG_PRUNED) == []


@pytest.mark.parametrize(
    ("before", "message"),
    [
        ("yesterday", "--before must be a date like 2020-01-31, not 'yesterday'."),
        ("31/01/2020", "--before must be a date like 2020-01-31, not '31/01/2020'."),
        ("2020-02-30", "--before must be a date like 2020-01-31, not '2020-02-30'."),
    ],
)
def test_it_refuses_a_malformed_date(before, message):
    make_events(2)
    with pytest.raises(CommandError) as refused:
        prune("--before", before)
    assert str(refused.value) == message
    assert seqs() == [1, 2]


def test_it_refuses_to_prune_inside_the_retention_period(retention):
    retention(30)
    with clock_shifted(timedelta(days=-40)):
        make_events(3)
    make_events(2)
    recent = (timezone.now() - timedelta(days=10)).date().isoformat()

    with pytest.raises(CommandError) as refused:
        prune("--before", recent)

    assert str(refused.value) == (
        "Refusing to prune events younger than AUDIT_RETENTION_DAYS (30 days)."
    )
    assert seqs() == [1, 2, 3, 4, 5]
    assert events(Action.AUDIT_LOG_PRUNED) == []


def test_the_database_still_refuses_deletes_outside_a_pruning():
    make_events(3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Event.objects.filter(seq=1).delete()
    assert seqs() == [1, 2, 3]


# --- pruning ---------------------------------------------------------------------------------


def test_pruning_records_itself_and_the_chain_still_verifies(retention):
    retention(30)
    old, new = history(old=6, new=4, age=timedelta(days=45))
    assert verify() == "Audit log intact: 10 rows verified."
    cutoff = (timezone.now() - timedelta(days=30)).date()

    assert prune() == f"Pruned 6 audit event(s) from before {cutoff:%Y-%m-%d}."

    (pruned,) = events(Action.AUDIT_LOG_PRUNED)
    assert pruned.actor_id is None
    assert pruned.extra["rows"] == 6
    assert pruned.extra["first_seq"] == new[0].seq == 7
    assert pruned.extra["anchor_hash"] == new[0].prev_hash == old[-1].hash
    assert pruned.extra["before"].startswith(cutoff.isoformat())
    assert seqs() == [7, 8, 9, 10, pruned.seq]
    assert pruned.seq == 11  # chained onto the end, not into the gap
    assert verify() == "Audit log intact: 5 rows verified."


def test_it_prunes_by_the_six_year_default():
    old, new = history(old=3, new=2, age=timedelta(days=6 * 365 + 2))
    with clock_shifted(timedelta(days=-(6 * 365 - 30))):
        younger = make_events(1)  # under six years: kept

    assert prune().startswith("Pruned 3 audit event(s)")
    assert seqs()[:3] == [new[0].seq, new[1].seq, younger[0].seq]
    assert verify() == "Audit log intact: 4 rows verified."


def test_it_prunes_up_to_a_given_date(retention):
    retention(30)
    with clock_shifted(timedelta(days=-100)):
        make_events(2)
    with clock_shifted(timedelta(days=-60)):
        make_events(3)
    make_events(1)
    before = (timezone.now() - timedelta(days=80)).date().isoformat()

    assert prune("--before", before) == f"Pruned 2 audit event(s) from before {before}."
    assert seqs() == [3, 4, 5, 6, 7]
    assert verify() == "Audit log intact: 5 rows verified."


def test_pruning_twice_keeps_the_chain_verifiable_from_the_newest_start(retention):
    retention(30)
    with clock_shifted(timedelta(days=-300)):
        make_events(3)
    with clock_shifted(timedelta(days=-200)):
        make_events(2)
    # A year ago (well, 250 days), someone pruned with a 30-day retention...
    with clock_shifted(timedelta(days=-250)):
        assert prune().startswith("Pruned 3 audit event(s)")
    first_pruning = events(Action.AUDIT_LOG_PRUNED)[0]
    make_events(2)
    assert verify() == "Audit log intact: 5 rows verified."

    # ...and today's pruning removes what is left of that time, that pruning event too.
    assert prune().startswith("Pruned 3 audit event(s)")

    assert not Event.objects.filter(pk=first_pruning.pk).exists()
    (second_pruning,) = events(Action.AUDIT_LOG_PRUNED)
    assert seqs() == [7, 8, second_pruning.seq]
    assert verify() == "Audit log intact: 3 rows verified."


def test_the_console_shows_the_chain_verified_from_its_new_start(db, retention):
    retention(30)
    with clock_shifted(timedelta(days=-45)):
        make_events(5)
    world = build_world()  # written now, after the old events
    # Through the pages: signing in writes the recent events the old ones are pruned behind.
    admin_client = sign_in_through_pages(world.admin)
    prune()
    verify()
    remaining = Event.objects.count()
    last = Event.objects.order_by("-seq").first()

    page = text_of(admin_client.get("/audit/"))

    assert f"Chain verified: {remaining} rows, up to row {last.seq}, at " in page
    assert "Audit events before the retention limit were pruned" in page


# --- tampering after pruning is still caught --------------------------------------------------


@pytest.fixture
def pruned_log(retention):
    """10 events, the first 6 old and pruned; committed, so the superuser can tamper."""
    retention(30)
    history(old=6, new=4, age=timedelta(days=45))
    prune()
    assert seqs() == [7, 8, 9, 10, 11]
    assert verify() == "Audit log intact: 5 rows verified."


@pytest.mark.django_db(transaction=True)
def test_an_altered_row_after_pruning_is_named(pruned_log):
    as_superuser("UPDATE audit_event SET extra = '{\"n\": 42}' WHERE seq = 9")
    with pytest.raises(CommandError, match=r"broken at row 9 .*altered.* 2 rows before it"):
        verify()


@pytest.mark.django_db(transaction=True)
def test_a_row_removed_from_the_new_start_is_caught(pruned_log):
    # Deleting the first kept row looks like a second pruning, but none was recorded.
    as_superuser("DELETE FROM audit_event WHERE seq = 7")
    with pytest.raises(CommandError, match=r"broken at row 8 .*rows 1 to 7 are missing"):
        verify()


@pytest.mark.django_db(transaction=True)
def test_a_forged_pruning_record_is_caught(pruned_log):
    # Moving the recorded start on, to hide a removed row, alters the pruning event.
    pruned_hash = Event.objects.get(seq=7).hash
    as_superuser(
        "DELETE FROM audit_event WHERE seq = 7",
        (
            "UPDATE audit_event SET extra = extra || jsonb_build_object("
            "'first_seq', 8, 'anchor_hash', %s::text) WHERE seq = 11",
            [pruned_hash],
        ),
    )
    with pytest.raises(CommandError, match=r"broken at row 11 .*altered.* 3 rows before it"):
        verify()


# --- the real command line --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_commands_prune_and_verify_from_the_command_line():
    # The subprocess reads the real settings: the default retention of six years.
    history(old=3, new=2, age=timedelta(days=6 * 365 + 10))

    pruned = run_manage("prune_audit_log")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("Pruned 3 audit event(s) from before ")
    assert seqs() == [4, 5, 6]

    verified = run_manage("verify_audit_log")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.splitlines()[0] == "Audit log intact: 3 rows verified."


def test_the_command_line_refuses_an_impossible_date_in_one_line():
    # Nothing needs committing: the command refuses before it reads the log.
    result = run_manage("prune_audit_log", "--before", "2020-02-30")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["CommandError: --before must be a date like 2020-01-31, not '2020-02-30'."]


def test_the_command_line_refuses_a_recent_date():
    result = run_manage(
        "prune_audit_log", "--before", (timezone.now() - timedelta(days=1)).date().isoformat()
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "CommandError: Refusing to prune events younger than AUDIT_RETENTION_DAYS (2190 days)."
    ]
    assert "Traceback" not in result.stderr
