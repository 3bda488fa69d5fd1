"""A model query compiled to SQL once per process and run with parameters.

Building a queryset (filters, joins, ``F`` annotations, windows) and compiling it costs
more than running it on a small page: the facilitator's dashboard spent most of its
Python time compiling its five lists (issue 22, ``python -m bench.profile_pages``). The
SQL is the same for every request but a few values (the group's id, the time), so it is
compiled once and run with those values, as ``accounts/user_row.py`` does for the frame.

This holds only while the query depends on nothing but its parameters: one that reads the
clock itself or a setting that changes would be frozen at its first value. Compiling
checks it: the query is built twice, with two different values for every parameter, and
everything but those values must come out the same. ``now`` is therefore a parameter,
never read inside the builder; and a builder must be a pure function of its parameters
(no time zone or language functions such as ``__date`` or ``Trunc*``, whose SQL would
take the first request's zone).

Only on PostgreSQL, production's database: there a parameter reaches the driver as the
value given and every annotation comes back typed. Other backends (the embedded SQLite
default of ``make run``) adapt values while compiling (a datetime becomes a string) and
return annotations untyped, so there ``run`` simply evaluates the queryset.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)

# Stand-ins while compiling: values no real row or request has, two per parameter (its
# first and second build) and none shared between parameters, so that two parameters of
# one type are told apart in the SQL's parameters.
PROBE_BASES: dict[type, Any] = {
    int: -7_734_190_583,
    datetime: datetime(1901, 2, 3, 4, 5, 6, 789_012, tzinfo=UTC),
}


def probe(kind: type, index: int, build: int) -> Any:
    """The stand-in for the ``index``-th parameter (of type ``kind``) in build 0 or 1."""
    step = 2 * index + build
    if kind is datetime:
        return PROBE_BASES[datetime] + timedelta(days=step, microseconds=step)
    return PROBE_BASES[kind] - step


class CompiledQuery(Generic[M]):
    """``run(**values)`` returns ``list(build(**values))``, as model instances with their
    annotations, from SQL compiled once. ``parameters`` names each of ``build``'s keyword
    arguments with its type (``int`` or ``datetime``).

    Rows come through ``Model.objects.raw``: the model's own columns get their fields'
    converters (as a queryset does); annotations come as the driver gives them.
    """

    def __init__(self, build: Callable[..., QuerySet[M]], **parameters: type) -> None:
        unknown = {name for name, kind in parameters.items() if kind not in PROBE_BASES}
        if unknown:
            raise ImproperlyConfigured(
                f"A compiled query's parameters are int or datetime: {sorted(unknown)}"
            )
        self.build = build
        self.parameters = parameters
        self._compiled: tuple[type[M], str, list[Any], dict[int, str]] | None = None

    def _probes(self, build: int) -> dict[str, Any]:
        return {
            name: probe(kind, index, build)
            for index, (name, kind) in enumerate(self.parameters.items())
        }

    def _compile_with(self, build: int) -> tuple[type[M], str, list[Any]]:
        values = self._probes(build)
        queryset = self.build(**values)
        sql, params = queryset.query.sql_with_params()
        return queryset.model, sql, list(params)

    def _compile(self) -> tuple[type[M], str, list[Any], dict[int, str]]:
        model, sql, params = self._compile_with(0)
        _, other_sql, other_params = self._compile_with(1)
        first = {value: name for name, value in self._probes(0).items()}
        second = {value: name for name, value in self._probes(1).items()}
        where: dict[int, str] = {}
        same_elsewhere = sql == other_sql and len(params) == len(other_params)
        for n, (a, b) in enumerate(zip(params, other_params, strict=False)):
            if a in first and first[a] == second.get(b):
                where[n] = first[a]
            elif a != b:
                same_elsewhere = False
        if not same_elsewhere or set(where.values()) != set(self.parameters):
            raise ImproperlyConfigured(
                "A query compiled once must depend on its parameters alone "
                f"({', '.join(self.parameters)}): {self.build.__qualname__}"
            )
        return model, sql, params, where

    def run(self, **values: Any) -> list[M]:
        if set(values) != set(self.parameters):
            raise TypeError(f"expected {sorted(self.parameters)}, got {sorted(values)}")
        if connection.vendor != "postgresql":  # (the app has one database)
            return list(self.build(**values))
        if self._compiled is None:
            self._compiled = self._compile()
        model, sql, params, where = self._compiled
        params = list(params)
        for n, name in where.items():
            params[n] = values[name]
        return list(model.objects.raw(sql, params))
