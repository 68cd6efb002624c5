"""A feedback's organisation is sealed to its row, as its rating is (0006), and the release decides in Python.

In clear, a waiting row named its organisation, so when a mix of pending feedback held one sign-off of an
organisation an operator paired that row with the organisation's one ``signed_off`` ledger entry since the
last mix, and learned that this trajectory was rated. Rows already there, released or waiting, are sealed in
place; 0009 then writes the table anew, so the clear values do not stay in its file.
"""

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields


def seal_organisations(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    Feedback = apps.get_model("notary", "Feedback")
    table = Feedback._meta.db_table
    for pk, organisation_id in list(Feedback.objects.using(alias).values_list("pk", "organisation_id")):
        # Bound to the column's final name: the field is renamed to it below (as 0006 does for the rating).
        binding = crypto.Binding("field", table, "organisation", str(pk))
        sealed = Sealed(crypto.seal(str(organisation_id), binding))
        Feedback.objects.using(alias).filter(pk=pk).update(sealed_organisation=sealed)


def unseal_organisations(apps, schema_editor):
    from preventicons import crypto

    alias = schema_editor.connection.alias
    Feedback = apps.get_model("notary", "Feedback")
    table = Feedback._meta.db_table
    for pk, sealed in list(Feedback.objects.using(alias).values_list("pk", "sealed_organisation")):
        opened = crypto.open_sealed(str(sealed), crypto.Binding("field", table, "organisation", str(pk)))
        Feedback.objects.using(alias).filter(pk=pk).update(organisation_id=int(opened))


class Migration(migrations.Migration):
    dependencies = [
        ("notary", "0007_vacuum_full_feedback"),
    ]

    operations = [
        migrations.AddField(
            model_name="feedback",
            name="sealed_organisation",
            field=preventicons.fields.SealedIntegerField(
                null=True, purpose="field", verbose_name="organisation id"
            ),
        ),
        migrations.AlterField(
            model_name="feedback",
            name="organisation_id",
            field=models.PositiveBigIntegerField(null=True, verbose_name="organisation id"),
        ),
        migrations.RunPython(seal_organisations, unseal_organisations, hints={"model_name": "feedback"}),
        migrations.RemoveField(model_name="feedback", name="organisation_id"),
        migrations.RenameField(model_name="feedback", old_name="sealed_organisation", new_name="organisation"),
        migrations.AlterField(
            model_name="feedback",
            name="organisation",
            field=preventicons.fields.SealedIntegerField(purpose="field", verbose_name="organisation id"),
        ),
        migrations.AddConstraint(
            model_name="feedback",
            constraint=models.CheckConstraint(
                condition=models.Q(("organisation__isnull", True))
                | django.db.models.lookups.StartsWith(models.F("organisation"), "v1."),
                name="notary_feedback_organisation_sealed",
                violation_error_message="organisation holds ciphertext only",
            ),
        ),
    ]
