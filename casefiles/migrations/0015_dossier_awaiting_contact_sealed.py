"""The day a dossier began waiting for its first contact is sealed to the row, as its closing day is (0011).

In clear, only a note (ADD_NOTE in the access log), a casemanager's close (its CLOSE entry) or a stop set it
NULL: a dossier with it NULL and no entry of its number in the access log was closed by a stop before any
contact, in one later dump of the casefiles store. The value moves into a sealed column bound to the row
(under the field keyring); a dossier not waiting is sealed as empty text, never NULL, so every row's column
pads to the same length whatever it holds. Waiting or not is decided in Python from here on. 0016 rewrites
the table, so neither the old row versions nor the dropped column keep the clear days.
"""

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields


def seal_days(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    Dossier = apps.get_model("casefiles", "Dossier")
    table = Dossier._meta.db_table

    rows = Dossier.objects.using(alias).values_list("pk", "awaiting_contact_since")
    for pk, day in list(rows):
        text = "" if day is None else day.isoformat()
        Dossier.objects.using(alias).filter(pk=pk).update(
            sealed_awaiting_contact_since=Sealed(
                crypto.seal(text, crypto.Binding("field", table, "awaiting_contact_since", str(pk)))
            )
        )


def unseal_days(apps, schema_editor):
    import datetime as dt

    from preventicons import crypto

    alias = schema_editor.connection.alias
    Dossier = apps.get_model("casefiles", "Dossier")
    table = Dossier._meta.db_table

    rows = Dossier.objects.using(alias).values_list("pk", "sealed_awaiting_contact_since")
    for pk, sealed in list(rows):
        binding = crypto.Binding("field", table, "awaiting_contact_since", str(pk))
        text = crypto.open_sealed(str(sealed), binding) if sealed is not None else ""
        Dossier.objects.using(alias).filter(pk=pk).update(
            awaiting_contact_since=dt.date.fromisoformat(text) if text else None
        )


class Migration(migrations.Migration):
    dependencies = [
        ("casefiles", "0014_queued_note"),
    ]

    operations = [
        migrations.AddField(
            model_name="dossier",
            name="sealed_awaiting_contact_since",
            field=preventicons.fields.SealedDayOrNoneField(null=True, purpose="field"),
        ),
        migrations.RunPython(seal_days, unseal_days, hints={"model_name": "dossier"}),
        migrations.RemoveField(model_name="dossier", name="awaiting_contact_since"),
        migrations.RenameField(
            model_name="dossier",
            old_name="sealed_awaiting_contact_since",
            new_name="awaiting_contact_since",
        ),
        migrations.AlterField(
            model_name="dossier",
            name="awaiting_contact_since",
            field=preventicons.fields.SealedDayOrNoneField(blank=True, purpose="field"),
        ),
        migrations.AddConstraint(
            model_name="dossier",
            constraint=models.CheckConstraint(
                condition=models.Q(("awaiting_contact_since__isnull", True))
                | django.db.models.lookups.StartsWith(models.F("awaiting_contact_since"), "v1."),
                name="casefiles_dossier_awaiting_contact_since_sealed",
                violation_error_message="awaiting_contact_since holds ciphertext only",
            ),
        ),
    ]
