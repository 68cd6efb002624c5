"""After 0008 sealed the feedback's organisation, its clear values must not stay readable in the table file:
the sealing UPDATE left every old row version behind as a dead tuple, and RemoveField (DROP COLUMN) rewrites
no row, so each live row, a released one for good, still held its organisation in clear. VACUUM FULL writes
the table anew, dropped columns nulled (as 0007 does after the ratings were sealed). PostgreSQL only, and it
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
        ("notary", "0008_feedback_organisation_sealed"),
    ]

    operations = [
        migrations.RunPython(
            vacuum_full, migrations.RunPython.noop, hints={"model_name": "feedback"}, elidable=False
        )
    ]
