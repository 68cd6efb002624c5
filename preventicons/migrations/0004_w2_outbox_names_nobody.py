"""The outbox names nobody: keys become keyed hashes, finished rows become tombstones, outcomes are counted.

Existing rows: each readable key is replaced by its keyed hash (the same computation as
preventicons.messaging.outbox_key_hash, spelled out here so the migration does not follow later code);
pending rows get the cancel tag of their key's subject; finished rows (sent, failed, cancelled) lose
everything but the hashed key and the retention period they ended in. Provider ids, Message-IDs and
timestamps are dropped with their columns.
"""

import datetime as dt

from django.conf import settings
from django.db import migrations, models


def hash_keys(apps, schema_editor):
    OutboundMessage = apps.get_model("preventicons", "OutboundMessage")
    rows = OutboundMessage.objects.using(schema_editor.connection.alias)
    if not rows.exists():
        return  # a fresh database needs no keys to migrate
    from preventicons.crypto import keyed_hash

    days = max(settings.MESSAGE_RETENTION_DAYS, 1)
    for message in rows.iterator():
        changes = {"key_hash": keyed_hash("blind_index", "outbox-key", message.key)}
        if message.status == "pending":
            parts = message.key.split(":")
            if len(parts) > 1 and parts[1]:
                changes["cancel_tag"] = keyed_hash("blind_index", "outbox-subject", parts[1])
        else:
            ended = (message.sent_at or message.created_at).astimezone(dt.UTC).date()
            changes.update(
                status="finished",
                finished_period=(ended - dt.date(1970, 1, 1)).days // days,
                channel="",
                cancel_tag="",
                recipient=None,
                subject=None,
                body=None,
                renderer="",
                reference="",
                attempts=0,
                next_attempt_at=None,
                last_error="",
            )
        rows.filter(pk=message.pk).update(**changes)


class Migration(migrations.Migration):
    dependencies = [
        ("preventicons", "0003_sealed_columns_hold_ciphertext_only"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="outboundmessage", name="outbox_known_channel_and_status"),
        migrations.RemoveConstraint(model_name="outboundmessage", name="outbox_pending_has_due_time"),
        migrations.RemoveConstraint(model_name="outboundmessage", name="outbox_finished_holds_no_content"),
        migrations.RemoveConstraint(model_name="outboundmessage", name="outbox_sent_has_sent_at"),
        migrations.RemoveIndex(model_name="outboundmessage", name="outbox_created"),
        migrations.AddField(
            model_name="outboundmessage",
            name="key_hash",
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="outboundmessage",
            name="cancel_tag",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="outboundmessage",
            name="finished_period",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="outboundmessage",
            name="channel",
            field=models.CharField(
                blank=True, choices=[("email", "e-mail"), ("sms", "SMS")], default="", max_length=8
            ),
        ),
        migrations.AlterField(
            model_name="outboundmessage",
            name="status",
            field=models.CharField(
                choices=[("pending", "pending"), ("finished", "finished")], default="pending", max_length=12
            ),
        ),
        migrations.RunPython(hash_keys, migrations.RunPython.noop),
        migrations.RemoveField(model_name="outboundmessage", name="key"),
        migrations.RemoveField(model_name="outboundmessage", name="created_at"),
        migrations.RemoveField(model_name="outboundmessage", name="sent_at"),
        migrations.RemoveField(model_name="outboundmessage", name="provider_id"),
        migrations.AlterField(
            model_name="outboundmessage",
            name="key_hash",
            field=models.CharField(max_length=64, unique=True),
        ),
        migrations.AddIndex(
            model_name="outboundmessage",
            index=models.Index(
                condition=models.Q(("status", "pending")), fields=["cancel_tag"], name="outbox_pending_tag"
            ),
        ),
        migrations.AddIndex(
            model_name="outboundmessage",
            index=models.Index(fields=["finished_period"], name="outbox_finished_period"),
        ),
        migrations.AddConstraint(
            model_name="outboundmessage",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "pending"), ("channel__in", ["email", "sms"])),
                    models.Q(("status", "finished"), ("channel", "")),
                    _connector="OR",
                ),
                name="outbox_known_channel_and_status",
            ),
        ),
        migrations.AddConstraint(
            model_name="outboundmessage",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "pending"), _negated=True),
                    models.Q(("finished_period__isnull", True), ("next_attempt_at__isnull", False)),
                    _connector="OR",
                ),
                name="outbox_pending_has_due_time",
            ),
        ),
        migrations.AddConstraint(
            model_name="outboundmessage",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("status", "pending"),
                    models.Q(
                        ("attempts", 0),
                        ("body__isnull", True),
                        ("cancel_tag", ""),
                        ("finished_period__isnull", False),
                        ("last_error", ""),
                        ("next_attempt_at__isnull", True),
                        ("recipient__isnull", True),
                        ("reference", ""),
                        ("renderer", ""),
                        ("subject__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="outbox_finished_is_a_tombstone",
            ),
        ),
        migrations.CreateModel(
            name="DeliveryCount",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("day", models.DateField()),
                ("channel", models.CharField(choices=[("email", "e-mail"), ("sms", "SMS")], max_length=8)),
                (
                    "outcome",
                    models.CharField(
                        choices=[("sent", "sent"), ("failed", "failed"), ("cancelled", "cancelled")],
                        max_length=12,
                    ),
                ),
                ("count", models.PositiveIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("day", "channel", "outcome"), name="delivery_count_per_day"),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("channel__in", ["email", "sms"]), ("outcome__in", ["sent", "failed", "cancelled"])
                        ),
                        name="delivery_count_known_values",
                    ),
                ],
            },
        ),
    ]
