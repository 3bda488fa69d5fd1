"""Pinned announcements are encrypted at rest like every other text members read (issue 18)."""

from django.db import migrations

import supportgroups.crypto


def encrypt_texts(apps, schema_editor):
    # Raw SQL: the historical model already reads the column as encrypted.
    from supportgroups.crypto import encrypt_str

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, text FROM moderation_announcement")
        for pk, text in cursor.fetchall():
            cursor.execute(
                "UPDATE moderation_announcement SET text = %s WHERE id = %s",
                [encrypt_str(text), pk],
            )


def decrypt_texts(apps, schema_editor):
    from supportgroups.crypto import decrypt_str

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, text FROM moderation_announcement")
        for pk, text in cursor.fetchall():
            cursor.execute(
                "UPDATE moderation_announcement SET text = %s WHERE id = %s",
                [decrypt_str(text, where="moderation.Announcement.text")[:500], pk],
            )


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0002_contact_reveals"),
    ]

    operations = [
        migrations.AlterField(
            model_name="announcement",
            name="text",
            field=supportgroups.crypto.EncryptedTextField(),
        ),
        migrations.RunPython(encrypt_texts, decrypt_texts),
    ]
