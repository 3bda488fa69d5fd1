"""A hand-written statement that PostgreSQL plans once per connection, not at every run.

Django sends each statement as text with its values in it (client-side binding, no
prepared statements), so PostgreSQL plans it again every time. For a statement that joins
several tables, each with several indexes, planning costs more than running it on the few
rows it reads: the sealed send's check (meetings/e2ee.py) took 1.1 ms to plan and 0.24 ms
to run (pg_stat_statements, ``python -m bench.sendpath --e2ee --statements``), once per
message, on the database thread every send of a Daphne queues on.

A ``PreparedStatement`` is PREPAREd on a connection the first time it runs there, then
EXECUTEd with its values: PostgreSQL plans its first five runs for their values and then,
its plan being no worse, keeps one generic plan (``plan_cache_mode`` auto), so later runs
are not planned at all. Both go through Django's cursor, so they are counted and logged as
any statement.

A prepared statement lives as long as the database session (a ROLLBACK does not undo a
PREPARE), so the connections it was prepared on are remembered, weakly: a connection the
pool closes and replaces is a new one, and prepares it again. This relies on the app's own
connections to PostgreSQL (the settings' pool): a pooler in between that hands a session
to other clients between transactions (PgBouncer in transaction mode) would lose it.

The statement is written with named parameters (``%(name)s``). Elsewhere than PostgreSQL
(the embedded SQLite default of ``make run``) it simply runs with them.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from typing import Any

_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_PARAMETER = re.compile(r"%\((\w+)\)s")


class PreparedStatement:
    """``execute(cursor, **values)`` runs the SQL ``build()`` returns with those values;
    ``parameters`` gives each value's PostgreSQL type, by name (``meeting="bigint"``)."""

    def __init__(self, name: str, build: Callable[[], str], **parameters: str) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"Not a statement name: {name!r}")
        self.name = name
        self.build = build  # called when first run (table names come from the models)
        self.parameters = parameters
        self._prepared_on: weakref.WeakSet = weakref.WeakSet()

    def execute(self, cursor, **values: Any) -> None:  # noqa: ANN001 - Django's cursor
        """Run it on ``cursor`` (a Django cursor); its rows are then read from the cursor."""
        if values.keys() != self.parameters.keys():
            raise TypeError(
                f"{self.name} takes {sorted(self.parameters)}, was given {sorted(values)}"
            )
        if cursor.db.vendor != "postgresql":
            cursor.execute(self.build(), values)
            return
        session = cursor.db.connection  # the driver's connection: one database session
        if session not in self._prepared_on:
            cursor.execute(self.prepare_sql())
            self._prepared_on.add(session)
        placeholders = ", ".join(["%s"] * len(self.parameters))
        cursor.execute(
            f"EXECUTE {self.name}({placeholders})", [values[name] for name in self.parameters]
        )

    def is_prepared_on(self, db) -> bool:  # noqa: ANN001 - a Django connection
        """Whether it is prepared on ``db``'s current database session."""
        return db.connection is not None and db.connection in self._prepared_on

    def prepare_sql(self) -> str:
        """The PREPARE: each named parameter becomes its number, typed."""
        numbers = {name: n for n, name in enumerate(self.parameters, start=1)}

        def number(found: re.Match) -> str:
            if found.group(1) not in numbers:
                raise KeyError(f"{self.name} has no parameter {found.group(1)!r}")
            return f"${numbers[found.group(1)]}"

        # Run without values, the text is sent as it is: a literal %% is % again.
        body = _PARAMETER.sub(number, self.build()).replace("%%", "%")
        types = ", ".join(self.parameters.values())
        return f"PREPARE {self.name} ({types}) AS {body}"
