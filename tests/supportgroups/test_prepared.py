"""supportgroups/prepared.py: a statement PostgreSQL plans once per connection."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from supportgroups.prepared import PreparedStatement

pytestmark = pytest.mark.django_db


def statement(name: str) -> PreparedStatement:
    return PreparedStatement(
        name,
        lambda: "SELECT %(a)s + %(b)s, %(words)s, %(words)s || '%%'",
        a="integer",
        b="integer",
        words="text",
    )


def run(prepared: PreparedStatement, **values) -> tuple[tuple, list[str]]:
    """The row, and the kinds of statement sent for it."""
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        prepared.execute(cursor, **values)
        row = cursor.fetchone()
    return row, [q["sql"].split()[0] for q in queries.captured_queries]


def prepared_here(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [name])
        return cursor.fetchone() is not None


def test_it_is_prepared_on_its_first_run_and_only_executed_after():
    adding = statement("test_prepared_adding")
    assert not prepared_here("test_prepared_adding")

    assert not adding.is_prepared_on(connection)
    first, sent = run(adding, a=1, b=2, words="it's 100% ours")
    assert first == (3, "it's 100% ours", "it's 100% ours%")
    assert sent == ["PREPARE", "EXECUTE"]
    assert prepared_here("test_prepared_adding")
    assert adding.is_prepared_on(connection)

    # Values are values, whatever they hold (quoted by the driver, never spliced in).
    second, sent = run(adding, a=40, b=2, words="'); DROP TABLE x; --")
    assert second == (42, "'); DROP TABLE x; --", "'); DROP TABLE x; --%")
    assert sent == ["EXECUTE"]


def test_a_rolled_back_transaction_does_not_lose_it():
    adding = statement("test_prepared_rollback")
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        run(adding, a=1, b=1, words="")
        1 / 0  # noqa: B018 - rolls the block back

    again, sent = run(adding, a=2, b=2, words="kept")
    assert again == (4, "kept", "kept%")
    assert sent == ["EXECUTE"]


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_it_again():
    adding = statement("test_prepared_reconnect")
    run(adding, a=1, b=1, words="")
    connection.close()  # (the pool's replacement is a new database session)
    assert not adding.is_prepared_on(connection)

    again, sent = run(adding, a=5, b=5, words="new")
    assert again == (10, "new", "new%")
    assert sent == ["PREPARE", "EXECUTE"]


def test_the_values_must_be_its_parameters():
    adding = statement("test_prepared_values")
    with pytest.raises(TypeError), connection.cursor() as cursor:
        adding.execute(cursor, a=1, b=2)
    with pytest.raises(TypeError), connection.cursor() as cursor:
        adding.execute(cursor, a=1, b=2, words="", extra=3)


def test_every_parameter_of_the_sql_is_declared():
    undeclared = PreparedStatement(
        "test_prepared_undeclared", lambda: "SELECT %(a)s, %(b)s", a="int"
    )
    with pytest.raises(KeyError, match="'b'"):
        undeclared.prepare_sql()
    with pytest.raises(ValueError, match="Not a statement name"):
        PreparedStatement("drop table; x", lambda: "SELECT 1")
