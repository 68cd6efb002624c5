"""After 0025 gave each consent record an index of its own and sealed its text version, the old values must
not stay readable in the table file: each UPDATE left the old row version (the shared index, the clear
version) behind as a dead tuple, and dropping the clear column rewrote no row, so every live row still held
its clear version. VACUUM FULL writes the table anew, as 0024 does. PostgreSQL only, and it cannot run in a
transaction, hence a non-atomic migration. On SQLite run ``VACUUM`` by hand once after upgrading an embedded
installation that already held consent records.

VACUUM FULL copies a dead row version that an open transaction might still see ("recently dead") into the
new file as it is. So the table is written again until the rewrite keeps none (preventicons.vacuum: an
autovacuum ANALYZE of another table holds such a snapshot for a moment, and so does a connection that is still
starting up, which pg_stat_activity does not list under the database); if a transaction keeps them longer
than two minutes, a warning says to run VACUUM FULL again once it has ended."""

from django.db import migrations


def vacuum_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from preventicons.vacuum import vacuum_full as rewrite_table

    rewrite_table(schema_editor.connection, "participants_consentrecord")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("participants", "0025_consent_records_each_their_own_index"),
    ]

    operations = [migrations.RunPython(vacuum_full, migrations.RunPython.noop, elidable=False)]
