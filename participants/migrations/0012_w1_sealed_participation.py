"""Participation leaves its readable columns: one sealed, fixed-width JSON value per participant.

last_response_week and weeks_without_response in clear told a dump who answered which week. Existing values
move into ``participation`` (sealed under the field keyring, bound to the row), then the columns go.
"""

import json

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields

# As participants.participation.PARTICIPATION_WIDTH and ParticipationState.sealed_text, written out here so
# a later change of that code cannot change what this migration did.
WIDTH = 48


def seal_participation(apps, schema_editor):
    from preventicons import crypto
    from preventicons.fields import Sealed

    Participant = apps.get_model("participants", "Participant")
    table = Participant._meta.db_table
    rows = Participant.objects.using(schema_editor.connection.alias).filter(
        status__in=["active", "inactive"]
    ).values_list("pk", "last_response_week", "weeks_without_response")
    for pk, last, missed in rows.iterator(chunk_size=2000):
        text = json.dumps(
            {"last": last.isoformat() if last else None, "missed": missed}, separators=(",", ":")
        ).ljust(WIDTH)
        sealed = crypto.seal(text, crypto.Binding("field", table, "participation", str(pk)))
        Participant.objects.using(schema_editor.connection.alias).filter(pk=pk).update(
            participation=Sealed(sealed)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0011_verification_purposes_account_and_open_link"),
    ]

    operations = [
        migrations.AddField(
            model_name="participant",
            name="participation",
            field=preventicons.fields.EncryptedTextField(null=True),
        ),
        migrations.RunPython(seal_participation, migrations.RunPython.noop, elidable=False),
        migrations.RemoveField(model_name="participant", name="last_response_week"),
        migrations.RemoveField(model_name="participant", name="weeks_without_response"),
        migrations.AddConstraint(
            model_name="participant",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("participation__isnull", True),
                    django.db.models.lookups.StartsWith(models.F("participation"), "v1."),
                    _connector="OR",
                ),
                name="participants_participant_participation_sealed",
                violation_error_message="participation holds ciphertext only",
            ),
        ),
    ]
