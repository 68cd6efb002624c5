"""After 0010 sealed a note's kind, day and place and 0011 a dossier's open-or-closed and closing day, their
clear values must not stay readable in the table files. Each sealing UPDATE left the old row versions (clear
values) behind as dead tuples, and RemoveField is PostgreSQL's DROP COLUMN, which rewrites no row: every
live row still held the dropped clear values in its tuple, a note (never written again) for good. VACUUM
FULL writes each table anew, dropped columns nulled (as scores 0005 does). PostgreSQL only, and it cannot
run in a transaction, hence a non-atomic migration. On SQLite run ``VACUUM`` by hand once after upgrading
an embedded installation that already held notes or dossiers."""

from django.db import migrations


def vacuum_full(table):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        # Again until the rewrite keeps no dead row version a running transaction could see.
        from preventicons.vacuum import vacuum_full as rewrite_table

        rewrite_table(schema_editor.connection, table)

    return run


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("casefiles", "0012_access_log_spot_check"),
    ]

    operations = [
        # Each where its table lives: the dossiers in the casefiles store, the notes in the notes store.
        migrations.RunPython(
            vacuum_full("casefiles_dossier"),
            migrations.RunPython.noop,
            hints={"model_name": "dossier"},
            elidable=False,
        ),
        migrations.RunPython(
            vacuum_full("casefiles_progressnote"),
            migrations.RunPython.noop,
            hints={"model_name": "progressnote"},
            elidable=False,
        ),
    ]
