"""After 0017 gave every progress note its own subject, the shared ones must not stay readable in the table
file: each rewriting UPDATE left the old row version (the dossier's one subject, beside the row's sealed
columns) as a dead tuple, which stays in the table's pages until its space is reused (VACUUM marks it free,
it does not wipe it). Read from the file, the shared subjects would group each dossier's notes again. VACUUM FULL writes the table anew, as 0013 does. PostgreSQL only, and it cannot
run in a transaction, hence a non-atomic migration. On SQLite run ``VACUUM`` by hand once after upgrading an
embedded installation that already held notes."""

from django.db import migrations


def vacuum_full_notes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Again until the rewrite keeps no dead row version a running transaction could see.
    from preventicons.vacuum import vacuum_full as rewrite_table

    rewrite_table(schema_editor.connection, "casefiles_progressnote")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("casefiles", "0017_note_subject_per_note"),
    ]

    operations = [
        migrations.RunPython(
            vacuum_full_notes,
            migrations.RunPython.noop,
            hints={"model_name": "progressnote"},
            elidable=False,
        ),
    ]
