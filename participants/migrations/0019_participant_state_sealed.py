"""A participant's status and pause are sealed (issue #14, F9).

In clear, ``status`` and ``messages_paused`` told a dump, for a department of one, whether its person declined,
paused, fell silent or stopped. Both move into sealed columns bound to the row (under the field keyring, as
the contact data); the application opens them and decides in Python. Every value pads to the same length.
"""

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields

# As preventicons.fields.SealedBooleanField, written out here so a later change there cannot change this.
TRUE, FALSE = "1", "0"


def seal_state(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    Participant = apps.get_model("participants", "Participant")
    table = Participant._meta.db_table
    rows = Participant.objects.using(alias).values_list("pk", "status", "messages_paused")
    for pk, status, paused in list(rows):
        Participant.objects.using(alias).filter(pk=pk).update(
            sealed_status=Sealed(crypto.seal(status, crypto.Binding("field", table, "status", str(pk)))),
            sealed_paused=Sealed(
                crypto.seal(TRUE if paused else FALSE, crypto.Binding("field", table, "messages_paused", str(pk)))
            ),
        )
    if schema_editor.connection.vendor == "postgresql":
        # Deferred foreign-key checks would otherwise block the ALTER TABLEs that follow.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0018_codes_and_account_links_name_nobody"),
    ]

    operations = [
        migrations.AddField(
            model_name="participant",
            name="sealed_status",
            field=preventicons.fields.SealedChoiceField(null=True, purpose="field"),
        ),
        migrations.AddField(
            model_name="participant",
            name="sealed_paused",
            field=preventicons.fields.SealedBooleanField(null=True, purpose="field"),
        ),
        migrations.RunPython(seal_state, migrations.RunPython.noop),
        migrations.RemoveField(model_name="participant", name="status"),
        migrations.RemoveField(model_name="participant", name="messages_paused"),
        migrations.RenameField(model_name="participant", old_name="sealed_status", new_name="status"),
        migrations.RenameField(model_name="participant", old_name="sealed_paused", new_name="messages_paused"),
        migrations.AlterField(
            model_name="participant",
            name="messages_paused",
            field=preventicons.fields.SealedBooleanField(purpose="field"),
        ),
        migrations.AlterField(
            model_name="participant",
            name="status",
            field=preventicons.fields.SealedChoiceField(
                choices=[
                    ("invited", "invited"),
                    ("active", "active"),
                    ("declined", "declined"),
                    ("stopped", "stopped"),
                    ("inactive", "inactive"),
                ],
                purpose="field",
                verbose_name="status",
            ),
        ),
        migrations.AddConstraint(
            model_name="participant",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__isnull", True))
                | django.db.models.lookups.StartsWith(models.F("status"), "v1."),
                name="participants_participant_status_sealed",
                violation_error_message="status holds ciphertext only",
            ),
        ),
        migrations.AddConstraint(
            model_name="participant",
            constraint=models.CheckConstraint(
                condition=models.Q(("messages_paused__isnull", True))
                | django.db.models.lookups.StartsWith(models.F("messages_paused"), "v1."),
                name="participants_participant_messages_paused_sealed",
                violation_error_message="messages_paused holds ciphertext only",
            ),
        ),
    ]
