"""The database read as it is: the audit events a test caused, and every row of every table
as text (privacy tests assert that nothing sensitive is readable in it). The dump reads
PostgreSQL's catalogue, so tests that use it run under `make test`."""

import time

from django.db import connection

from audit.models import Event


def events(action, **filters) -> list[Event]:  # noqa: ANN001
    return list(Event.objects.filter(action=int(action), **filters).order_by("seq"))


def public_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
        return [name for (name,) in cursor.fetchall()]


def dump_every_table() -> str:
    """Every column of every row of every table in the public schema, as text."""
    quote = connection.ops.quote_name
    lines = []
    with connection.cursor() as cursor:
        for table in public_tables():
            cursor.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                [table],
            )
            columns = [
                # bytea would print as hex; 'escape' shows any readable bytes as they are.
                f"encode({quote(name)}, 'escape')" if kind == "bytea" else f"{quote(name)}::text"
                for name, kind in cursor.fetchall()
            ]
            cursor.execute(f"SELECT {', '.join(columns)} FROM {quote(table)}")
            for row in cursor.fetchall():
                lines.append(f"{table}: " + " | ".join("" if v is None else v for v in row))
    return "\n".join(lines)


def wait_for_lock_waiter() -> None:
    """Until some backend of the test database waits for a lock (a transaction another
    thread holds open). Run it on a thread of its own: it uses, then closes, that thread's
    connection."""
    deadline = time.monotonic() + 10
    try:
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    return
                time.sleep(0.02)
        raise AssertionError("nobody waited for a lock")
    finally:
        connection.close()
