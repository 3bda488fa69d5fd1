"""Guard both ends of the audit chain in the database (issue 18, point 3).

Before this, any transaction that set ``supportgroups.pruning = 'on'`` (any role may set a
custom setting) could delete any row, the newest included, and TRUNCATE (which fires no
row trigger) emptied the table. Now:

- DELETE, even with the pruning flag, removes only rows older than the retention the
  database holds (``audit_retention()``, replaced only by the owner; see audit/database.py),
  and only from the oldest end: after each DELETE statement no row older than a removed
  one may remain, some row must remain, and an "audit log pruned" event must name the
  first remaining row and the hash it chains from, as ``audit_log_prune`` records it.
- TRUNCATE is refused for every role but the table's owner (the owner can disable any
  trigger anyway; the app must not run as it). The app role also has no TRUNCATE grant.
- The trigger functions pin their search_path, with pg_temp last, so no temporary table
  a session creates can stand in for ``audit_event`` in their checks.

A database superuser can still switch all of this off; the hash chain, the stored
checkpoint and an outside anchor (``verify_audit_log --expect-head``) catch what it does.
"""

from django.conf import settings
from django.db import migrations


# As audit.database.RETENTION_FUNCTION (copied: a migration must not change later).
RETENTION_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_retention() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT make_interval(days => {days}) $$
"""

# 9002 is Action.AUDIT_LOG_PRUNED; its extra names the first kept row and its prev_hash.
CREATE = """
CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, {schema}, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('supportgroups.rotating_keys', true) = 'on'
       AND (to_jsonb(NEW) - 'ip') = (to_jsonb(OLD) - 'ip') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' AND current_setting('supportgroups.pruning', true) = 'on' THEN
        IF OLD.created_at < now() - audit_retention() THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_event is append-only: row % is younger than the retention '
            'period (%), so it cannot be pruned', OLD.seq, audit_retention()
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE OR REPLACE FUNCTION audit_event_check_pruning() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, {schema}, pg_temp AS $$
DECLARE
    last_removed bigint;
    first_kept bigint;
    first_kept_prev text;
BEGIN
    SELECT max(seq) INTO last_removed FROM removed;
    IF last_removed IS NULL THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM audit_event WHERE seq < last_removed) THEN
        RAISE EXCEPTION 'audit_event is append-only: pruning removes only the oldest rows, '
            'but rows before row % remain', last_removed
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT seq, prev_hash INTO first_kept, first_kept_prev
        FROM audit_event ORDER BY seq LIMIT 1;
    IF first_kept IS NULL THEN
        RAISE EXCEPTION 'audit_event is append-only: pruning may not remove every row'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM audit_event
        WHERE action = 9002
          AND extra ->> 'first_seq' = first_kept::text
          AND extra ->> 'anchor_hash' = first_kept_prev
    ) THEN
        RAISE EXCEPTION 'audit_event is append-only: a pruning must record an "audit log '
            'pruned" event naming row % as the first row kept', first_kept
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION audit_event_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, {schema}, pg_temp AS $$
BEGIN
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID),
                   'USAGE') THEN
        RETURN NULL;  -- the owner (a test run's flush, an operator); it could drop us anyway
    END IF;
    RAISE EXCEPTION 'audit_event is append-only: TRUNCATE refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_event_prune_from_head
    AFTER DELETE ON audit_event
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_check_pruning();

CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_truncate();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event;
DROP TRIGGER IF EXISTS audit_event_prune_from_head ON audit_event;
DROP FUNCTION IF EXISTS audit_event_refuse_truncate();
DROP FUNCTION IF EXISTS audit_event_check_pruning();
DROP FUNCTION IF EXISTS audit_retention();
"""

# As migration 0004 left it.
PREVIOUS = """
CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('supportgroups.rotating_keys', true) = 'on'
       AND (to_jsonb(NEW) - 'ip') = (to_jsonb(OLD) - 'ip') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' AND current_setting('supportgroups.pruning', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (schema,) = cursor.fetchone()
    # post_migrate sets it again after every migrate; here so the triggers work at once.
    schema_editor.execute(
        RETENTION_FUNCTION.format(days=int(settings.AUDIT_RETENTION_DAYS)), params=None
    )
    schema_editor.execute(CREATE.format(schema=connection.ops.quote_name(schema)), params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)
        schema_editor.execute(PREVIOUS, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_login_throttled_action")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
