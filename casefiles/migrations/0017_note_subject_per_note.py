"""Every progress note gets its own subject, and the dossier keeps how many notes it has had, sealed.

The notes store keyed every note of a dossier by one subject, HMAC(notes key, number): beside the access log
a note batch of one dossier paired its subject with its number, a subject seen in several batches was
pinned by the numbers those batches shared, and a subject's count of notes against a number's count of
"added a note" entries did the same. Each note's subject is now HMAC(notes key, number and its place in the
dossier's order), which no other note shares, and the dossier counts its notes (``notes_written``, sealed to
its row like its closing day) so that readers find every subject in one query.

Each store does its own part, in the order ``migrate`` takes them (notes, then casefiles), and each reads
the other without writing it: in the notes store every note's subject is rewritten (the number from the
casefiles store's dossier numbers, the place opened from the note's sealed sequence; a subject no dossier
number answers to, or one already rewritten, stays as it is); in the casefiles store each dossier's count is
the highest place among its notes, stored (under either subject) or queued, and each queued note's sealed
header gets its own subject and its dossier's (what the batch counts dossiers by). 0018 writes the notes
table anew, so no old row version keeps the shared subjects.
"""

import json

import django.db.models.lookups
from django.db import connections, migrations, models

import preventicons.fields

CASEFILES, NOTES = "casefiles", "notes"


def _hashers():
    from preventicons import crypto

    # The formulas of crypto.notes_subject and crypto.note_subject, fixed here as this migration wrote them.
    dossier = crypto.keyed_hasher("notes_subject", "dossier")
    note = crypto.keyed_hasher("notes_subject", "note")
    return dossier, lambda number, sequence: note(f"{number}\x00{sequence}")


def _has_table(alias, table):
    connection = connections[alias]
    with connection.cursor() as cursor:
        return table in connection.introspection.table_names(cursor)


def _dossier_numbers():
    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("SELECT number FROM casefiles_dossier")
        return [number for (number,) in cursor.fetchall()]


def _stored_notes():
    """Each stored note's subject and place in its order (opened), read from the notes store."""
    from preventicons import crypto

    if not _has_table(NOTES, "casefiles_progressnote"):
        return []
    with connections[NOTES].cursor() as cursor:
        cursor.execute("SELECT id, subject, sequence FROM casefiles_progressnote")
        rows = cursor.fetchall()

    def place(pk, sealed):
        return int(crypto.open_sealed(sealed, crypto.Binding("field", "casefiles_progressnote", "sequence", str(pk))))

    return [(pk, subject, place(pk, sealed)) for pk, subject, sealed in rows]


def _owners(notes, numbers):
    """Each note's dossier number and whether its subject is the dossier's (shared) or its own, or None."""
    dossier_subject, note_subject = _hashers()
    shared = {dossier_subject(number): number for number in numbers}
    own = {}
    for sequence in {sequence for _pk, _subject, sequence in notes}:
        own.update({note_subject(number, sequence): number for number in numbers})
    found = {}
    for pk, subject, _sequence in notes:
        if subject in shared:
            found[pk] = (shared[subject], True)
        elif subject in own:
            found[pk] = (own[subject], False)
    return found


def _rewrite_subjects(apps, schema_editor, *, per_note):
    alias = schema_editor.connection.alias
    ProgressNote = apps.get_model("casefiles", "ProgressNote")
    notes = _stored_notes()
    if not notes:
        return
    if not _has_table(CASEFILES, "casefiles_dossier"):
        raise RuntimeError(
            "the notes store holds notes but the casefiles store has no dossier table: migrate with both "
            "stores configured (NOTES_DATABASE_URL, CASEFILES_DATABASE_URL) and the casefiles store created"
        )
    numbers = _dossier_numbers()
    dossier_subject, note_subject = _hashers()
    owners = _owners(notes, numbers)
    for pk, _subject, sequence in notes:
        if pk not in owners:
            continue  # no dossier's: nothing could find it before, nothing will after
        number, is_shared = owners[pk]
        if per_note and is_shared:
            ProgressNote.objects.using(alias).filter(pk=pk).update(subject=note_subject(number, sequence))
        elif not per_note and not is_shared:
            ProgressNote.objects.using(alias).filter(pk=pk).update(subject=dossier_subject(number))


def subject_per_note(apps, schema_editor):
    _rewrite_subjects(apps, schema_editor, per_note=True)


def subject_per_dossier(apps, schema_editor):
    _rewrite_subjects(apps, schema_editor, per_note=False)


def _queued(QueuedNote, alias):
    """Each queued note: its row id, its header (opened) and its text, and the padded plaintext's size."""
    from preventicons import crypto

    for pk, sealed in list(QueuedNote.objects.using(alias).values_list("pk", "note")):
        binding = crypto.Binding("field", "casefiles_queuednote", "note", str(pk))
        plaintext = crypto.open_sealed(str(sealed), binding)
        header, _newline, rest = plaintext.partition("\n")
        fields = json.loads(header)
        yield pk, fields, rest[: int(fields["chars"])], len(plaintext.encode("utf-8"))


def _requeue(QueuedNote, alias, pk, fields, text, size):
    """Seal the note again with this header, padded to the size it had: every queued note stays one length."""
    from preventicons import crypto
    from preventicons.fields import Sealed

    plaintext = f"{json.dumps(fields)}\n{text}"
    room = size - len(plaintext.encode("utf-8"))
    if room < 0:
        raise RuntimeError(f"queued note {pk}: its new header does not fit its padding; run the note batch first")
    binding = crypto.Binding("field", "casefiles_queuednote", "note", str(pk))
    QueuedNote.objects.using(alias).filter(pk=pk).update(
        note=Sealed(crypto.seal(plaintext + " " * room, binding))
    )


def count_notes(apps, schema_editor):
    """Each dossier's count: the highest place among its notes, stored or queued; and each queued note's
    header with its own subject and its dossier's."""
    from preventicons import crypto
    from preventicons.fields import Sealed

    alias = schema_editor.connection.alias
    Dossier = apps.get_model("casefiles", "Dossier")
    QueuedNote = apps.get_model("casefiles", "QueuedNote")
    numbers = dict(Dossier.objects.using(alias).values_list("number", "pk"))
    dossier_subject, note_subject = _hashers()
    by_dossier_subject = {dossier_subject(number): number for number in numbers}
    highest = dict.fromkeys(numbers, 0)
    notes = _stored_notes()
    owners = _owners(notes, list(numbers))
    for pk, _subject, sequence in notes:
        if pk in owners:
            number = owners[pk][0]
            highest[number] = max(highest[number], sequence)
    for pk, fields, text, size in list(_queued(QueuedNote, alias)):
        number = by_dossier_subject.get(fields.get("dossier", fields["subject"]))
        if number is None:
            continue
        sequence = int(fields["sequence"])
        highest[number] = max(highest[number], sequence)
        if "dossier" not in fields:
            fields = {**fields, "subject": note_subject(number, sequence), "dossier": fields["subject"]}
            _requeue(QueuedNote, alias, pk, fields, text, size)
    for number, pk in numbers.items():
        binding = crypto.Binding("field", "casefiles_dossier", "notes_written", str(pk))
        Dossier.objects.using(alias).filter(pk=pk).update(
            notes_written=Sealed(crypto.seal(str(highest[number]), binding))
        )


def uncount_notes(apps, schema_editor):
    """The queued notes' headers as they were: the dossier's subject as the note's (the count goes with
    its column)."""
    alias = schema_editor.connection.alias
    QueuedNote = apps.get_model("casefiles", "QueuedNote")
    for pk, fields, text, size in list(_queued(QueuedNote, alias)):
        if "dossier" in fields:
            old = {key: value for key, value in fields.items() if key != "dossier"}
            _requeue(QueuedNote, alias, pk, {**old, "subject": fields["dossier"]}, text, size)


class Migration(migrations.Migration):
    dependencies = [
        ("casefiles", "0016_vacuum_full_dossiers_after_awaiting_sealed"),
    ]

    operations = [
        migrations.AddField(
            model_name="dossier",
            name="notes_written",
            field=preventicons.fields.SealedIntegerField(null=True, purpose="field"),
        ),
        # The notes store's part (runs where ProgressNote lives), then the casefiles store's.
        migrations.RunPython(subject_per_note, subject_per_dossier, hints={"model_name": "progressnote"}),
        migrations.RunPython(count_notes, uncount_notes, hints={"model_name": "dossier"}),
        migrations.AlterField(
            model_name="dossier",
            name="notes_written",
            field=preventicons.fields.SealedIntegerField(purpose="field"),
        ),
        migrations.AddConstraint(
            model_name="dossier",
            constraint=models.CheckConstraint(
                condition=models.Q(("notes_written__isnull", True))
                | django.db.models.lookups.StartsWith(models.F("notes_written"), "v1."),
                name="casefiles_dossier_notes_written_sealed",
                violation_error_message="notes_written holds ciphertext only",
            ),
        ),
    ]
