"""Whether a dossier is open, and the day it closed, are sealed to the row, as a participant's status is.

In clear, "closed today" beside the access log (where only a casemanager's close has a CLOSE entry, a stop
being nobody's act on the staff) told which of the day's closes were stops, and the identity dump of that day
named the stopper who had asked for help. The values move into sealed columns bound to the row (under the
field keyring); an open dossier's closing day is sealed as empty text, never NULL, so every row's two
columns pad to the same length whatever they hold. Open or closed is decided in Python from here on
(casefiles.models.DossierQuerySet.states).
"""

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields


def seal_dossiers(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    Dossier = apps.get_model("casefiles", "Dossier")
    table = Dossier._meta.db_table

    def sealed(value, column, pk):
        return Sealed(crypto.seal(value, crypto.Binding("field", table, column, str(pk))))

    rows = Dossier.objects.using(alias).values_list("pk", "is_open", "closed_on")
    for pk, is_open, closed_on in list(rows):
        Dossier.objects.using(alias).filter(pk=pk).update(
            sealed_is_open=sealed("1" if is_open else "0", "is_open", pk),
            sealed_closed_on=sealed("" if closed_on is None else closed_on.isoformat(), "closed_on", pk),
        )


def unseal_dossiers(apps, schema_editor):
    import datetime as dt

    from preventicons import crypto

    alias = schema_editor.connection.alias
    Dossier = apps.get_model("casefiles", "Dossier")
    table = Dossier._meta.db_table

    def opened(value, column, pk):
        return crypto.open_sealed(str(value), crypto.Binding("field", table, column, str(pk)))

    rows = Dossier.objects.using(alias).values_list("pk", "sealed_is_open", "sealed_closed_on")
    for pk, is_open, closed_on in list(rows):
        day = opened(closed_on, "closed_on", pk) if closed_on is not None else ""
        Dossier.objects.using(alias).filter(pk=pk).update(
            is_open=is_open is None or opened(is_open, "is_open", pk) == "1",
            closed_on=dt.date.fromisoformat(day) if day else None,
        )


def sealed_only(name):
    return models.CheckConstraint(
        condition=models.Q((f"{name}__isnull", True))
        | django.db.models.lookups.StartsWith(models.F(name), "v1."),
        name=f"casefiles_dossier_{name}_sealed",
        violation_error_message=f"{name} holds ciphertext only",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("casefiles", "0010_progress_note_kind_day_and_order_sealed"),
    ]

    operations = [
        migrations.AddField(
            model_name="dossier",
            name="sealed_is_open",
            field=preventicons.fields.SealedBooleanField(null=True, purpose="field"),
        ),
        migrations.AddField(
            model_name="dossier",
            name="sealed_closed_on",
            field=preventicons.fields.SealedDayOrNoneField(null=True, purpose="field"),
        ),
        migrations.RunPython(seal_dossiers, unseal_dossiers, hints={"model_name": "dossier"}),
        migrations.RemoveField(model_name="dossier", name="is_open"),
        migrations.RemoveField(model_name="dossier", name="closed_on"),
        migrations.RenameField(model_name="dossier", old_name="sealed_is_open", new_name="is_open"),
        migrations.RenameField(model_name="dossier", old_name="sealed_closed_on", new_name="closed_on"),
        migrations.AlterField(
            model_name="dossier",
            name="is_open",
            field=preventicons.fields.SealedBooleanField(purpose="field"),
        ),
        migrations.AlterField(
            model_name="dossier",
            name="closed_on",
            field=preventicons.fields.SealedDayOrNoneField(blank=True, purpose="field"),
        ),
        migrations.AddConstraint(model_name="dossier", constraint=sealed_only("is_open")),
        migrations.AddConstraint(model_name="dossier", constraint=sealed_only("closed_on")),
    ]
