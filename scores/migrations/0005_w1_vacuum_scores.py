"""After the scores were rewritten (0004), their old row versions (P in clear, plain values, old ids) must
not stay readable in the table file, nor the participants' (participation in clear, participants 0008):
VACUUM FULL writes each table anew. PostgreSQL only, and it cannot run in a transaction, hence a
non-atomic migration. On SQLite deleted rows can linger in free pages (unless the build has secure_delete
on): run ``VACUUM`` by hand once after upgrading an embedded installation that already held scores."""

from django.db import migrations


def vacuum_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Again until the rewrite keeps no dead row version a running transaction could see.
    from preventicons.vacuum import vacuum_full as rewrite_table

    rewrite_table(schema_editor.connection, "scores_score")
    rewrite_table(schema_editor.connection, "scores_weeklyaggregate")
    rewrite_table(schema_editor.connection, "participants_participant")


class Migration(migrations.Migration):
    atomic = False

    # After both rewrites: the participants' old row versions held last_response_week in clear.
    dependencies = [
        ("participants", "0012_w1_sealed_participation"),
        ("scores", "0004_w1_sealed_scores"),
    ]

    operations = [migrations.RunPython(vacuum_full, migrations.RunPython.noop, elidable=False)]
