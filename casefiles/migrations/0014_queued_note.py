"""Progress notes wait sealed in the casefiles store for the note batch (casefiles.notes.take_up_queued_notes),
which writes them to the notes store in random order: the order of the note rows no longer follows the access
log's. Depends on both 0011 and 0012, which main had as two leaves (both on 0010)."""

import django.db.models.lookups
import preventicons.fields
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('casefiles', '0013_vacuum_full_dossiers_and_notes'),
    ]

    operations = [
        migrations.CreateModel(
            name='QueuedNote',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('note', preventicons.fields.EncryptedTextField(purpose='field')),
            ],
            options={
                'verbose_name': 'queued note',
                'verbose_name_plural': 'queued notes',
                'constraints': [models.CheckConstraint(condition=models.Q(('note__isnull', True), django.db.models.lookups.StartsWith(models.F('note'), 'v1.'), _connector='OR'), name='casefiles_queuednote_note_sealed', violation_error_message='note holds ciphertext only')],
            },
        ),
    ]
