"""In PostgreSQL the audit table refuses UPDATE and DELETE, even from the app's own role.

One narrow exception: ``rotate_encryption_keys`` may re-encrypt the ``ip`` column inside a
transaction that sets ``supportgroups.rotating_keys``; every other column must stay
identical. The hash covers the decrypted IP, so re-encryption keeps the chain valid.
A database superuser can still disable the trigger; the hash chain is what catches that.
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
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event;
DROP FUNCTION IF EXISTS audit_event_refuse_change();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
