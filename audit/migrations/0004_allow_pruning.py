"""Let ``prune_audit_log`` (and only a transaction that says it is pruning) delete old rows.

Pruning is the one sanctioned removal: it deletes rows older than the retention period
from the head of the chain and records itself as a new event that names where the chain
now starts, so ``verify_audit_log`` still verifies every remaining row.
"""

from django.db import migrations

CREATE = """
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

PREVIOUS = """
CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('supportgroups.rotating_keys', true) = 'on'
       AND (to_jsonb(NEW) - 'ip') = (to_jsonb(OLD) - 'ip') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_console_indexes_and_checkpoints")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
