"""Both ends of the audit chain (issue 18, point 3).

The tail: rows cut off the end leave a chain that still links up, so ``verify_audit_log``
compares the head with the furthest row an earlier verification saw (its stored
checkpoint) and with a head the operator kept outside the database (``--expect-head``).

The database: the app serves as a role that does not own its tables (the harness makes
``supportgroups_app`` beside the owner that migrates, as in production), so it cannot
TRUNCATE the log, switch off or replace its triggers, alter the table, or change the
retention; and the pruning flag lets it remove only old rows from the head, recorded.
These tests connect as that role, in a connection of their own, so their data must be
committed (transaction=True).
"""

import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import Error as DatabaseError
from django.db import connection, transaction
from django.utils import timezone

from audit.database import database_retention_days, set_database_retention
from audit.events import Action
from audit.models import ChainCheckpoint, Event
from audit.services import audit_log_prune
from tests.audit.conftest import clock_shifted, events, text_of
from tests.audit.test_audit_log import REPO_ROOT, as_superuser, run_manage
from tests.factories import make_events

committed = pytest.mark.django_db(transaction=True)
LONG_AGO = timedelta(days=7 * 365)  # past the six-year default retention


def verify(*args) -> list[str]:
    out = StringIO()
    call_command("verify_audit_log", *args, stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()


def head() -> str:
    last = Event.objects.order_by("-seq").first()
    return f"{last.seq}:{last.hash}"


def seqs() -> list[int]:
    return list(Event.objects.order_by("seq").values_list("seq", flat=True))


@contextmanager
def app_role():
    """A connection to the test database as the role the app serves as."""
    url = os.environ.get("TEST_PG_APP_URL")
    if not url:
        pytest.fail("TEST_PG_APP_URL is unset: run the suite through tests/harness.py")
    with psycopg.connect(url, dbname=connection.settings_dict["NAME"]) as conn:
        yield conn


def as_app_role(*statements, pruning: bool = False) -> None:
    """Run SQL as the app role in one transaction, optionally claiming to be a pruning."""
    with app_role() as conn, conn.transaction():
        if pruning:
            conn.execute("SET LOCAL supportgroups.pruning = 'on'")
        for statement in statements:
            conn.execute(statement)


# --- the tail: verification against the checkpoint and an outside anchor ---------------------


@committed
def test_it_prints_the_head_to_keep_outside_the_database():
    make_events(3)
    assert verify() == ["Audit log intact: 3 rows verified.", f"Head: {head()}"]
    checkpoint = ChainCheckpoint.objects.get()
    assert (checkpoint.last_seq, checkpoint.last_hash) == (3, Event.objects.get(seq=3).hash)


@pytest.mark.django_db
def test_it_says_an_empty_log_has_no_head():
    assert verify() == ["Audit log intact: 0 rows verified.", "Head: none (the log is empty)"]


@committed
def test_rows_cut_off_the_end_are_named_against_the_last_verification():
    make_events(6)
    verify()
    make_events(2)  # written after that verification: not covered by its checkpoint
    as_superuser("DELETE FROM audit_event WHERE seq >= 5")

    with pytest.raises(CommandError) as broken:
        verify()

    assert str(broken.value).startswith(
        "Audit log broken at row 5: rows 5 to 6 are missing (removed from the end): "
        "the log ends at row 4, but the verification of "
    )
    assert str(broken.value).endswith(" UTC saw row 6. 4 rows before it verified.")


@committed
def test_a_whole_log_deleted_is_named():
    make_events(3)
    verify()
    as_superuser("DELETE FROM audit_event")
    with pytest.raises(CommandError, match=r"broken at row 1: rows 1 to 3 are missing .*empty"):
        verify()


@committed
def test_a_cut_tail_is_audited_and_not_taken_as_an_anchor():
    make_events(4)
    verify()
    as_superuser("DELETE FROM audit_event WHERE seq = 4")

    with pytest.raises(CommandError):
        verify()

    checkpoint = ChainCheckpoint.objects.order_by("-checked_at").first()
    assert (checkpoint.ok, checkpoint.broken_seq) == (False, 4)
    assert "removed from the end" in checkpoint.problem
    (recorded,) = events(Action.AUDIT_CHAIN_BROKEN)
    assert recorded.extra == {"broken_seq": 4, "verified": 3}
    # That event took row 4's place; the next run, anchored on the last good
    # verification, still sees that row 4 is not the row it was.
    with pytest.raises(CommandError, match=r"broken at row 4: it is not the row the verif"):
        verify()


@committed
def test_the_furthest_checkpoint_counts_so_deleting_the_newest_one_does_not_help():
    make_events(3)
    verify()
    make_events(2)
    verify()
    make_events(1)
    verify()  # the newest checkpoint, at row 6
    as_superuser(
        "DELETE FROM audit_event WHERE seq >= 5",
        "DELETE FROM audit_chaincheckpoint WHERE last_seq = 6",
    )
    with pytest.raises(CommandError, match=r"broken at row 5: row 5 is missing .* saw row 5"):
        verify()


@committed
def test_an_outside_anchor_catches_a_tail_cut_with_every_checkpoint_deleted():
    # A superuser who also deletes the checkpoints leaves nothing in the database to
    # compare with: the head printed earlier, kept elsewhere, is what catches it.
    make_events(5)
    printed = verify()[1].removeprefix("Head: ")
    as_superuser("DELETE FROM audit_event WHERE seq = 5", "DELETE FROM audit_chaincheckpoint")
    assert verify()[0] == "Audit log intact: 4 rows verified."

    with pytest.raises(CommandError) as broken:
        verify("--expect-head", printed)

    assert str(broken.value) == (
        "Audit log broken at row 5: row 5 is missing (removed from the end): the log ends "
        "at row 4, but --expect-head saw row 5. 4 rows before it verified."
    )


@committed
def test_an_outside_anchor_passes_while_the_log_grows_and_after_pruning():
    with clock_shifted(-LONG_AGO):
        make_events(3)
        printed = verify()[1].removeprefix("Head: ")
    make_events(2)
    assert verify("--expect-head", printed)[0] == "Audit log intact: 5 rows verified."

    call_command("prune_audit_log", stdout=StringIO())  # removes rows 1-3, the anchor too

    assert seqs()[0] == 4
    assert verify("--expect-head", printed)[0] == "Audit log intact: 3 rows verified."


@committed
def test_an_outside_anchor_with_another_hash_is_named():
    make_events(3)
    wrong = "3:" + "ab" * 32
    with pytest.raises(CommandError) as broken:
        verify("--expect-head", wrong)
    assert str(broken.value) == (
        "Audit log broken at row 3: it is not the row --expect-head saw there (another "
        "hash): the log was cut back and written on, or rewritten, or the anchor is wrong. "
        "3 rows before it verified."
    )


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["3", "3:abc", "0:" + "a" * 64, "x:" + "a" * 64, "3;" + "a" * 64])
def test_it_refuses_a_malformed_anchor(value):
    make_events(3)
    with pytest.raises(CommandError) as refused:
        verify("--expect-head", value)
    assert str(refused.value).startswith("--expect-head must be a head as this command prints")
    assert not ChainCheckpoint.objects.exists()


# --- the app role cannot touch the log's ends ------------------------------------------------


@committed
def test_the_app_role_cannot_truncate_the_log():
    make_events(3)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        as_app_role("TRUNCATE audit_event")
    assert seqs() == [1, 2, 3]


@committed
def test_the_trigger_refuses_truncate_even_where_the_role_was_granted_it():
    # e.g. a deployment whose app role was once given ALL on the tables.
    make_events(3)
    as_superuser("GRANT TRUNCATE ON audit_event TO supportgroups_app")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="TRUNCATE refused"):
        as_app_role("TRUNCATE audit_event")
    assert seqs() == [1, 2, 3]


@committed
@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only",
        "ALTER TABLE audit_event DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_event_append_only ON audit_event",
        "ALTER TABLE audit_event ALTER COLUMN hash DROP NOT NULL",
        "ALTER TABLE audit_event RENAME TO audit_event_old",
        "DROP TABLE audit_event",
        "CREATE TRIGGER sneak BEFORE DELETE ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        "CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
        "CREATE OR REPLACE FUNCTION audit_retention() RETURNS interval "
        "LANGUAGE sql AS $$ SELECT interval '0 days' $$",
    ],
)
def test_the_app_role_cannot_change_the_table_its_triggers_or_the_retention(statement):
    make_events(2)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_app_role(statement)
    assert database_retention_days() == 6 * 365


@committed
def test_the_app_role_cannot_switch_triggers_off_for_its_session():
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_app_role("SET session_replication_role = replica")


@committed
def test_the_app_role_has_data_privileges_only():
    with app_role() as conn:
        rows = conn.execute(
            "SELECT c.relname, p.privilege FROM pg_class c "
            "CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', "
            "'REFERENCES', 'TRIGGER']) AS p(privilege) "
            "WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace "
            "AND has_table_privilege(c.oid, p.privilege)"
        ).fetchall()
    granted: dict[str, set[str]] = {}
    for table, privilege in rows:
        granted.setdefault(table, set()).add(privilege)
    data = {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert granted.pop("django_migrations") == {"SELECT"}
    assert granted["audit_event"] == data
    assert all(privileges == data for privileges in granted.values()), granted
    assert len(granted) > 30  # every app's tables, not just a few


# --- the pruning flag no longer opens the log ------------------------------------------------


@committed
def test_the_pruning_flag_cannot_cut_the_newest_rows():
    make_events(5)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="younger than the retention"):
        as_app_role("DELETE FROM audit_event WHERE seq = 5", pruning=True)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="younger than the retention"):
        as_app_role("DELETE FROM audit_event", pruning=True)
    assert seqs() == [1, 2, 3, 4, 5]


@committed
def test_the_pruning_flag_removes_old_rows_only_from_the_head_and_only_recorded():
    with clock_shifted(-LONG_AGO):
        make_events(4)
    make_events(2)

    refusals = {
        "DELETE FROM audit_event WHERE seq = 3": "only the oldest rows, but rows before row 3",
        "DELETE FROM audit_event WHERE seq IN (1, 3)": "rows before row 3 remain",
        "DELETE FROM audit_event WHERE seq <= 2": "naming row 3 as the first row kept",
    }
    for statement, message in refusals.items():
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=message):
            as_app_role(statement, pruning=True)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only: DELETE"):
        as_app_role("DELETE FROM audit_event WHERE seq = 1")  # without the flag at all
    assert seqs() == [1, 2, 3, 4, 5, 6]


@committed
def test_a_temporary_table_cannot_stand_in_for_the_log_in_the_trigger():
    # The check "no older row remains" must read the real table, not a session's own.
    with clock_shifted(-LONG_AGO):
        make_events(4)
    make_events(1)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="rows before row 3"):
        as_app_role(
            "CREATE TEMP TABLE audit_event (LIKE public.audit_event)",
            "SET LOCAL search_path = pg_temp, public",
            "DELETE FROM public.audit_event WHERE seq = 3",
            pruning=True,
        )
    assert seqs() == [1, 2, 3, 4, 5]


@committed
def test_the_app_role_prunes_and_verifies_through_the_real_commands():
    with clock_shifted(-LONG_AGO):
        make_events(3)
    make_events(2)

    pruned = run_manage("prune_audit_log")  # as the app role (see run_manage)
    assert pruned.returncode == 0, pruned.stderr
    verified = run_manage("verify_audit_log")

    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.splitlines() == ["Audit log intact: 3 rows verified.", f"Head: {head()}"]
    assert verified.stderr == ""  # no warning: this role does not own the table
    assert seqs()[0] == 4


@committed
def test_verifying_as_the_owner_warns_that_the_app_must_not_run_as_it():
    make_events(1)
    result = run_manage("verify_audit_log", as_owner=True)
    assert result.returncode == 0, result.stderr
    assert "Warning: this role owns the audit table" in result.stderr


# --- retention, as the database holds it ------------------------------------------------------


@pytest.mark.django_db
def test_the_database_keeps_its_own_retention_set_by_migrate(settings):
    # migrate (post_migrate) copied the setting; the test connection is the owner.
    assert database_retention_days() == settings.AUDIT_RETENTION_DAYS == 6 * 365
    set_database_retention(days=30)
    assert database_retention_days() == 30
    with pytest.raises(ValueError, match="at least 1"):
        set_database_retention(days=0)


@pytest.mark.django_db
def test_a_shorter_retention_in_the_apps_settings_does_not_let_the_app_prune_more(settings):
    # Someone who controls the app's environment cannot shorten what the database keeps.
    settings.AUDIT_RETENTION_DAYS = 30
    with clock_shifted(timedelta(days=-45)):
        make_events(3)
    make_events(1)

    with pytest.raises(CommandError) as refused:
        call_command("prune_audit_log", stdout=StringIO())
    assert str(refused.value) == (
        "Refusing to prune events younger than the database's retention (2190 days). It is "
        "copied from AUDIT_RETENTION_DAYS when `migrate` runs as the tables' owner."
    )
    with pytest.raises(DatabaseError, match="younger than the retention"), transaction.atomic():
        audit_log_prune(before=timezone.now() - timedelta(days=30))
    assert seqs() == [1, 2, 3, 4]


@pytest.mark.django_db
def test_pruning_stops_at_the_first_young_row_even_if_older_rows_follow():
    # A row written under a clock that was behind must not drag younger rows with it.
    set_database_retention(days=30)
    with clock_shifted(timedelta(days=-60)):
        make_events(2)
    make_events(1)
    with clock_shifted(timedelta(days=-60)):
        make_events(1)
    make_events(1)

    assert audit_log_prune(before=timezone.now() - timedelta(days=30)) == 2

    (pruned,) = events(Action.AUDIT_LOG_PRUNED)
    assert seqs() == [3, 4, 5, pruned.seq]
    assert verify()[0] == "Audit log intact: 4 rows verified."


def test_a_malformed_app_role_name_stops_the_app():
    env = {**os.environ, "DATABASE_APP_ROLE": "app; DROP TABLE audit_event"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO_ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "supportgroups.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DATABASE_APP_ROLE must be a PostgreSQL role name" in result.stderr


@committed
def test_a_tail_cut_and_written_over_by_the_app_is_still_caught():
    # After the cut the app goes on writing: the new rows chain onto the cut end and take
    # the removed rows' numbers, so only the anchor's hash tells.
    make_events(5)
    verify()
    as_superuser("DELETE FROM audit_event WHERE seq >= 4")
    make_events(3)
    with pytest.raises(CommandError, match=r"broken at row 5: it is not the row .* saw there"):
        verify()


def test_the_console_shows_the_head_to_keep_outside_the_database(world, admin_client):
    call_command("verify_audit_log", stdout=StringIO(), stderr=StringIO())
    checkpoint = ChainCheckpoint.objects.get()

    page = text_of(admin_client.get("/audit/"))

    assert (
        "Its head, to keep outside the database and check later with verify_audit_log "
        f"--expect-head : {checkpoint.last_seq}:{checkpoint.last_hash}"  # tags make spaces
    ) in page
