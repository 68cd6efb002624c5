"""After 0025 gave each consent record an index of its own and sealed its text version, the old values must
not stay readable in the table file: each UPDATE left the old row version (the shared index, the clear
version) behind as a dead tuple, and dropping the clear column rewrote no row, so every live row still held
its clear version. VACUUM FULL writes the table anew, as 0024 does. PostgreSQL only, and it cannot run in a
transaction, hence a non-atomic migration. On SQLite run ``VACUUM`` by hand once after upgrading an embedded
installation that already held consent records.

VACUUM FULL copies a dead row version that an open transaction of the same database might still see
("recently dead") into the new file as it is. So it first waits until no other session of the database
holds a snapshot taken before 0025 committed (an autovacuum ANALYZE of another table does, for a moment);
if one keeps it longer than ``WAIT_SECONDS``, a warning says to run VACUUM FULL again once it has ended."""

import logging
import time

from django.db import migrations

logger = logging.getLogger(__name__)
WAIT_SECONDS = 120


def _older_snapshots(cursor, before):
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_xmin IS NOT NULL AND age(backend_xmin) >= age(%s::text::xid)",
        [before],
    )
    return cursor.fetchone()[0]


def vacuum_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # Every transaction id below this one has ended, 0025's included.
        cursor.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
        before = cursor.fetchone()[0]
        deadline = time.monotonic() + WAIT_SECONDS
        while _older_snapshots(cursor, before) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _older_snapshots(cursor, before):
            logger.warning(
                "participants 0026: a session holds a snapshot older than 0025; run VACUUM FULL "
                "participants_consentrecord again once it has ended"
            )
        cursor.execute("VACUUM FULL participants_consentrecord")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("participants", "0025_consent_records_each_their_own_index"),
    ]

    operations = [migrations.RunPython(vacuum_full, migrations.RunPython.noop, elidable=False)]
