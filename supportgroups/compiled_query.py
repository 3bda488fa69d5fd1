"""A model query compiled to SQL once per process and run with parameters.

Building a queryset (filters, joins, ``F`` annotations, windows) and compiling it costs
more than running it on a small page: compiling was a fifth to a third of a signed-in
page's Python time (issue 22, ``python -m bench.profile_pages``). The SQL is the same for
every request but a few values (the person's id, the group's slug, the time), so it is
compiled once and run with those values, as ``accounts/user_row.py`` does for the frame.

This holds only while the query depends on nothing but its parameters: one that reads the
clock itself or a setting that changes would be frozen at its first value. Compiling
checks it: the query is built twice, with two different values for every parameter, and
everything but those values must come out the same. ``now`` is therefore a parameter,
never read inside the builder; and a builder must be a pure function of its parameters
(no time zone or language functions such as ``__date`` or ``Trunc*``, whose SQL would
take the first request's zone). A value must reach the SQL as given: a lookup that
rewrites it (``__icontains`` wraps it in ``%``) is refused the same way.

Rows are made by the ORM's own iterable from the compiler of the first build (the model's
fields and ``select_related`` rows with their converters, annotations, ``values()``
dictionaries), so ``run`` returns what ``list(build(**values))`` does.

Only on PostgreSQL, production's database: there a parameter reaches the driver as the
value given. Other backends (the embedded SQLite default of ``make run``) adapt values
while compiling (a datetime becomes a string), so there ``run`` simply evaluates the
queryset.
"""

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)

# Stand-ins while compiling: values no real row or request has, two per parameter (the
# first and the second build), different for every parameter of a query.
_INT_PROBE = 1_934_190_583  # (within the range of a positive 32-bit column)
_TIME_PROBE = datetime(1901, 2, 3, 4, 5, 6, 789_012, tzinfo=UTC)


def probe(kind: type, build: int, position: int) -> Any:
    """The stand-in for the ``position``-th parameter of ``kind`` in build 0 or 1."""
    n = build * 1_000 + position
    if kind is int:
        return _INT_PROBE - n
    if kind is datetime:
        return _TIME_PROBE + timedelta(days=400 * build, microseconds=position)
    if kind is str:
        return f"\x1fcompiled-query-probe-{n}\x1f"
    raise TypeError(f"no stand-in for a {kind.__name__} parameter")


class CompiledQuery(Generic[M]):
    """``run(**values)`` returns ``list(build(**values))`` from SQL compiled once.
    ``parameters`` names each of ``build``'s keyword arguments with its type (``int``,
    ``str`` or ``datetime``)."""

    def __init__(self, build: Callable[..., QuerySet[M]], **parameters: type) -> None:
        unknown = {name for name, kind in parameters.items() if kind not in (int, str, datetime)}
        if unknown:
            # (Refused when the query is made, not at its first request.)
            raise ImproperlyConfigured(
                f"A compiled query's parameters are int, str or datetime: {sorted(unknown)}"
            )
        self.build = build
        self.parameters = parameters
        self._compiled: (
            tuple[QuerySet[M], Any, str, list[Any], dict[int, tuple[str, type]]] | None
        ) = None

    def _probes(self, build: int) -> dict[str, Any]:
        return {
            name: probe(kind, build, n) for n, (name, kind) in enumerate(self.parameters.items())
        }

    def _compile(self) -> tuple[QuerySet[M], Any, str, list[Any], dict[int, tuple[str, type]]]:
        first, second = self._probes(0), self._probes(1)
        queryset = self.build(**first)
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        other_sql, other_params = self.build(**second).query.sql_with_params()
        where: dict[int, tuple[str, type]] = {}
        same_elsewhere = sql == other_sql and len(params) == len(other_params)
        for n, (a, b) in enumerate(zip(params, other_params, strict=False)):
            name = _probed(a, first)
            if name is not None and _probed(b, second) == name:
                # As the ORM passed it: PostgreSQL's backend wraps an integer field's
                # value in the driver's type of the column (Int4, ...).
                where[n] = (name, type(a))
            elif a != b:
                same_elsewhere = False
        if not same_elsewhere or {name for name, _ in where.values()} != set(self.parameters):
            raise ImproperlyConfigured(
                "A query compiled once must depend on its parameters alone "
                f"({', '.join(self.parameters)}): {self.build.__qualname__}"
            )
        return queryset, compiler, sql, list(params), where

    def run(self, **values: Any) -> list[M]:
        if set(values) != set(self.parameters):
            raise TypeError(f"expected {sorted(self.parameters)}, got {sorted(values)}")
        if connection.vendor != "postgresql":  # (the app has one database)
            return list(self.build(**values))
        if self._compiled is None:
            self._compiled = self._compile()
        queryset, compiler, sql, params, where = self._compiled
        params = list(params)
        for n, (name, kind) in where.items():
            value = values[name]
            if kind.__name__ in _DRIVER_INT_RANGES and not _in_range(value, kind.__name__):
                # Past the column's range: the ORM answers without asking (no rows, or
                # all), where the driver would refuse the value.
                return list(self.build(**values))
            params[n] = value if type(value) is kind else kind(value)
        # The first build's compiler, shared by every run: copied, on this thread's
        # connection, answering with the compiled statement and this run's values.
        compiler = copy.copy(compiler)
        compiler.connection = connections[queryset.db]
        compiler.as_sql = lambda *args, **kwargs: (sql, params)
        query = copy.copy(queryset.query)
        query.get_compiler = lambda *args, **kwargs: compiler
        return list(_queryset_on(queryset, query))


def _probed(value: Any, probes: dict[str, Any]) -> str | None:
    """The parameter whose stand-in ``value`` is, if any (an ``int`` may come wrapped)."""
    for name, stand_in in probes.items():
        if type(value) is not bool and isinstance(value, type(stand_in)) and value == stand_in:
            return name
    return None


# psycopg's wrappers of an integer column's value, and the values each can carry.
_DRIVER_INT_RANGES = {"Int2": 2**15, "Int4": 2**31, "Int8": 2**63}


def _in_range(value: int, wrapper: str) -> bool:
    limit = _DRIVER_INT_RANGES[wrapper]
    return -limit <= value < limit


def _queryset_on(template: QuerySet, query: Any) -> QuerySet:
    """A queryset like ``template`` (its model, rows' kind, database) over ``query``."""
    queryset = QuerySet(model=template.model, query=query, using=template._db)
    queryset._iterable_class = template._iterable_class
    queryset._fields = template._fields
    return queryset
