"""A score's department is sealed while its week is open (issue #14, F9).

In clear, the department of an open week's score row told a dump whether the one person of a small
department had answered. The department moves into a sealed column bound like the value (per-week pseudonym
and week); rows of closed weeks have none already and keep none. Every open row gets one, "-" for no
department, so NULL against a ciphertext tells nothing.
"""

import django.db.models.lookups
from django.db import migrations, models

import scores.sealing

# As scores.sealing.NO_DEPARTMENT, written out here so a later change of that code cannot change this.
NO_DEPARTMENT = "-"


def seal_departments(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    Score = apps.get_model("scores", "Score")
    ClosedWeek = apps.get_model("scores", "ClosedWeek")
    closed = set(ClosedWeek.objects.using(alias).values_list("organisation_id", "week"))
    table = Score._meta.db_table
    rows = Score.objects.using(alias).values_list("pk", "organisation_id", "week", "pseudonym", "department_id")
    for pk, organisation_id, week, pseudonym, department_id in list(rows):
        if (organisation_id, week) in closed:
            continue
        text = NO_DEPARTMENT if department_id is None else str(department_id)
        binding = crypto.Binding("field", table, "department", f"{pseudonym}/{week.isoformat()}")
        Score.objects.using(alias).filter(pk=pk).update(sealed_department=Sealed(crypto.seal(text, binding)))
    if schema_editor.connection.vendor == "postgresql":
        # Deferred foreign-key checks would otherwise block the ALTER TABLEs that follow.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("scores", "0006_dutch_verbose_names"),
    ]

    operations = [
        migrations.AddField(
            model_name="score",
            name="sealed_department",
            field=scores.sealing.NaturalKeySealedField(bound_to=("pseudonym", "week"), null=True, purpose="field"),
        ),
        migrations.RunPython(seal_departments, migrations.RunPython.noop),
        migrations.RemoveField(model_name="score", name="department"),
        migrations.RenameField(model_name="score", old_name="sealed_department", new_name="department"),
        migrations.AddConstraint(
            model_name="score",
            constraint=models.CheckConstraint(
                condition=models.Q(("department__isnull", True))
                | django.db.models.lookups.StartsWith(models.F("department"), "v1."),
                name="scores_score_department_sealed",
                violation_error_message="department holds ciphertext only",
            ),
        ),
    ]
