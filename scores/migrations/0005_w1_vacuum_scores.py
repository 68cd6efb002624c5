"""After the scores were rewritten (0004), their old row versions (P in clear, plain values, old ids) must
not stay readable in the table file: VACUUM FULL writes the table anew. PostgreSQL only; it cannot run in a
transaction, hence a non-atomic migration. SQLite has no dead row versions to remove in the same sense; run
``VACUUM`` by hand once after upgrading an embedded installation that already held scores."""

from django.db import migrations


def vacuum_full(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("VACUUM FULL scores_score")
        cursor.execute("VACUUM FULL scores_weeklyaggregate")
        cursor.execute("VACUUM FULL participants_participant")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("scores", "0004_w1_sealed_scores"),
    ]

    operations = [migrations.RunPython(vacuum_full, migrations.RunPython.noop, elidable=False)]
