"""After 0011 sealed a dossier's open-or-closed and closing day, their clear values must not stay readable in
the table file. The sealing UPDATE left every old row version (clear values) behind as a dead tuple, and
RemoveField is PostgreSQL's DROP COLUMN, which rewrites no row: each live row still held the dropped clear
values in its tuple. VACUUM FULL writes the table anew, dropped columns nulled (as scores 0005 does).
PostgreSQL only, and it cannot run in a transaction, hence a non-atomic migration. On SQLite run ``VACUUM``
by hand once after upgrading an embedded installation that already held dossiers."""

from django.db import migrations


def vacuum_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("VACUUM FULL casefiles_dossier")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("casefiles", "0012_access_log_spot_check"),
    ]

    operations = [
        migrations.RunPython(
            vacuum_full, migrations.RunPython.noop, hints={"model_name": "dossier"}, elidable=False
        )
    ]
