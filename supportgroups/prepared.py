"""The chat's hot statements, bound by the server and prepared once per connection.

Django's PostgreSQL backend binds parameters on the client (``ClientCursor``): every run
quotes each value into the SQL text in Python, and PostgreSQL parses and plans that text
again. For a page that is nothing; for the chat's send path, which runs the same few
statements for every message, it was most of the database thread's Python and a good part
of PostgreSQL's time per message (``python -m bench.sendpath --profile``). Here a statement
goes with its parameters apart (Django's ``ServerBindingCursor``), and psycopg prepares it
on the connection after its fifth run (``prepare_threshold`` in the settings), with one
generic plan (``plan_cache_mode``, also there), so PostgreSQL only executes it from then on.

A prepared statement lives as long as its connection, with three exceptions worth knowing:
- psycopg forgets every statement it prepared on a connection when a transaction on it
  rolls back (it sends ``DEALLOCATE ALL``): they are prepared again after five more runs.
- A migration that changes the type of a column such a statement returns makes its next
  run fail ("cached plan must not change result type"): ``fetch_all`` then forgets the
  connection's statements and, outside a transaction, runs it again (inside one, the
  transaction has failed; its rollback forgets them, and the caller's retry prepares anew).
- A pooler between the app and PostgreSQL that hands a session to other clients between
  transactions (PgBouncer in transaction mode) needs its ``max_prepared_statements``.

The cursor is Django's wrapper around psycopg's, so database errors are Django's
(``IntegrityError``, ``DataError``: the group commit tells them apart) and the statements
are logged and counted as any other (``CaptureQueriesContext``).

Rows come back as tuples; ``model_rows`` makes model instances of them as the ORM does
(``Model.from_db`` and the fields' converters), from an explicit column list, without the
cost of building and compiling a queryset per call.

PostgreSQL only: callers keep their ORM path for the embedded SQLite default.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.db import NotSupportedError, connection
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, ServerBindingCursor
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.models import Model
from django.db.transaction import TransactionManagementError
from psycopg.pq import Format

M = TypeVar("M", bound=Model)


def fetch_all(
    sql: str, params: Sequence[Any] | Mapping[str, Any], *, locks: bool = False
) -> list[tuple]:
    """Run ``sql`` with ``params`` bound by the server (``%s`` placeholders and a sequence,
    or ``%(name)s`` and a mapping: a name used twice is one parameter); its rows.

    ``locks``: the statement locks rows until the transaction ends (``FOR UPDATE``), so it
    must run inside one, as the ORM's ``select_for_update`` insists."""
    if locks and not connection.in_atomic_block:
        raise TransactionManagementError("A statement that locks rows needs a transaction.")
    try:
        return _fetch_all(sql, params)
    except NotSupportedError as error:
        if "cached plan must not change result type" not in str(error):
            raise
        # A migration changed a column this prepared statement returns.
        _forget_prepared_statements()
        if connection.in_atomic_block:
            raise  # (the transaction failed; its rollback forgets them anyway)
        return _fetch_all(sql, params)


def _fetch_all(sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple]:
    with server_bound_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []


def _forget_prepared_statements() -> None:
    if connection.in_atomic_block and connection.needs_rollback:
        return  # (an aborted transaction runs nothing more; its rollback forgets them)
    with connection.wrap_database_errors:
        # psycopg notices its own statements are gone and prepares them again.
        connection.connection.execute("DEALLOCATE ALL")


def server_bound_cursor():  # noqa: ANN201 - django.db.backends.utils.CursorWrapper
    """Django's cursor wrapper (errors, logging) around a server-binding psycopg cursor,
    made as ``connection.cursor()`` makes its client-binding one."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = ServerBindingCursor(connection.connection)
        timestamps = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
        if connection.timezone != timestamps.timezone:  # (as create_cursor does)
            register_tzloader(connection.timezone, cursor)
        return connection._prepare_cursor(cursor)  # noqa: SLF001


@functools.cache
def columns_of(model: type[Model], alias: str) -> str:
    """The model's columns, in the order ``model_rows`` reads them, for a SELECT list."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


@functools.cache
def _converters(model: type[Model]) -> tuple[list[str], list[tuple[int, Any, list]]]:
    fields = model._meta.concrete_fields
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if found:
            converters.append((position, column, found))
    return [f.attname for f in fields], converters


def model_rows(model: type[M], rows: list[tuple], extra: Sequence[str] = ()) -> list[M]:
    """Instances of ``model`` from rows of ``columns_of(model, ...)`` followed by the
    ``extra`` values, set as attributes of those names (as annotations are)."""
    attnames, converters = _converters(model)
    width = len(attnames)
    made = []
    for row in rows:
        values = list(row[:width])
        for position, column, found in converters:
            for convert in found:
                values[position] = convert(values[position], column, connection)
        instance = model.from_db(connection.alias, attnames, values)
        for name, value in zip(extra, row[width:], strict=True):
            setattr(instance, name, value)
        made.append(instance)
    return made
