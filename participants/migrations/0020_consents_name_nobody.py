"""Consent records name their participant only by a keyed index, and their kind only sealed (issue #14).

In clear, ``participant_id`` and ``kind`` told a dump who paused, resumed, withdrew or consented to be
contacted (a help request). The participant id becomes a keyed, purpose-bound hash of it (the application
gathers one person's records for their account and export; nobody without the key can compute it from a
participant row), and the kind is sealed to its row like the participant's status. Needs the key set at
migrate time, as 0015 does.
"""

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields


def index_and_seal(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    ConsentRecord = apps.get_model("participants", "ConsentRecord")
    table = ConsentRecord._meta.db_table
    rows = ConsentRecord.objects.using(alias).values_list("pk", "participant_id", "kind")
    for pk, participant_id, kind in list(rows):
        ConsentRecord.objects.using(alias).filter(pk=pk).update(
            # As participants.models.ConsentRecord.index_for, written out so a later change there cannot
            # change this.
            participant_index=crypto.keyed_hash("blind_index", "consent-participant", str(participant_id)),
            sealed_kind=Sealed(crypto.seal(kind, crypto.Binding("field", table, "kind", str(pk)))),
        )
    if schema_editor.connection.vendor == "postgresql":
        # Deferred foreign-key checks would otherwise block the ALTER TABLEs that follow.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0019_participant_state_sealed"),
    ]

    operations = [
        migrations.AddField(
            model_name="consentrecord",
            name="participant_index",
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="consentrecord",
            name="sealed_kind",
            field=preventicons.fields.SealedChoiceField(null=True, purpose="field"),
        ),
        migrations.RunPython(index_and_seal, migrations.RunPython.noop),
        migrations.RemoveField(model_name="consentrecord", name="participant"),
        migrations.RemoveField(model_name="consentrecord", name="kind"),
        migrations.RenameField(model_name="consentrecord", old_name="sealed_kind", new_name="kind"),
        migrations.AlterField(
            model_name="consentrecord",
            name="participant_index",
            field=models.CharField(db_index=True, max_length=64),
        ),
        migrations.AlterField(
            model_name="consentrecord",
            name="kind",
            field=preventicons.fields.SealedChoiceField(
                choices=[
                    ("given", "given"),
                    ("contact", "consent to be contacted"),
                    ("withdrawn", "withdrawn"),
                    ("paused", "messages paused"),
                    ("resumed", "messages resumed"),
                ],
                purpose="field",
                verbose_name="kind",
            ),
        ),
        migrations.AddConstraint(
            model_name="consentrecord",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__isnull", True))
                | django.db.models.lookups.StartsWith(models.F("kind"), "v1."),
                name="participants_consentrecord_kind_sealed",
                violation_error_message="kind holds ciphertext only",
            ),
        ),
    ]
