"""Invitation.used_at sat in clear beside participant_id, also in clear: one dump named every participant row
that enrolled, to the microsecond, until the link was purged (review 5, tests/test_attacks_review5.py).
Enrolment no longer marks the link (the participant's sealed status refuses a second enrolment), so the
column goes. DROP COLUMN rewrites nothing, so VACUUM FULL then writes the table anew, the dropped column
nulled in every row version it keeps (as 0024 and 0028 do). The VACUUM is PostgreSQL only and cannot run in a
transaction, hence a non-atomic migration. On SQLite run ``VACUUM`` by hand once after upgrading."""

from django.db import migrations


def vacuum_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Again until the rewrite keeps no dead row version a running transaction could see.
    from preventicons.vacuum import vacuum_full as rewrite_table

    rewrite_table(schema_editor.connection, "participants_invitation")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("participants", "0028_vacuum_full_participants_of_one_shape"),
    ]

    operations = [
        migrations.RemoveField(model_name="invitation", name="used_at"),
        migrations.RunPython(vacuum_full, migrations.RunPython.noop, elidable=False),
    ]
