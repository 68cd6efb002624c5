"""A feedback's rating is sealed, a waiting feedback carries its person's keyed hash sealed, and the feedback
of a recorded sign-off waits sealed in PendingFeedback until enough are pending to be written mixed.

In clear, the rating was readable in a dump and, written in the transaction of its sign-off's ledger entry,
paired with that trajectory's reference. Rows already there are sealed in place; rows from before carry no
person (notary.feedback counts them as one person together, the safe side).
"""

import uuid

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields


def seal_ratings(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    Feedback = apps.get_model("notary", "Feedback")
    table = Feedback._meta.db_table
    for pk, rating in list(Feedback.objects.using(alias).values_list("pk", "rating")):
        sealed = Sealed(crypto.seal(str(rating), crypto.Binding("field", table, "rating", str(pk))))
        Feedback.objects.using(alias).filter(pk=pk).update(sealed_rating=sealed)


def sealed_only(model, name):
    return models.CheckConstraint(
        condition=models.Q((f"{name}__isnull", True))
        | django.db.models.lookups.StartsWith(models.F(name), "v1."),
        name=f"notary_{model}_{name}_sealed",
        violation_error_message=f"{name} holds ciphertext only",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("notary", "0005_append_only"),
    ]

    operations = [
        migrations.CreateModel(
            name="PendingFeedback",
            fields=[
                (
                    "id",
                    models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False),
                ),
                ("sealed", preventicons.fields.EncryptedTextField(purpose="field")),
            ],
            options={
                "verbose_name": "pending feedback",
                "verbose_name_plural": "pending feedback",
                "constraints": [sealed_only("pendingfeedback", "sealed")],
            },
        ),
        migrations.RemoveConstraint(model_name="feedback", name="rating_on_scale"),
        migrations.AddField(
            model_name="feedback",
            name="sealed_rating",
            field=preventicons.fields.SealedIntegerField(null=True, purpose="field", verbose_name="rating"),
        ),
        migrations.RunPython(seal_ratings, migrations.RunPython.noop, hints={"model_name": "feedback"}),
        migrations.RemoveField(model_name="feedback", name="rating"),
        migrations.RenameField(model_name="feedback", old_name="sealed_rating", new_name="rating"),
        migrations.AlterField(
            model_name="feedback",
            name="rating",
            field=preventicons.fields.SealedIntegerField(purpose="field", verbose_name="rating"),
        ),
        migrations.AddField(
            model_name="feedback",
            name="person",
            field=preventicons.fields.EncryptedTextField(blank=True, null=True, purpose="field"),
        ),
        migrations.AddConstraint(model_name="feedback", constraint=sealed_only("feedback", "rating")),
        migrations.AddConstraint(model_name="feedback", constraint=sealed_only("feedback", "person")),
    ]
