"""Each consent record names its participant by an index of its own, and its text version only sealed.

Since 0020 all of one person's records shared one keyed index, so a dump still counted, per index, how many
records a person had and on which days: anyone with more than one had done more than enrol (paused, asked
for help, stopped), and the records of a help request showed by their text version ("2026-12-contact").
Now record n of a participant is indexed by a keyed hash of the participant id and n
(participants.models.ConsentRecord.index_for), no two rows share an index (unique), and the text version is
sealed to its row like the kind. Records whose participant row is gone cannot be found by anyone; they get
a random index, so they no longer gather either. Needs the key set at migrate time, as 0020 does. The old
indexes and clear versions stay in the table file until 0026 rewrites it.
"""

import secrets

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields

# As participants.models, written out so a later change there cannot change this migration.
KINDS = ["given", "contact", "withdrawn", "paused", "resumed"]


def _old_index(crypto, pk):
    return crypto.keyed_hash("blind_index", "consent-participant", str(pk))


def _new_index(crypto, pk, n):
    return crypto.keyed_hash("blind_index", "consent-record", f"{pk}:{n}")


def index_each_and_seal(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    ConsentRecord = apps.get_model("participants", "ConsentRecord")
    Participant = apps.get_model("participants", "Participant")
    table = ConsentRecord._meta.db_table
    owner = {
        _old_index(crypto, pk): pk
        for pk in Participant.objects.using(alias).values_list("pk", flat=True).iterator(chunk_size=2000)
    }
    by_index = {}
    for record in ConsentRecord.objects.using(alias).all():
        by_index.setdefault(record.participant_index, []).append(record)
    for index, records in by_index.items():
        # Numbered in the order the application reads them: day, then the order consents take, then id.
        records.sort(key=lambda r: (r.recorded_at, KINDS.index(r.kind) if r.kind in KINDS else 99, str(r.pk)))
        pk = owner.get(index)
        for n, record in enumerate(records):
            ConsentRecord.objects.using(alias).filter(pk=record.pk).update(
                participant_index=_new_index(crypto, pk, n) if pk is not None else secrets.token_hex(32),
                sealed_text_version=Sealed(
                    crypto.seal(record.text_version, crypto.Binding("field", table, "text_version", str(record.pk)))
                ),
            )
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def gather_and_open(apps, schema_editor):
    """Back to one index per participant and a clear version (records without a participant stay apart)."""
    from preventicons import crypto

    alias = schema_editor.connection.alias
    ConsentRecord = apps.get_model("participants", "ConsentRecord")
    Participant = apps.get_model("participants", "Participant")
    table = ConsentRecord._meta.db_table
    stored = set(ConsentRecord.objects.using(alias).values_list("participant_index", flat=True))
    wanted = {}
    for pk in Participant.objects.using(alias).values_list("pk", flat=True).iterator(chunk_size=2000):
        n = 0
        while (index := _new_index(crypto, pk, n)) in stored:
            wanted[index] = _old_index(crypto, pk)
            n += 1
    for pk, index, sealed in ConsentRecord.objects.using(alias).values_list(
        "pk", "participant_index", "sealed_text_version"
    ):
        ConsentRecord.objects.using(alias).filter(pk=pk).update(
            participant_index=wanted.get(index, index),
            text_version=crypto.open_sealed(str(sealed), crypto.Binding("field", table, "text_version", str(pk))),
        )
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0024_vacuum_full_consents_and_participants"),
    ]

    operations = [
        migrations.AddField(
            model_name="consentrecord",
            name="sealed_text_version",
            field=preventicons.fields.EncryptedTextField(null=True, purpose="field"),
        ),
        # Nullable until dropped, so that the reverse can add it back to a table that holds rows.
        migrations.AlterField(
            model_name="consentrecord",
            name="text_version",
            field=models.CharField(max_length=32, null=True),
        ),
        # Unique only at the end: the reverse gathers a person's records under one index again.
        migrations.AlterField(
            model_name="consentrecord",
            name="participant_index",
            field=models.CharField(max_length=64),
        ),
        migrations.RunPython(index_each_and_seal, gather_and_open),
        migrations.RemoveField(model_name="consentrecord", name="text_version"),
        migrations.RenameField(model_name="consentrecord", old_name="sealed_text_version", new_name="text_version"),
        migrations.AlterField(
            model_name="consentrecord",
            name="text_version",
            field=preventicons.fields.EncryptedTextField(purpose="field"),
        ),
        migrations.AddConstraint(
            model_name="consentrecord",
            constraint=models.CheckConstraint(
                condition=models.Q(("text_version__isnull", True))
                | django.db.models.lookups.StartsWith(models.F("text_version"), "v1."),
                name="participants_consentrecord_text_version_sealed",
                violation_error_message="text_version holds ciphertext only",
            ),
        ),
        migrations.AlterField(
            model_name="consentrecord",
            name="participant_index",
            field=models.CharField(max_length=64, unique=True),
        ),
    ]
