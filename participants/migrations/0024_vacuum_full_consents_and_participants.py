"""After 0019 sealed a participant's status and 0020 a consent record's participant and kind, their clear
values must not stay readable in the table files. Each sealing UPDATE left the old row versions behind as
dead tuples, and RemoveField is PostgreSQL's DROP COLUMN, which rewrites no row: every live row still held
the dropped clear values, a consent record (never written again) its participant id and kind for good.
VACUUM FULL writes each table anew, dropped columns nulled (as scores 0005 does; the participants' fillfactor
of 0021 is kept). PostgreSQL only, and it cannot run in a transaction, hence a non-atomic migration. On
SQLite run ``VACUUM`` by hand once after upgrading an embedded installation that already held participants."""

from django.db import migrations


def vacuum_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Again until the rewrite keeps no dead row version a running transaction could see.
    from preventicons.vacuum import vacuum_full as rewrite_table

    rewrite_table(schema_editor.connection, "participants_consentrecord")
    rewrite_table(schema_editor.connection, "participants_participant")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("participants", "0023_organisation_sbi_code"),
    ]

    operations = [migrations.RunPython(vacuum_full, migrations.RunPython.noop, elidable=False)]
