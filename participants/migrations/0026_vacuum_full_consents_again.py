"""After 0025 gave each consent record an index of its own and sealed its text version, the old values must
not stay readable in the table file: each UPDATE left the old row version (the shared index, the clear
version) behind as a dead tuple, and dropping the clear column rewrote no row, so every live row still held
its clear version. VACUUM FULL writes the table anew, as 0024 does. PostgreSQL only, and it cannot run in a
transaction, hence a non-atomic migration. On SQLite run ``VACUUM`` by hand once after upgrading an embedded
installation that already held consent records."""

from django.db import migrations


def vacuum_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("VACUUM FULL participants_consentrecord")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("participants", "0025_consent_records_each_their_own_index"),
    ]

    operations = [migrations.RunPython(vacuum_full, migrations.RunPython.noop, elidable=False)]
