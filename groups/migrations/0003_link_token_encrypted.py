"""Unlisted groups' private links: encrypted, and found by a blind index (issue 18)."""

from django.db import migrations, models

import supportgroups.crypto


def encrypt_tokens(apps, schema_editor):
    # Raw SQL: the historical model already reads the column as encrypted.
    from supportgroups.crypto import blind_index, encrypt_str

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, link_token FROM groups_group")
        for pk, token in cursor.fetchall():
            cursor.execute(
                "UPDATE groups_group SET link_token = %s, link_token_index = %s WHERE id = %s",
                [encrypt_str(token), blind_index(token, purpose="group-link"), pk],
            )


def decrypt_tokens(apps, schema_editor):
    from supportgroups.crypto import decrypt_str

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, link_token FROM groups_group")
        for pk, token in cursor.fetchall():
            cursor.execute(
                "UPDATE groups_group SET link_token = %s WHERE id = %s",
                [decrypt_str(token, where="groups.Group.link_token"), pk],
            )


class Migration(migrations.Migration):
    dependencies = [
        ("groups", "0002_agreement_pointers"),
    ]

    operations = [
        migrations.AddField(
            model_name="group",
            name="link_token_index",
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="group",
            name="link_token",
            field=supportgroups.crypto.EncryptedTextField(),
        ),
        migrations.RunPython(encrypt_tokens, decrypt_tokens),
        migrations.AlterField(
            model_name="group",
            name="link_token_index",
            field=models.CharField(max_length=64, unique=True),
        ),
    ]
