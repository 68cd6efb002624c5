"""After 0027 sealed the weekly channel and filled every participant row, the old row versions (the channel
in clear, the NULLs that told who enrolled and who stopped) must not stay readable in the table file: each
UPDATE left them behind as dead tuples. VACUUM FULL writes the table anew (the fillfactor of 0021 is kept), as
0024 does. PostgreSQL only, and it cannot run in a transaction, hence a non-atomic migration. On SQLite run
``VACUUM`` by hand once after upgrading an embedded installation that already held participants."""

from django.db import migrations


def vacuum_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Again until the rewrite keeps no dead row version a running transaction could see.
    from preventicons.vacuum import vacuum_full as rewrite_table

    rewrite_table(schema_editor.connection, "participants_participant")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("participants", "0027_participant_rows_of_one_shape"),
    ]

    operations = [migrations.RunPython(vacuum_full, migrations.RunPython.noop, elidable=False)]
