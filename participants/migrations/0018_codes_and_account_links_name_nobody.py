"""Verification codes and account links name their participant only sealed (issue #14, F7).

Both are often written right after a tap, and a participant id in clear paired them with the score by
``xmin``. The participant id moves into a sealed column bound to the row; codes also get an hourly keyed hash
to be found by (participants.references); an account link's ``used_at`` (a moment) becomes ``used``.

Codes live 10 minutes and links 30: the rows waiting now are deleted rather than converted, so whoever is in
the middle of entering a code or opening a link asks for a new one.
"""

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields


def delete_codes_and_links(apps, schema_editor):
    alias = schema_editor.connection.alias
    apps.get_model("participants", "VerificationCode").objects.using(alias).all().delete()
    apps.get_model("participants", "AccountLink").objects.using(alias).all().delete()
    if schema_editor.connection.vendor == "postgresql":
        # Deferred foreign-key checks would otherwise block the ALTER TABLEs that follow.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0017_code_failures_dated_by_guess"),
    ]

    operations = [
        migrations.RunPython(delete_codes_and_links, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="verificationcode", name="code_participant_created"),
        migrations.RemoveField(model_name="accountlink", name="participant"),
        migrations.RemoveField(model_name="accountlink", name="used_at"),
        migrations.RemoveField(model_name="verificationcode", name="participant"),
        # Added nullable and then made required: the tables are empty here, and a default would be plaintext.
        migrations.AddField(
            model_name="accountlink",
            name="participant_ref",
            field=preventicons.fields.EncryptedTextField(null=True, purpose="field"),
        ),
        migrations.AlterField(
            model_name="accountlink",
            name="participant_ref",
            field=preventicons.fields.EncryptedTextField(purpose="field"),
        ),
        migrations.AddField(
            model_name="accountlink",
            name="used",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="verificationcode",
            name="participant_index",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        # Added nullable and then made required: the tables are empty here, and a default would be plaintext.
        migrations.AddField(
            model_name="verificationcode",
            name="participant_ref",
            field=preventicons.fields.EncryptedTextField(null=True, purpose="field"),
        ),
        migrations.AlterField(
            model_name="verificationcode",
            name="participant_ref",
            field=preventicons.fields.EncryptedTextField(purpose="field"),
        ),
        migrations.AddIndex(
            model_name="verificationcode",
            index=models.Index(fields=["participant_index", "created_at"], name="code_participant_hour"),
        ),
        migrations.AddConstraint(
            model_name="accountlink",
            constraint=models.CheckConstraint(
                condition=models.Q(("participant_ref__isnull", True))
                | django.db.models.lookups.StartsWith(models.F("participant_ref"), "v1."),
                name="participants_accountlink_participant_ref_sealed",
                violation_error_message="participant_ref holds ciphertext only",
            ),
        ),
        migrations.AddConstraint(
            model_name="verificationcode",
            constraint=models.CheckConstraint(
                condition=models.Q(("participant_ref__isnull", True))
                | django.db.models.lookups.StartsWith(models.F("participant_ref"), "v1."),
                name="participants_verificationcode_participant_ref_sealed",
                violation_error_message="participant_ref holds ciphertext only",
            ),
        ),
    ]
