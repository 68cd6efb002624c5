"""Participant pages filled to half (PostgreSQL fillfactor 50), so the week close's rewrite stays on each page.

Every week close writes every participant row of the organisation again (a fresh participation ciphertext
for everyone, participants.participation): with full pages each new row version went to another page and
into all seven indexes, most of the close's database time. With room on the page PostgreSQL updates in place
(a HOT update: no index entry, since no indexed column changes) and the next close finds the page pruned
again. The table takes about twice the space. Existing rows move to half-filled pages at the first close
after this migration, so nothing is rewritten here. SQLite has no such setting.
"""

from django.db import migrations

FILLFACTOR = 50


def leave_room(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE participants_participant SET (fillfactor = {FILLFACTOR})")


def fill_pages(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("ALTER TABLE participants_participant RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("participants", "0020_consents_name_nobody")]

    operations = [migrations.RunPython(leave_room, fill_pages, elidable=False)]
