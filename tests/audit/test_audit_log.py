"""The append-only, hash-chained audit log and `manage.py verify_audit_log`.

Tampering is done the way a real attacker with database access would: as the PostgreSQL
superuser, in a separate connection, with the append-only trigger switched off for that
session (`session_replication_role = replica`). That needs committed data, so those tests
use transaction=True.
"""

import os
import subprocess
import sys
import threading
from io import StringIO
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import Error as DatabaseError
from django.db import connection, transaction

from audit.chain import compute_hash, verify_chain
from audit.events import Action
from audit.models import GENESIS_HASH, Event
from audit.services import ip_blind_index, record_event
from supportgroups.crypto import encrypt_str
from tests.factories import make_events, make_user

REPO_ROOT = Path(__file__).resolve().parents[2]


def verify_audit_log():
    out = StringIO()
    call_command("verify_audit_log", stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()[0]  # the second line is the head (test_chain_ends)


def as_superuser(*statements):
    """Run SQL as the PostgreSQL superuser, with the append-only trigger disabled."""
    url = os.environ.get("TEST_PG_SUPERUSER_URL")
    if not url:
        pytest.fail("TEST_PG_SUPERUSER_URL is unset: run the suite through tests/harness.py")
    dbname = connection.settings_dict["NAME"]
    with psycopg.connect(url, dbname=dbname, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        for statement in statements:
            sql, params = statement if isinstance(statement, tuple) else (statement, None)
            conn.execute(sql, params)


# -- writing ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_writes_chained_rows():
    actor = make_user("facilitator")
    subject = make_user("member")
    first = record_event(action=Action.LOGIN_SUCCEEDED, actor=actor, ip="192.0.2.10")
    second = record_event(
        action=Action.CONTACT_DETAILS_REVEALED,
        actor=actor,
        subject=subject,
        target=subject,
        group_id=7,
        extra={"reason_length": 42},
    )
    make_events(3)

    rows = list(Event.objects.order_by("seq"))
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS_HASH
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.hash
    for row in rows:
        # Re-read from the database, each hash still matches its content.
        assert row.hash == compute_hash(row.prev_hash, row)
    assert len({row.hash for row in rows}) == 5

    assert rows[0].pk == first.pk
    assert rows[0].actor_id == actor.pk
    assert rows[0].ip == "192.0.2.10"
    assert rows[1].pk == second.pk
    assert (rows[1].subject_id, rows[1].target_type, rows[1].target_id) == (
        subject.pk,
        "accounts.user",
        str(subject.pk),
    )
    assert rows[1].group_id == 7
    assert rows[1].action_enum is Action.CONTACT_DETAILS_REVEALED
    assert rows[1].extra == {"reason_length": 42}
    assert verify_audit_log() == "Audit log intact: 5 rows verified."


@pytest.mark.django_db
def test_it_verifies_an_empty_log():
    assert verify_audit_log() == "Audit log intact: 0 rows verified."


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["body", "message", "answers", "password", "email", "ip"])
def test_it_refuses_content_or_secrets_in_extra(key):
    with pytest.raises(ValueError, match=key):
        record_event(action=Action.REPORT_FILED, extra={"report_id": 3, key: "anything"})
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_it_stores_the_ip_encrypted_but_findable_by_its_blind_index():
    ip = "203.0.113.42"
    wanted = record_event(action=Action.LOGIN_FAILED, ip=ip)
    record_event(action=Action.LOGIN_FAILED, ip="203.0.113.43")
    record_event(action=Action.LOGIN_FAILED)
    v6 = record_event(action=Action.LOGIN_FAILED, ip="2001:DB8::1")

    with connection.cursor() as cursor:
        cursor.execute("SELECT e::text FROM audit_event e")
        dump = "\n".join(row for (row,) in cursor.fetchall())
    assert ip not in dump
    assert "2001:db8::1" not in dump.casefold()

    found = Event.objects.filter(ip_index=ip_blind_index(ip))
    assert list(found) == [wanted]
    assert found.get().ip == ip
    assert list(Event.objects.filter(ip_index=ip_blind_index("2001:db8::1"))) == [v6]
    assert Event.objects.filter(ip_index="").count() == 1


# -- the database refuses changes -------------------------------------------------------


@pytest.mark.django_db
def test_it_refuses_update_and_delete_through_the_apps_own_connection():
    event, other = make_events(2, ip="192.0.2.5")
    attempts = [
        lambda: Event.objects.filter(pk=event.pk).update(extra={"n": 99}),
        lambda: Event.objects.filter(pk=event.pk).update(ip="198.51.100.1"),
        lambda: Event.objects.filter(pk=event.pk).delete(),
        lambda: other.delete(),
        lambda: connection.cursor().execute("DELETE FROM audit_event"),
        lambda: connection.cursor().execute("UPDATE audit_event SET action = 1"),
    ]
    for attempt in attempts:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    # The connection is still usable and nothing changed.
    assert Event.objects.count() == 2
    event.refresh_from_db()
    assert (event.extra, event.ip) == ({"n": 0}, "192.0.2.5")
    assert verify_audit_log() == "Audit log intact: 2 rows verified."


@pytest.mark.django_db(transaction=True)
def test_it_lets_key_rotation_rewrite_only_the_ip_column():
    event = record_event(action=Action.LOGIN_SUCCEEDED, ip="192.0.2.8", extra={"a": 1})

    def with_rotation_flag(sql, params):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL supportgroups.rotating_keys = 'on'")
            cursor.execute(sql, params)

    # Even with the flag, any other column is refused.
    with pytest.raises(DatabaseError, match="append-only"):
        with_rotation_flag("UPDATE audit_event SET extra = '{}' WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError, match="append-only"):
        with_rotation_flag(
            "UPDATE audit_event SET ip = %s, ip_index = '' WHERE id = %s",
            [encrypt_str("192.0.2.8"), event.pk],
        )
    with pytest.raises(DatabaseError, match="append-only"):
        with_rotation_flag("DELETE FROM audit_event WHERE id = %s", [event.pk])

    # Re-encrypting the same IP is allowed and keeps the chain intact...
    with_rotation_flag(
        "UPDATE audit_event SET ip = %s WHERE id = %s", [encrypt_str("192.0.2.8"), event.pk]
    )
    assert verify_audit_log() == "Audit log intact: 1 row verified."
    # ...while putting a different IP there is caught by the chain.
    with_rotation_flag(
        "UPDATE audit_event SET ip = %s WHERE id = %s", [encrypt_str("192.0.2.9"), event.pk]
    )
    with pytest.raises(CommandError, match=r"broken at row 1 .*altered"):
        verify_audit_log()


# -- tampering as a superuser is caught -------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "change",
    [
        "extra = '{\"n\": 100}'::jsonb",
        "action = 1003",
        "actor_id = 12345",
        "created_at = created_at + interval '1 second'",
        "target_id = 'other'",
    ],
)
def test_it_names_an_altered_row(change):
    make_events(6, ip="192.0.2.1")
    as_superuser(f"UPDATE audit_event SET {change} WHERE seq = 4")
    with pytest.raises(CommandError, match=r"broken at row 4 .*altered.* 3 rows before it"):
        verify_audit_log()


@pytest.mark.django_db(transaction=True)
def test_it_names_a_row_whose_ip_was_swapped_or_destroyed():
    make_events(3, ip=lambda i: f"192.0.2.{i}")
    as_superuser(
        ("UPDATE audit_event SET ip = %s WHERE seq = 2", [encrypt_str("10.0.0.1")]),
    )
    with pytest.raises(CommandError, match=r"broken at row 2 .*altered"):
        verify_audit_log()
    as_superuser("UPDATE audit_event SET ip = 'not a token' WHERE seq = 2")
    with pytest.raises(CommandError, match=r"broken at row 2 .*cannot be decrypted"):
        verify_audit_log()


@pytest.mark.django_db(transaction=True)
def test_it_names_the_row_after_a_removed_one():
    make_events(5)
    as_superuser("DELETE FROM audit_event WHERE seq = 3")
    with pytest.raises(CommandError, match=r"broken at row 4 .*missing"):
        verify_audit_log()


@pytest.mark.django_db(transaction=True)
def test_it_catches_a_removed_first_row():
    make_events(4)
    as_superuser("DELETE FROM audit_event WHERE seq = 1")
    with pytest.raises(CommandError, match=r"broken at row 2 .*missing.* 0 rows before it"):
        verify_audit_log()


@pytest.mark.django_db(transaction=True)
def test_it_catches_a_removed_then_renumbered_row():
    # Closing the gap by renumbering leaves no hole in seq; prev_hash still gives it away.
    make_events(5)
    as_superuser(
        "DELETE FROM audit_event WHERE seq = 3",
        "UPDATE audit_event SET seq = seq - 1 WHERE seq = 4",
        "UPDATE audit_event SET seq = seq - 1 WHERE seq = 5",
    )
    with pytest.raises(CommandError, match=r"broken at row 3 .*removed or reordered"):
        verify_audit_log()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["swap seq values", "swap contents"])
def test_it_catches_reordered_rows(how):
    make_events(5)
    if how == "swap seq values":
        statements = [
            "UPDATE audit_event SET seq = -1 WHERE seq = 2",
            "UPDATE audit_event SET seq = 2 WHERE seq = 3",
            "UPDATE audit_event SET seq = 3 WHERE seq = -1",
        ]
    else:
        columns = (
            "created_at, actor_id, subject_id, action, target_type, target_id, group_id, "
            "ip, ip_index, extra, prev_hash, hash"
        )
        statements = [
            "CREATE TEMP TABLE row2 AS SELECT * FROM audit_event WHERE seq = 2",
            "CREATE TEMP TABLE row3 AS SELECT * FROM audit_event WHERE seq = 3",
            # hash is unique: park both while the contents trade places.
            "UPDATE audit_event SET hash = 'parked-' || seq WHERE seq IN (2, 3)",
            f"UPDATE audit_event SET ({columns}) = (SELECT {columns} FROM row3) WHERE seq = 2",
            f"UPDATE audit_event SET ({columns}) = (SELECT {columns} FROM row2) WHERE seq = 3",
        ]
    as_superuser(*statements)
    with pytest.raises(CommandError, match=r"broken at row 2 .*reordered"):
        verify_audit_log()


# -- concurrency ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_chains_concurrent_writers_without_gaps_or_forks():
    writers, per_writer = 8, 10
    start = threading.Barrier(writers)
    errors = []

    def write(writer):
        try:
            start.wait(timeout=30)
            for i in range(per_writer):
                record_event(action=Action.LOGIN_SUCCEEDED, extra={"writer": writer, "i": i})
        except Exception as error:  # reported below, in the main thread
            errors.append(error)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    rows = list(Event.objects.order_by("seq").values_list("seq", "extra"))
    assert [seq for seq, _ in rows] == list(range(1, writers * per_writer + 1))
    for writer in range(writers):
        # Each writer's events appear once each, in the order it wrote them.
        mine = [extra["i"] for _, extra in rows if extra["writer"] == writer]
        assert mine == list(range(per_writer))
    assert verify_chain().verified == 80
    assert verify_audit_log() == "Audit log intact: 80 rows verified."


# -- the real command line --------------------------------------------------------------


def run_manage(*args, as_owner: bool = False):
    """``manage.py`` in a subprocess, connected as the app role, as in production (the
    harness makes it; see test_chain_ends), or as the tables' owner that migrates."""
    db = settings.DATABASES["default"]
    user, password = db["USER"], db["PASSWORD"]
    app_url = os.environ.get("TEST_PG_APP_URL")
    if app_url and not as_owner:
        app = urlsplit(app_url)
        user, password = unquote(app.username), unquote(app.password or "")
    url = (
        f"postgres://{quote(user, safe='')}:{quote(password, safe='')}"
        f"@{db['HOST']}:{db['PORT']}/{quote(db['NAME'], safe='')}"
    )
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_it_exits_zero_on_an_intact_log_and_non_zero_after_tampering():
    make_events(3, ip="192.0.2.1")
    intact = run_manage("verify_audit_log")
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.splitlines()[0] == "Audit log intact: 3 rows verified."

    as_superuser("UPDATE audit_event SET extra = '{\"n\": 7}' WHERE seq = 2")
    broken = run_manage("verify_audit_log")
    assert broken.returncode != 0
    assert broken.stdout == ""
    lines = [line for line in broken.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, broken.stderr
    assert "Audit log broken at row 2" in lines[0]
    assert "altered" in lines[0]
    assert "Traceback" not in broken.stderr
