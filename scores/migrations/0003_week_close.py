import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0001_initial"),
        ("scores", "0002_rounds"),
    ]

    operations = [
        migrations.CreateModel(
            name="ClosedWeek",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("week", models.DateField(help_text="The Monday of the ISO week that was closed.")),
                (
                    "organisation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="participants.organisation",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("organisation", "week"), name="closed_week_once_per_organisation"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="WeeklyAggregate",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("week", models.DateField(help_text="The Monday of the ISO week.")),
                ("count", models.PositiveIntegerField()),
                ("total", models.PositiveIntegerField(help_text="The sum of the values.")),
                ("count_1", models.PositiveIntegerField(default=0)),
                ("count_2", models.PositiveIntegerField(default=0)),
                ("count_3", models.PositiveIntegerField(default=0)),
                ("count_4", models.PositiveIntegerField(default=0)),
                ("count_5", models.PositiveIntegerField(default=0)),
                (
                    "department",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="participants.department",
                    ),
                ),
                (
                    "organisation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="participants.organisation",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("department__isnull", False)),
                        fields=("organisation", "department", "week"),
                        name="aggregate_once_per_department_week",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("department__isnull", True)),
                        fields=("organisation", "week"),
                        name="aggregate_once_per_organisation_week",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "count",
                                models.F("count_1")
                                + models.F("count_2")
                                + models.F("count_3")
                                + models.F("count_4")
                                + models.F("count_5"),
                            )
                        ),
                        name="aggregate_distribution_adds_up",
                    ),
                ],
            },
        ),
    ]
