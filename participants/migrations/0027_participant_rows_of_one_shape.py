"""Every participant row has the same shape whatever its person did (issue #14).

A dump told from NULLs who never enrolled (no pseudonym, participation, weekly channel), who chose a private
address (its column set, ``weekly_channel`` in clear), and who stopped or was anonymised (contact data,
blind indexes, listed hashes and department NULL). From here every sealed column holds a ciphertext in every
row, "none" sealed as empty text padded to the column's one length (preventicons.fields.EncryptedTextField
``none_sealed`` and ``pad_to``), every keyed hash column 64 hex characters (a random look-alike where there
is no hash: preventicons.fields.ContactHashField), and the weekly channel is sealed (into a new column; the
clear one is dropped, as 0019 did for the status). This fills every existing row so; 0028 then rewrites the
table file, which nulls the dropped clear channel in every row version it keeps and leaves out the old
versions no transaction can still see. The department of rows erased before this cannot be told again and stays
NULL: a stop and the anonymisation no longer touch it.
"""

import secrets
import uuid

import django.db.models.lookups
from django.db import migrations, models

import preventicons.fields

TABLE = "participants_participant"
# (column, purpose, pad_to) as participants.models.Participant declares them, written out here so a later
# change there cannot change this migration.
SEALED = (
    ("name", "field", 64),
    ("email", "field", 64),
    ("mobile", "field", 64),
    ("private_email", "field", 64),
    ("pseudonym", "pseudonym_link", 0),
    ("participation", "field", 64),
)
HASHES = ("email_index", "mobile_index", "listed_email_hash", "listed_mobile_hash")
CHUNK = 2_000


def fill_every_row(apps, schema_editor):
    from preventicons import crypto

    connection = schema_editor.connection
    names = [column for column, _purpose, _pad in SEALED]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, weekly_channel, {', '.join(names)}, {', '.join(HASHES)} FROM {TABLE}"  # noqa: S608  # nosec B608  # fixed names
        )
        rows = cursor.fetchall()
    for start in range(0, len(rows), CHUNK):
        with connection.cursor() as cursor:
            for raw_id, channel, *values in rows[start : start + CHUNK]:
                row = str(uuid.UUID(str(raw_id)))
                sealed, hashes = values[: len(SEALED)], values[len(SEALED) :]
                new: dict[str, str] = {
                    # The clear channel sealed into a column of its own (bound to the name it takes below),
                    # none as empty text: the clear one is dropped, and 0028's rewrite nulls it in every
                    # row version the table file keeps.
                    "sealed_channel": crypto.seal(
                        channel or "", crypto.Binding("field", TABLE, "weekly_channel", row)
                    )
                }
                for (column, purpose, pad_to), value in zip(SEALED, sealed, strict=True):
                    binding = crypto.Binding(purpose, TABLE, column, row)
                    if value is None:
                        new[column] = crypto.seal("", binding, pad_to=pad_to)
                    elif crypto.sealed_length(value) < crypto.padded_length(pad_to):
                        new[column] = crypto.seal(crypto.open_sealed(value, binding), binding, pad_to=pad_to)
                for column, value in zip(HASHES, hashes, strict=True):
                    if value is None:
                        new[column] = secrets.token_hex(32)
                assignments = ", ".join(f"{column} = %s" for column in new)
                cursor.execute(
                    f"UPDATE {TABLE} SET {assignments} WHERE id = %s",  # noqa: S608  # nosec B608  # fixed names
                    [*new.values(), raw_id],
                )
    if connection.vendor == "postgresql":
        # Deferred foreign-key checks would otherwise block the ALTER TABLE that follows.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0026_vacuum_full_consents_again"),
    ]

    operations = [
        migrations.AlterField(
            model_name="participant",
            name="email",
            field=preventicons.fields.EncryptedTextField(
                none_sealed=True, null=True, pad_to=64, purpose="field"
            ),
        ),
        migrations.AlterField(
            model_name="participant",
            name="email_index",
            field=preventicons.fields.ContactHashField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="participant",
            name="listed_email_hash",
            field=preventicons.fields.ContactHashField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="participant",
            name="listed_mobile_hash",
            field=preventicons.fields.ContactHashField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="participant",
            name="mobile",
            field=preventicons.fields.EncryptedTextField(none_sealed=True, null=True, pad_to=64, purpose="field"),
        ),
        migrations.AlterField(
            model_name="participant",
            name="mobile_index",
            field=preventicons.fields.ContactHashField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="participant",
            name="name",
            field=preventicons.fields.EncryptedTextField(
                none_sealed=True, null=True, pad_to=64, purpose="field"
            ),
        ),
        migrations.AlterField(
            model_name="participant",
            name="participation",
            field=preventicons.fields.EncryptedTextField(
                none_sealed=True, null=True, pad_to=64, purpose="field"
            ),
        ),
        migrations.AlterField(
            model_name="participant",
            name="private_email",
            field=preventicons.fields.EncryptedTextField(
                none_sealed=True, null=True, pad_to=64, purpose="field"
            ),
        ),
        migrations.AlterField(
            model_name="participant",
            name="pseudonym",
            field=preventicons.fields.EncryptedTextField(
                none_sealed=True, null=True, purpose="pseudonym_link"
            ),
        ),
        migrations.AddField(
            model_name="participant",
            name="sealed_channel",
            field=preventicons.fields.SealedChoiceField(none_sealed=True, null=True, purpose="field"),
        ),
        migrations.RunPython(fill_every_row, migrations.RunPython.noop, elidable=False),
        migrations.RemoveField(model_name="participant", name="weekly_channel"),
        migrations.RenameField(model_name="participant", old_name="sealed_channel", new_name="weekly_channel"),
        migrations.AlterField(
            model_name="participant",
            name="weekly_channel",
            field=preventicons.fields.SealedChoiceField(
                choices=[
                    ("sms", "text message"),
                    ("private_email", "private e-mail address"),
                    ("work_email", "work e-mail address"),
                ],
                none_sealed=True,
                null=True,
                purpose="field",
            ),
        ),
        migrations.AddConstraint(
            model_name="participant",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("weekly_channel__isnull", True),
                    django.db.models.lookups.StartsWith(models.F("weekly_channel"), "v1."),
                    _connector="OR",
                ),
                name="participants_participant_weekly_channel_sealed",
                violation_error_message="weekly_channel holds ciphertext only",
            ),
        ),
    ]
