"""After 0015 sealed the day a dossier began waiting for its first contact, its clear value must not stay
readable in the table file: the sealing UPDATE left each old row version (clear day) as a dead tuple, and
RemoveField (DROP COLUMN) rewrote no row, so every live row kept the dropped day in its tuple. VACUUM FULL
writes the table anew, dropped columns nulled, as 0013 does. PostgreSQL only, and it cannot run in a
transaction, hence a non-atomic migration. On SQLite run ``VACUUM`` by hand once after upgrading an embedded
installation that already held dossiers."""

from django.db import migrations


def vacuum_full_dossiers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Again until the rewrite keeps no dead row version a running transaction could see.
    from preventicons.vacuum import vacuum_full as rewrite_table

    rewrite_table(schema_editor.connection, "casefiles_dossier")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("casefiles", "0015_dossier_awaiting_contact_sealed"),
    ]

    operations = [
        migrations.RunPython(
            vacuum_full_dossiers,
            migrations.RunPython.noop,
            hints={"model_name": "dossier"},
            elidable=False,
        ),
    ]
