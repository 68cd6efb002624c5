"""The day's delivery counts move into one sealed row per day (DeliveryTally).

In clear, one row per day, channel and outcome, each rewritten by the sender run that ended such a message:
a run that ended a single weekly message told its outcome by which row it rewrote, and the message's last
pending version names its weekly link, whose row names the participant ("sent": someone who takes part,
"cancelled": a stand-in). The counts so far are summed into each day's sealed row, and the old table is
dropped (DROP TABLE removes its file, dead row versions and all).
"""

import uuid

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields

CELLS = tuple((channel, outcome) for channel in ("email", "sms") for outcome in ("sent", "failed", "cancelled"))


def _text(counts):
    return ",".join(f"{counts.get(cell, 0):010d}" for cell in CELLS)


def seal_counts(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    DeliveryCount = apps.get_model("preventicons", "DeliveryCount")
    DeliveryTally = apps.get_model("preventicons", "DeliveryTally")
    table = DeliveryTally._meta.db_table
    days = {}
    for day, channel, outcome, count in DeliveryCount.objects.using(alias).values_list(
        "day", "channel", "outcome", "count"
    ):
        days.setdefault(day, {})[(channel, outcome)] = count
    for day, counts in sorted(days.items()):
        pk = uuid.uuid4()
        sealed = crypto.seal(_text(counts), crypto.Binding("field", table, "counts", str(pk)))
        DeliveryTally.objects.using(alias).create(id=pk, day=day, counts=Sealed(sealed))


def unseal_counts(apps, schema_editor):
    from preventicons import crypto

    alias = schema_editor.connection.alias
    DeliveryCount = apps.get_model("preventicons", "DeliveryCount")
    DeliveryTally = apps.get_model("preventicons", "DeliveryTally")
    table = DeliveryTally._meta.db_table
    for pk, day, sealed in DeliveryTally.objects.using(alias).values_list("pk", "day", "counts"):
        text = crypto.open_sealed(str(sealed), crypto.Binding("field", table, "counts", str(pk)))
        for (channel, outcome), number in zip(CELLS, text.split(","), strict=True):
            if int(number):
                DeliveryCount.objects.using(alias).create(day=day, channel=channel, outcome=outcome, count=int(number))


class Migration(migrations.Migration):
    dependencies = [
        ("preventicons", "0008_log_anchor"),
    ]

    operations = [
        migrations.CreateModel(
            name="DeliveryTally",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("day", models.DateField(unique=True)),
                ("counts", preventicons.fields.EncryptedTextField(purpose="field")),
            ],
            options={
                "verbose_name": "delivery tally",
                "verbose_name_plural": "delivery tallies",
            },
        ),
        migrations.AddConstraint(
            model_name="deliverytally",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("counts__isnull", True),
                    django.db.models.lookups.StartsWith(models.F("counts"), "v1."),
                    _connector="OR",
                ),
                name="preventicons_deliverytally_counts_sealed",
                violation_error_message="counts holds ciphertext only",
            ),
        ),
        migrations.RunPython(seal_counts, unseal_counts, hints={"model_name": "deliverytally"}),
        migrations.DeleteModel(
            name="DeliveryCount",
        ),
    ]
