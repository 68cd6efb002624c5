"""Run by test_feed.py in a process of its own, on the embedded SQLite default: the nightly job and the
command feed the ledger, a key rotation is recorded, and casefiles retention forgets a reference, with what
each did printed as JSON."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tempfile
from pathlib import Path

import django


def main() -> None:
    django.setup()
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connections
    from django.test import override_settings
    from django.utils import timezone

    from casefiles import accesslog
    from casefiles import retention as casefiles_retention
    from casefiles.models import Dossier, Trajectory, TrajectorySession
    from notary import feed, references
    from notary.models import LedgerEntry
    from notary.tasks import record_ledger
    from participants import retention as participants_retention
    from participants.models import Organisation, ProcessingAgreement, StaffUser
    from preventicons import keys
    from preventicons.dbrouter import ALIASES
    from preventicons.keyrotation import activate_key, add_key
    from scores import reports

    for alias in ALIASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    today = timezone.localdate()
    organisation = Organisation.objects.create(name="Embedded", sector="zorg")
    ProcessingAgreement.objects.create(
        party=ProcessingAgreement.Party.ORGANISATION,
        organisation=organisation,
        signed_on=dt.date(2026, 1, 5),
        signer="Director",
        document_sha256=hashlib.sha256(b"agreement").hexdigest(),
    )
    employer = StaffUser.objects.create_user(
        username="hr-embedded", password="x" * 20, organisation=organisation
    )
    employer.groups.add(Group.objects.get_or_create(name="employer")[0])
    reports.raise_threshold(organisation, 7, by=employer)
    participants_retention.run_retention(today=today - dt.timedelta(days=1))
    # A dossier whose participant stopped: closed and unlinked, so its trajectory is not measurable.
    dossier = Dossier.objects.create(
        number="D-EMBEDDED", opened_on=today, organisation_id=organisation.pk, is_open=False, closed_on=today
    )
    # Ended eight weeks ago: the weeks its outcome reads have ended.
    started_on, ended_on = today - dt.timedelta(weeks=10), today - dt.timedelta(weeks=8)
    trajectory = Trajectory.objects.create(
        dossier=dossier, kind="coaching", started_on=started_on, ended_on=ended_on
    )
    TrajectorySession.objects.create(trajectory=trajectory, planned_on=started_on, held_on=started_on)
    accesslog.record("view_dossier", user=employer, dossier_number=dossier.number)

    first = record_ledger.apply(throw=True).get()
    second = record_ledger.apply(throw=True).get()
    out = io.StringIO()
    call_command("record_ledger", stdout=out)
    reference = references.references_for([trajectory.pk])[trajectory.pk]

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "keys.json"
        keys.write_key_document(path, keys.read_key_document())
        with override_settings(PREVENTICONS_KEY_FILE=str(path), PREVENTICONS_KEYS=""):
            keys.reset_key_cache()
            activate_key(purpose="field", key_id=add_key(purpose="field"))
        keys.reset_key_cache()

    def rows() -> list[tuple[int, str, str]]:
        return list(LedgerEntry.objects.order_by("sequence").values_list("sequence", "leaf_hash", "seal"))

    kept = rows()
    with override_settings(DOSSIER_UNLINK_AFTER_CLOSE_DAYS=0):
        # Carried out on the first night of the next month (casefiles.retention.first_night).
        casefiles_retention.run_retention(today=casefiles_retention.first_night(today, days=0))
        after = record_ledger.apply(throw=True).get()  # the same night: nothing
    # The next night, with the term back at its default: the forgotten trajectory gets no new reference.
    later = feed.record_new_facts(today=today + dt.timedelta(days=1))
    print(
        json.dumps(
            {
                "vendor": connections["casefiles"].vendor,
                "first": first,
                "second": sum(second.values()),
                "command": out.getvalue().strip().splitlines()[-1],
                "key_rotated": LedgerEntry.objects.filter(kind="key_rotated").count(),
                "forgotten": references.trajectory_id_for(reference) is None,
                "entries_kept": list(LedgerEntry.objects.values_list("sequence", "leaf_hash", "seal"))[
                    : len(kept)
                ]
                == kept,
                "after_retention": sum(after.values()) + later.total,
            }
        )
    )


if __name__ == "__main__":
    main()
