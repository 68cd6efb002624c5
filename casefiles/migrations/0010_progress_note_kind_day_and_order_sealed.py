"""A progress note's kind, day and place in the order are sealed, as its text was already.

In clear beside the note's subject, they were a trace per subject (the day, the kind, the count on that day)
that the access log leaves of each dossier number too: matching the two paired a subject with its dossier
number without the notes key. The values move into sealed columns bound to the row (under the field
keyring, as the text); every value pads to the same length. The order's uniqueness per subject, a
constraint while the column was in clear, is kept by casefiles.notes.add_note from here on.
"""

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields


def seal_notes(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    ProgressNote = apps.get_model("casefiles", "ProgressNote")
    table = ProgressNote._meta.db_table

    def sealed(value, column, pk):
        return Sealed(crypto.seal(value, crypto.Binding("field", table, column, str(pk))))

    rows = ProgressNote.objects.using(alias).values_list("pk", "kind", "written_on", "sequence")
    for pk, kind, written_on, sequence in list(rows):
        ProgressNote.objects.using(alias).filter(pk=pk).update(
            sealed_kind=sealed(kind, "kind", pk),
            sealed_written_on=sealed(written_on.isoformat(), "written_on", pk),
            sealed_sequence=sealed(str(sequence), "sequence", pk),
        )


def sealed_only(name):
    return models.CheckConstraint(
        condition=models.Q((f"{name}__isnull", True))
        | django.db.models.lookups.StartsWith(models.F(name), "v1."),
        name=f"casefiles_progressnote_{name}_sealed",
        violation_error_message=f"{name} holds ciphertext only",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("casefiles", "0009_availability_read_live"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="progressnote", name="progress_note_sequence_per_subject"),
        migrations.AddField(
            model_name="progressnote",
            name="sealed_kind",
            field=preventicons.fields.SealedChoiceField(null=True, purpose="field"),
        ),
        migrations.AddField(
            model_name="progressnote",
            name="sealed_written_on",
            field=preventicons.fields.SealedDateField(null=True, purpose="field"),
        ),
        migrations.AddField(
            model_name="progressnote",
            name="sealed_sequence",
            field=preventicons.fields.SealedIntegerField(null=True, purpose="field"),
        ),
        migrations.RunPython(seal_notes, migrations.RunPython.noop, hints={"model_name": "progressnote"}),
        migrations.RemoveField(model_name="progressnote", name="kind"),
        migrations.RemoveField(model_name="progressnote", name="written_on"),
        migrations.RemoveField(model_name="progressnote", name="sequence"),
        migrations.RenameField(model_name="progressnote", old_name="sealed_kind", new_name="kind"),
        migrations.RenameField(
            model_name="progressnote", old_name="sealed_written_on", new_name="written_on"
        ),
        migrations.RenameField(model_name="progressnote", old_name="sealed_sequence", new_name="sequence"),
        migrations.AlterField(
            model_name="progressnote",
            name="kind",
            field=preventicons.fields.SealedChoiceField(
                choices=[
                    ("intake", "intake"),
                    ("session", "session"),
                    ("evaluation", "evaluation"),
                    ("closing", "closing"),
                ],
                purpose="field",
            ),
        ),
        migrations.AlterField(
            model_name="progressnote",
            name="written_on",
            field=preventicons.fields.SealedDateField(purpose="field"),
        ),
        migrations.AlterField(
            model_name="progressnote",
            name="sequence",
            field=preventicons.fields.SealedIntegerField(purpose="field"),
        ),
        migrations.AddConstraint(model_name="progressnote", constraint=sealed_only("kind")),
        migrations.AddConstraint(model_name="progressnote", constraint=sealed_only("written_on")),
        migrations.AddConstraint(model_name="progressnote", constraint=sealed_only("sequence")),
    ]
