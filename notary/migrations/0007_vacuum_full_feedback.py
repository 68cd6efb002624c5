"""After 0006 sealed the feedback ratings, their clear values must not stay readable in the table file. The
sealing UPDATE left every old row version behind as a dead tuple (the clear rating beside the xmin of the
sign-off batch that also wrote the ledger entry naming the reference), and RemoveField is PostgreSQL's DROP
COLUMN, which rewrites no row: each live row, a released one for good, still held its clear rating.
VACUUM FULL writes the table anew, dropped columns nulled (as scores 0005 does). PostgreSQL only, and it
cannot run in a transaction, hence a non-atomic migration. On SQLite run ``VACUUM`` by hand once after
upgrading an embedded installation that already held feedback."""

from django.db import migrations


def vacuum_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Again until the rewrite keeps no dead row version a running transaction could see.
    from preventicons.vacuum import vacuum_full as rewrite_table

    rewrite_table(schema_editor.connection, "notary_feedback")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("notary", "0006_feedback_sealed_rating_person_pending"),
    ]

    operations = [
        migrations.RunPython(
            vacuum_full, migrations.RunPython.noop, hints={"model_name": "feedback"}, elidable=False
        )
    ]
