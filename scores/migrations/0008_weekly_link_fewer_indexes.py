# A weekly round writes 100,000 links at once, through every index of the table: the participant's own index
# (weekly_link_once_per_week starts with the participant and serves its lookups) and the token hash's second
# index (for LIKE, which nothing asks) go. The unique constraint comes first, so the hash is unique at every
# step.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0020_consents_name_nobody"),
        ("scores", "0007_score_department_sealed"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="weeklylink",
            constraint=models.UniqueConstraint(fields=("token_hash",), name="weekly_link_token_hash_unique"),
        ),
        migrations.AlterField(
            model_name="weeklylink",
            name="token_hash",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name="weeklylink",
            name="participant",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="participants.participant",
            ),
        ),
    ]
