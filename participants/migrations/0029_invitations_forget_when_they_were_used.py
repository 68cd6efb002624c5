"""Invitation.used_at sat in clear beside participant_id, also in clear: one dump named every participant row
that enrolled, to the microsecond, until the link was purged (review 5, tests/test_attacks_review5.py).
Enrolment no longer writes it; this clears what is stored, and VACUUM FULL writes the table anew so the old
row versions (the values, in dead tuples) leave its file, as 0024 and 0028 do. The VACUUM is PostgreSQL only
and cannot run in a transaction, hence a non-atomic migration. On SQLite run ``VACUUM`` by hand once."""

from django.db import migrations


def forget_used_at(apps, schema_editor):
    Invitation = apps.get_model("participants", "Invitation")
    Invitation.objects.using(schema_editor.connection.alias).exclude(used_at=None).update(used_at=None)
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("VACUUM FULL participants_invitation")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("participants", "0028_vacuum_full_participants_of_one_shape"),
    ]

    operations = [migrations.RunPython(forget_used_at, migrations.RunPython.noop, elidable=False)]
