"""Listed hashes on participants, and one departed record per person holding both of their hashes.

A re-imported list is matched against how the employer listed each person (keyed hashes of that address and
number), no longer against the contacts they use now, and someone who left is one record with both hashes,
so the import answers alike whatever the person did (issue #14). Existing participants get their listed
hashes from the addresses of their invitation schedule where one still runs, else from their contacts on
file (the best that is known). A departed hash stored before was one unpaired row, of a kind not recorded:
it goes into both columns, where it still matches its own kind and equals no hash of the other.
"""

from django.db import migrations, models

# As participants.invitations.listed_hashes, written out here so a later change of that code cannot change
# what this migration did.
EMAIL_LABEL = "departed-email"
MOBILE_LABEL = "departed-mobile"


def fill_listed_hashes(apps, schema_editor):
    from preventicons.crypto import keyed_hash, normalise_email

    Participant = apps.get_model("participants", "Participant")
    InvitationSchedule = apps.get_model("participants", "InvitationSchedule")
    alias = schema_editor.connection.alias
    schedules = {
        schedule.participant_id: schedule
        for schedule in InvitationSchedule.objects.using(alias).exclude(participant_id=None)
    }
    for participant in Participant.objects.using(alias).exclude(status="stopped").iterator(chunk_size=500):
        schedule = schedules.get(participant.pk)
        email = (schedule.email if schedule else None) or participant.email
        mobile = (schedule.mobile if schedule else None) or participant.mobile
        org = participant.organisation_id
        Participant.objects.using(alias).filter(pk=participant.pk).update(
            listed_email_hash=keyed_hash("blind_index", f"{EMAIL_LABEL}:{org}", normalise_email(email))
            if email
            else None,
            listed_mobile_hash=keyed_hash("blind_index", f"{MOBILE_LABEL}:{org}", mobile) if mobile else None,
        )


def unpaired_into_both_columns(apps, schema_editor):
    DepartedContact = apps.get_model("participants", "DepartedContact")
    DepartedContact.objects.using(schema_editor.connection.alias).update(
        email_hash=models.F("contact_hash"), mobile_hash=models.F("contact_hash")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0014_last_imported_list_as_keyed_hashes"),
    ]

    operations = [
        migrations.AddField(
            model_name="departedcontact",
            name="email_hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="departedcontact",
            name="mobile_hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.RunPython(unpaired_into_both_columns, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="departedcontact",
            name="departed_contact_unique",
        ),
        migrations.RemoveField(
            model_name="departedcontact",
            name="contact_hash",
        ),
        migrations.AddField(
            model_name="participant",
            name="listed_email_hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="participant",
            name="listed_mobile_hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.RunPython(fill_listed_hashes, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="departedcontact",
            constraint=models.UniqueConstraint(fields=("organisation", "email_hash"), name="departed_unique_email"),
        ),
        migrations.AddConstraint(
            model_name="departedcontact",
            constraint=models.UniqueConstraint(
                fields=("organisation", "mobile_hash"), name="departed_unique_mobile"
            ),
        ),
        migrations.AddConstraint(
            model_name="participant",
            constraint=models.UniqueConstraint(
                fields=("organisation", "listed_email_hash"), name="participant_unique_listed_email"
            ),
        ),
        migrations.AddConstraint(
            model_name="participant",
            constraint=models.UniqueConstraint(
                fields=("organisation", "listed_mobile_hash"), name="participant_unique_listed_mobile"
            ),
        ),
    ]
