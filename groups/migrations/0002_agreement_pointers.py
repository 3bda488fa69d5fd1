import django.db.models.deletion
from django.db import migrations, models


def fill_pointers(apps, schema_editor):
    """Each group's latest version, and each membership's latest signed version."""
    Group = apps.get_model("groups", "Group")
    AgreementVersion = apps.get_model("groups", "AgreementVersion")
    Membership = apps.get_model("groups", "Membership")
    Signature = apps.get_model("groups", "Signature")
    latest = models.Subquery(
        AgreementVersion.objects.filter(group=models.OuterRef("pk"))
        .order_by("-version")
        .values("pk")[:1]
    )
    Group.objects.update(current_agreement=latest)
    signed = models.Subquery(
        Signature.objects.filter(membership=models.OuterRef("pk"))
        .order_by("-agreement__version")
        .values("agreement")[:1]
    )
    Membership.objects.update(signed_agreement=signed)


class Migration(migrations.Migration):
    dependencies = [
        ("groups", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="group",
            name="current_agreement",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="groups.agreementversion",
            ),
        ),
        migrations.AddField(
            model_name="membership",
            name="signed_agreement",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="groups.agreementversion",
            ),
        ),
        migrations.RunPython(fill_pointers, migrations.RunPython.noop),
    ]
