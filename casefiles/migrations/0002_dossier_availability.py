from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("casefiles", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="dossier",
            name="is_available",
            field=models.BooleanField(default=True),
        ),
    ]
