"""Scores and frozen figures sealed, per-week pseudonyms, and no department on closed weeks' scores.

Existing rows are rewritten: each score's pseudonym P becomes its per-week pseudonym (a keyed hash of P and
the week; a stripped score without P gets a random one, which links to nobody), its value is sealed bound
to (per-week pseudonym, week), closed weeks' scores lose their department, and every row gets a new random
id, inserted in random order. Each frozen aggregate's figures become one sealed value bound to its grouping.
The next migration vacuums the table, so the old row versions do not stay readable.
"""

import json
import secrets
import uuid

import django.db.models.lookups
from django.db import migrations, models

import scores.sealing

# As scores.sealing and scores.models.Figures, written out here so a later change of that code cannot
# change what this migration did.
PSEUDONYM_PURPOSE = "blind_index"
PSEUDONYM_LABEL = "score-week-pseudonym"
FIGURES_WIDTH = 128


def seal_scores_and_figures(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    Score = apps.get_model("scores", "Score")
    ClosedWeek = apps.get_model("scores", "ClosedWeek")
    WeeklyAggregate = apps.get_model("scores", "WeeklyAggregate")
    closed = set(ClosedWeek.objects.using(alias).values_list("organisation_id", "week"))
    groups = Score.objects.using(alias).values_list("organisation_id", "week").distinct().order_by()
    random = secrets.SystemRandom()
    for organisation_id, week in list(groups):
        rows = list(
            Score.objects.using(alias)
            .filter(organisation_id=organisation_id, week=week)
            .values_list("value", "department_id", "pseudonym")
        )
        renewed = []
        for value, department_id, pseudonym in rows:
            if pseudonym:
                per_week = crypto.keyed_hash(PSEUDONYM_PURPOSE, PSEUDONYM_LABEL, f"{pseudonym}:{week.isoformat()}")
            else:
                per_week = secrets.token_hex(32)
            binding = crypto.Binding("field", Score._meta.db_table, "value", f"{per_week}/{week.isoformat()}")
            renewed.append(
                Score(
                    id=uuid.uuid4(),
                    week=week,
                    organisation_id=organisation_id,
                    department_id=None if (organisation_id, week) in closed else department_id,
                    pseudonym=per_week,
                    value=Sealed(crypto.seal(str(int(value)), binding)),
                )
            )
        random.shuffle(renewed)
        Score.objects.using(alias).filter(organisation_id=organisation_id, week=week).delete()
        Score.objects.using(alias).bulk_create(renewed, batch_size=5000)
    for row in WeeklyAggregate.objects.using(alias).all():
        counts = [row.count_1, row.count_2, row.count_3, row.count_4, row.count_5]
        text = json.dumps(
            {"n": row.count, "sum": row.total, "counts": counts}, separators=(",", ":"), sort_keys=True
        ).ljust(FIGURES_WIDTH)
        department = "-" if row.department_id is None else str(row.department_id)
        binding = crypto.Binding(
            "field", WeeklyAggregate._meta.db_table, "figures", f"{row.organisation_id}/{department}/{row.week}"
        )
        WeeklyAggregate.objects.using(alias).filter(pk=row.pk).update(
            figures=Sealed(crypto.seal(text, binding))
        )
    if schema_editor.connection.vendor == "postgresql":
        # The foreign keys' deferred checks would otherwise block the ALTER TABLEs that follow.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("scores", "0003_week_close"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="score", name="score_value_1_to_5"),
        migrations.RemoveConstraint(model_name="weeklyaggregate", name="aggregate_distribution_adds_up"),
        migrations.AlterField(
            model_name="score",
            name="value",
            field=scores.sealing.SealedScoreValueField(bound_to=("pseudonym", "week")),
        ),
        migrations.AlterField(
            model_name="score",
            name="pseudonym",
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="weeklyaggregate",
            name="figures",
            field=scores.sealing.NaturalKeySealedField(
                bound_to=("organisation_id", "department_id", "week"), null=True
            ),
        ),
        migrations.RunPython(seal_scores_and_figures, elidable=False),
        migrations.AlterField(
            model_name="score",
            name="pseudonym",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name="weeklyaggregate",
            name="figures",
            field=scores.sealing.NaturalKeySealedField(bound_to=("organisation_id", "department_id", "week")),
        ),
        migrations.RemoveField(model_name="weeklyaggregate", name="count"),
        migrations.RemoveField(model_name="weeklyaggregate", name="count_1"),
        migrations.RemoveField(model_name="weeklyaggregate", name="count_2"),
        migrations.RemoveField(model_name="weeklyaggregate", name="count_3"),
        migrations.RemoveField(model_name="weeklyaggregate", name="count_4"),
        migrations.RemoveField(model_name="weeklyaggregate", name="count_5"),
        migrations.RemoveField(model_name="weeklyaggregate", name="total"),
        migrations.AddConstraint(
            model_name="score",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("value__isnull", True),
                    django.db.models.lookups.StartsWith(models.F("value"), "v1."),
                    _connector="OR",
                ),
                name="scores_score_value_sealed",
                violation_error_message="value holds ciphertext only",
            ),
        ),
        migrations.AddConstraint(
            model_name="weeklyaggregate",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("figures__isnull", True),
                    django.db.models.lookups.StartsWith(models.F("figures"), "v1."),
                    _connector="OR",
                ),
                name="scores_weeklyaggregate_figures_sealed",
                violation_error_message="figures holds ciphertext only",
            ),
        ),
    ]
