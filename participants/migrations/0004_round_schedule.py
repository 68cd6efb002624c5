from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0003_account_link"),
    ]

    operations = [
        migrations.AddField(
            model_name="organisation",
            name="round_weekday",
            field=models.PositiveSmallIntegerField(default=0, verbose_name="weekday of the weekly round"),
        ),
        migrations.AddField(
            model_name="organisation",
            name="round_hour",
            field=models.PositiveSmallIntegerField(default=8, verbose_name="hour of the weekly round"),
        ),
        migrations.AddConstraint(
            model_name="organisation",
            constraint=models.CheckConstraint(
                condition=models.Q(("round_hour__lte", 23), ("round_weekday__lte", 6)),
                name="organisation_round_moment_valid",
            ),
        ),
    ]
