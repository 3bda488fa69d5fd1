import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("groups", "0005_e2ee_meetings"),
        ("meetings", "0004_e2ee"),
    ]

    operations = [
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
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("sender_device__isnull", False)),
                fields=["sender_device"],
                name="message_sender_device",
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("hidden_by__isnull", False)),
                fields=["hidden_by"],
                name="message_hidden_by",
            ),
        ),
    ]
