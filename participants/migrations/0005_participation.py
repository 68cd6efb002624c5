from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0004_round_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="participant",
            name="last_response_week",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="participant",
            name="weeks_without_response",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name="participant",
            name="status",
            field=models.CharField(
                choices=[
                    ("invited", "invited"),
                    ("active", "active"),
                    ("declined", "declined"),
                    ("stopped", "stopped"),
                    ("inactive", "inactive"),
                ],
                default="invited",
                max_length=16,
            ),
        ),
    ]
