"""What the audit log needs from PostgreSQL's roles: the retention the database enforces,
and the app role's privileges. Both are set by the role that owns the tables, when
``migrate`` runs (``AuditConfig`` connects ``sync_after_migrate`` to ``post_migrate``), so
the role the app serves as can read them but never change them.

Two roles (README, "Database roles"):

- the **owner** owns every table and runs ``migrate``. It could disable the audit
  table's triggers, so its password stays out of the running app.
- the **app role** (``DATABASE_APP_ROLE``) serves requests and runs the scheduled
  commands. It gets SELECT, INSERT, UPDATE and DELETE, nothing else: no TRUNCATE, no
  TRIGGER, no REFERENCES, no DDL, and it may only read ``django_migrations``. On
  ``audit_event`` the triggers (migration 0007) decide which of those it may use.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

# The database's copy of AUDIT_RETENTION_DAYS: a function, not a table row, so that a
# test run's flush (TRUNCATE) cannot lose it and no temporary table can shadow it (the
# trigger functions pin their search_path, and functions are never looked up in pg_temp).
RETENTION_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_retention() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT make_interval(days => {days}) $$
"""


def set_database_retention(*, days: int, using: str = "default") -> None:
    """Set how old an audit row must be before the database lets pruning remove it.

    Only the function's owner (the role that ran ``migrate``) can replace it.
    """
    if not isinstance(days, int) or days < 1:
        raise ValueError(f"retention must be a whole number of days, at least 1, not {days!r}")
    with connections[using].cursor() as cursor:
        cursor.execute(RETENTION_FUNCTION.format(days=int(days)))


def database_retention_days(*, using: str = "default") -> int | None:
    """The retention the database enforces, in days; None before migration 0007."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regprocedure('audit_retention()') IS NOT NULL")
        (exists,) = cursor.fetchone()
        if not exists:
            return None
        cursor.execute("SELECT extract(day FROM audit_retention())::int")
        return cursor.fetchone()[0]


def connected_role_owns_audit_table(*, using: str = "default") -> bool:
    """True when this connection's role owns ``audit_event`` (and so could disable its
    triggers): the app should not be served under such a role."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
            "WHERE oid = to_regclass('audit_event')"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def grant_app_role(*, role: str, using: str = "default") -> None:
    """Give the app role the data privileges on every table, and nothing more.

    Runs after every ``migrate``, so tables added later are covered too. REVOKE first:
    a role that was once the owner's equal (or was granted ALL) keeps no TRUNCATE,
    TRIGGER or REFERENCES.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    # One transaction: a running app never sees the moment between REVOKE and GRANT.
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (schema,) = cursor.fetchone()
        schema, role_name = quote(schema), quote(role)
        for statement in (
            f"GRANT USAGE ON SCHEMA {schema} TO {role_name}",
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role_name}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role_name}",
            f"REVOKE INSERT, UPDATE, DELETE ON {quote('django_migrations')} FROM {role_name}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role_name}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role_name}",
        ):
            cursor.execute(statement)


def _is_postgresql(connection: BaseDatabaseWrapper) -> bool:
    return connection.vendor == "postgresql"


def sync_after_migrate(*, using: str = "default", **kwargs) -> None:  # noqa: ANN003
    """``post_migrate``: copy AUDIT_RETENTION_DAYS into the database and grant the app role.

    Also runs after a test run's flush, which is what puts the retention back for the
    next test.
    """
    if not _is_postgresql(connections[using]):
        return
    set_database_retention(days=settings.AUDIT_RETENTION_DAYS, using=using)
    if settings.DATABASE_APP_ROLE:
        grant_app_role(role=settings.DATABASE_APP_ROLE, using=using)
