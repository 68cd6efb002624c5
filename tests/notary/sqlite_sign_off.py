"""Run by test_signoff.py in a process of its own, on the embedded SQLite default: five participants sign off
their ended trajectories, the beat's task takes them up twice, with what it did printed as JSON."""

from __future__ import annotations

import datetime as dt
import json

import django


def main() -> None:
    django.setup()
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from casefiles import trajectories
    from casefiles.models import Dossier
    from notary import references, signoffs, tasks
    from notary.models import Feedback, FeedbackRelease, LedgerEntry
    from participants.agreements import record_agreement
    from participants.casemanagers import link_casemanager
    from participants.models import Organisation, Participant, StaffUser
    from preventicons import crypto
    from preventicons.dbrouter import ALIASES
    from preventicons.roles import Role
    from scores import wellbeing

    for alias in ALIASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    organisation = Organisation.objects.create(name="Embedded", sector="zorg")
    record_agreement(
        organisation=organisation, signed_on=dt.date(2026, 1, 5), signer="Director", document=b"x"
    )
    anna = StaffUser.objects.create_user(username="cm-embedded", password="x" * 20)
    anna.groups.add(Group.objects.get_or_create(name=Role.CASEMANAGER.value)[0])
    record_agreement(casemanager=anna, signed_on=dt.date(2026, 1, 5), signer="Anna", document=b"y")
    link_casemanager(organisation=organisation, casemanager=anna)
    today = timezone.localdate()
    for number in range(5):
        participant = Participant(
            organisation=organisation,
            status=Participant.Status.ACTIVE,
            pseudonym=crypto.new_pseudonym(),
            name=f"Deelnemer {number}",
        )
        participant.save()
        wellbeing.request_help(
            participant=participant, channel="email", consent_text_version=wellbeing.CONTACT_CONSENT_VERSION
        )
        wellbeing.take_up_help_requests()
        dossier = Dossier.objects.get(pseudonym_index=crypto.casefiles_index(participant.pseudonym or ""))
        trajectory = trajectories.start_trajectory(
            dossier, kind="coaching", started_on=today - dt.timedelta(days=20), user=anna
        )
        trajectories.end_trajectory(trajectory, ended_on=today, user=anna)
        references.reference_for(trajectory.pk)
        (open_one,) = signoffs.open_sign_offs(participant=participant)
        signoffs.queue_sign_off(
            participant=participant,
            choice=open_one.choice,
            took_place="yes",
            rating="4",
            remark=f"Opmerking {number}",
        )
    first = tasks.take_up_sign_offs.apply(throw=True).get()
    again = tasks.take_up_sign_offs.apply(throw=True).get()
    print(
        json.dumps(
            {
                "vendor": connections["casefiles"].vendor,
                "first": first,
                "again": again,
                "entries": LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SIGNED_OFF).count(),
                "feedback": Feedback.objects.filter(release__isnull=False).count(),
                "releases": FeedbackRelease.objects.count(),
            }
        )
    )


if __name__ == "__main__":
    main()
