"""supportgroups/prepared.py: statements bound by the server, prepared once per connection,
whose rows become models as the ORM makes them."""

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from meetings import services
from meetings.models import Message
from supportgroups.prepared import columns_of, fetch_all, model_rows
from tests.meetings.conftest import build_world

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statements"),
]


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_a_statement_is_prepared_after_its_fifth_run_and_counted_like_any_other():
    sql = "SELECT %s::int + %s::int, %s::text || '%%'"
    with CaptureQueriesContext(connection) as queries:
        for n in range(5):
            assert fetch_all(sql, [n, 1, "ten"]) == [(n + 1, "ten%")]
    assert len(queries.captured_queries) == 5
    assert not any("|| '%'" in s for s in prepared_statements())
    assert fetch_all(sql, [5, 1, "ten"]) == [(6, "ten%")]
    assert any("|| '%'" in s for s in prepared_statements())
    # A statement that returns no rows answers an empty list.
    assert fetch_all("SET LOCAL statement_timeout = 0", []) == []


def test_database_errors_are_djangos_so_the_group_commit_tells_them_apart():
    with pytest.raises(DataError), transaction.atomic():
        fetch_all("SELECT %s::int", ["not a number"])
    with pytest.raises(IntegrityError), transaction.atomic():
        fetch_all("INSERT INTO meetings_message (meeting_id) VALUES (%s)", [None])


def test_model_rows_make_the_models_the_orm_loads_with_their_converters_and_extras():
    world = build_world()
    posted = services.message_post(
        meeting_id=world.meeting.pk,
        membership_id=world.river.pk,
        client_id="rows-0001",
        body="Encrypted at rest, read back in clear.",
    ).message
    rows = fetch_all(
        f"SELECT {columns_of(Message, 'x')}, 41 + 1 AS answer"  # noqa: S608
        " FROM meetings_message x WHERE x.id = %s",
        [posted.pk],
    )
    (made,) = model_rows(Message, rows, extra=("answer",))
    expected = Message.objects.get(pk=posted.pk)
    for field in Message._meta.concrete_fields:
        assert getattr(made, field.attname) == getattr(expected, field.attname), field.name
    assert made.body == "Encrypted at rest, read back in clear."  # (the field's converter)
    assert made.answer == 42
    assert (made._state.adding, made._state.db) == (False, "default")


@pytest.mark.django_db(transaction=True)
def test_a_statement_that_locks_rows_outside_a_transaction_is_refused():
    # (It would lock nothing: the ORM's select_for_update refuses the same.)
    from django.db.transaction import TransactionManagementError

    with pytest.raises(TransactionManagementError):
        fetch_all("SELECT 1 FOR UPDATE", [], locks=True)
    with transaction.atomic():
        assert fetch_all("SELECT %s::int FOR UPDATE", [1], locks=True) == [(1,)]


@pytest.mark.django_db(transaction=True)
def test_a_prepared_statement_outlives_a_migration_that_changes_what_it_returns():
    from tests.supportgroups.test_database_pool import direct_connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE prepared_probe (word varchar(10))")
        cursor.execute("INSERT INTO prepared_probe VALUES ('before')")
    try:
        sql = "SELECT word FROM prepared_probe WHERE word <> %s"
        for _ in range(7):  # (prepared by now)
            assert fetch_all(sql, ["x"]) == [("before",)]
        with direct_connection() as migrating:  # (a deploy's migration, meanwhile)
            migrating.execute("ALTER TABLE prepared_probe ALTER COLUMN word TYPE varchar(20)")
            migrating.execute("UPDATE prepared_probe SET word = 'after'")
        assert fetch_all(sql, ["x"]) == [("after",)]
        assert fetch_all(sql, ["x"]) == [("after",)]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE prepared_probe")
