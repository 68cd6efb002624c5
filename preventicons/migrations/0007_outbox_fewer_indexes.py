# A weekly round writes 100,000 pending rows at once, through every index of the table: the key hash's second
# index (for LIKE, which nothing asks) goes, and the tombstones' period index leaves pending rows out. The
# unique constraint comes first, so the key is unique at every step.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("preventicons", "0006_dutch_verbose_names"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="outboundmessage",
            constraint=models.UniqueConstraint(fields=("key_hash",), name="outbox_key_once"),
        ),
        migrations.AlterField(
            model_name="outboundmessage",
            name="key_hash",
            field=models.CharField(max_length=64),
        ),
        migrations.RemoveIndex(
            model_name="outboundmessage",
            name="outbox_finished_period",
        ),
        migrations.AddIndex(
            model_name="outboundmessage",
            index=models.Index(
                condition=models.Q(("status", "finished")),
                fields=["finished_period"],
                name="outbox_finished_period",
            ),
        ),
    ]
