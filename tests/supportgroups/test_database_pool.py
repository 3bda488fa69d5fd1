"""The pool hands out an idle connection without a round trip, and still never hands out
one whose server ended it (supportgroups/postgresql/base.py)."""

import psycopg
import pytest
from django.db import connection

from supportgroups.postgresql.base import check_when_spoken_to


def direct_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def last_statement_of(backend_pid: int) -> str:
    with direct_connection() as watcher:
        (query,) = watcher.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", [backend_pid]
        ).fetchone()
    return query


@pytest.mark.django_db
def test_an_idle_connection_with_nothing_to_read_is_handed_out_without_a_statement():
    with direct_connection() as idle:
        idle.execute("SELECT 'the last statement'")
        check_when_spoken_to(idle)
        # The check ran nothing on it (psycopg_pool's own check runs an empty statement).
        assert last_statement_of(idle.info.backend_pid) == "SELECT 'the last statement'"
        assert idle.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.django_db
def test_a_connection_whose_server_ended_it_fails_the_check():
    with direct_connection() as ended, direct_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [ended.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            for _ in range(50):  # (until the server's goodbye has reached the socket)
                check_when_spoken_to(ended)
                admin.execute("SELECT pg_sleep(0.02)")


@pytest.mark.django_db(transaction=True)
def test_after_the_server_ended_every_pooled_connection_the_next_query_still_works():
    assert connection.pool is not None
    assert connection.pool._check is check_when_spoken_to  # (psycopg_pool's attribute)
    # Take several of the pool's connections at once, then give them back.
    taken = [connection.pool.getconn() for _ in range(3)]
    pids = [c.info.backend_pid for c in taken]
    for c in taken:
        connection.pool.putconn(c)
    connection.close()
    with direct_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
        admin.execute("SELECT pg_sleep(0.2)")  # (the goodbyes reach their sockets)
    for _ in range(5):  # every one of them again, and more
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        assert connection.connection.info.backend_pid not in pids
        connection.close()
