"""A query about one user row, compiled to SQL once per process.

The frame of every signed-in page asks a few facts about the person (accounts/facts.py)
and the 2FA check asks two more (accounts.selectors.user_two_factor_standing). Each is one
statement, but building it (subqueries with ``OuterRef``, resolving and compiling them in
the ORM) cost more than running it: about a fifth of a small page's time in the profile
(issue 22, ``python -m bench.profile_pages``). The SQL is the same for every person; only
the user's id differs, so it is compiled once and then run with that id.

This holds only while the expressions depend on nothing but the user row: one reading
the clock (``timezone.now()``) or a setting that changes would be frozen at its first
value. Compiling checks it: the statement is built twice, for two different ids, and
everything but the id must come out the same.
"""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Expression

from accounts.models import User

# Stand-ins for the user's id while compiling: no user has a negative id.
_PROBES = (-7_734_190_583, -7_734_190_584)


class UserRowQuery:
    """``run(user_id)`` returns ``{name: value}`` of ``expressions()`` for that user row
    (``OuterRef("pk")`` is the person), or None when there is no such row.

    Values come as the database driver gives them (no field converters): meant for
    booleans and counts (``Exists``, ``Count``, ``Coalesce``), not model fields.
    """

    def __init__(
        self,
        expressions: Callable[[], dict[str, Expression]],
        *,
        registered: Callable[[], tuple[str, ...]],
    ) -> None:
        """``registered()`` names the expressions cheaply (no building): the SQL is
        compiled again when an app registers another one."""
        self.expressions = expressions
        self.registered = registered
        # (what was registered, its statement), replaced in one assignment so that a
        # thread never pairs one registry with another's statement.
        self._compiled: (
            tuple[tuple[str, ...], tuple[str, list[int], list[Any], list[str]]] | None
        ) = None

    def _compile_for(self, probe: int) -> tuple[str, list[Any], list[str]]:
        query = User.objects.filter(pk=probe).values(**self.expressions()).query
        sql, params = query.sql_with_params()
        return sql, list(params), list(query.annotation_select)

    def _compile(self) -> tuple[str, list[int], list[Any], list[str]]:
        sql, params, names = self._compile_for(_PROBES[0])
        other_sql, other_params, _ = self._compile_for(_PROBES[1])
        where = [n for n, value in enumerate(params) if value == _PROBES[0]]
        same_elsewhere = sql == other_sql and all(
            (n in where and b == _PROBES[1]) or (n not in where and a == b)
            for n, (a, b) in enumerate(zip(params, other_params, strict=True))
        )
        if not where or not same_elsewhere:
            raise ImproperlyConfigured(
                "A fact about the user row must depend on the row alone (compiled once "
                f"per process): {names}"
            )
        return sql, where, params, names

    def run(self, user_id: int) -> dict[str, Any] | None:
        registered = self.registered()
        compiled = self._compiled
        if compiled is None or compiled[0] != registered:
            compiled = self._compiled = (registered, self._compile())
        sql, where, params, names = compiled[1]
        params = list(params)
        for n in where:
            params[n] = user_id
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return dict(zip(names, row, strict=True)) if row is not None else None
