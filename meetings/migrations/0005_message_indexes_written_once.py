"""Every index of the messages table is written once per message sent, so none is kept
twice (meetings/models.py Message): the meeting's and the author's foreign-key indexes
repeated the first column of the unique (meeting, seq) and (author, created_at) indexes,
and the device's (a plain and a LIKE index: its key is text) and the hider's held a row
for every message without one; those two become partial indexes.

Only Django's view of the four fields changes: its own AlterField of ``db_index`` drops
and adds back each foreign-key constraint, checking every message under a lock of the
whole table, and a meeting would stop for as long. Here, on PostgreSQL, the new indexes
are built and the old ones dropped CONCURRENTLY (outside a transaction: atomic = False),
so chat goes on while it runs."""

import django.db.models.deletion
from django.db import migrations, models

REPEATED = ("meeting_id", "author_id", "sender_device_id", "hidden_by_id")
PARTIAL = (
    models.Index(
        condition=models.Q(("sender_device__isnull", False)),
        fields=["sender_device"],
        name="message_sender_device",
    ),
    models.Index(
        condition=models.Q(("hidden_by__isnull", False)),
        fields=["hidden_by"],
        name="message_hidden_by",
    ),
)


def repeated_indexes(schema_editor, table: str) -> list[str]:
    """The single-column indexes of the four foreign keys that Django made for them."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    partial = {index.name for index in PARTIAL}
    return [
        name
        for name, found in constraints.items()
        if found["index"]
        and not found["unique"]
        and not found["primary_key"]
        and len(found["columns"]) == 1
        and found["columns"][0] in REPEATED
        and name not in partial
    ]


def write_each_index_once(apps, schema_editor):
    message = apps.get_model("meetings", "Message")
    concurrently = schema_editor.connection.vendor == "postgresql"
    for index in PARTIAL:
        if concurrently:
            schema_editor.add_index(message, index, concurrently=True)
        else:
            schema_editor.add_index(message, index)
    for name in repeated_indexes(schema_editor, message._meta.db_table):
        how = "CONCURRENTLY " if concurrently else ""
        schema_editor.execute(f"DROP INDEX {how}IF EXISTS {schema_editor.quote_name(name)}")


def index_each_foreign_key(apps, schema_editor):
    message = apps.get_model("meetings", "Message")
    table = message._meta.db_table
    for index in PARTIAL:
        schema_editor.remove_index(message, index)
    for column in REPEATED:
        name = schema_editor._create_index_name(table, [column])
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(name)}"
            f" ON {schema_editor.quote_name(table)} ({schema_editor.quote_name(column)})"
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("groups", "0005_e2ee_meetings"),
        ("meetings", "0004_e2ee"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(write_each_index_once, index_each_foreign_key),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="author",
                    field=models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="messages",
                        to="groups.membership",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="hidden_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="groups.membership",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="meeting",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="meetings.meeting",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="sender_device",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="meetings.device",
                    ),
                ),
                *(migrations.AddIndex(model_name="message", index=index) for index in PARTIAL),
            ],
        ),
    ]
