"""How fast the nightly run anonymises 10,000 participants on PostgreSQL (target: under 60 s).

    make bench                      (every benchmark)
    python -m bench.anonymise       (this one; DATABASE_URL names the server, default 127.0.0.1)

Setup (not measured): an organisation whose contract ended long ago, with 10,000 active participants (name,
e-mail, mobile, blind indexes and pseudonym sealed), each with a consent record, a score and an expired
invitation, and a dossier for 5% of them. Measured: ``participants.retention.run_retention``, which
anonymises every one of them with the crypto-shredding a stop does (their dossiers' closes queued, their
scores unlinked), in one pass that ends by rewriting every participant row once (participants.rewrite),
then a second run that changes nothing; and the first
request batch of the next day, which closes the queued dossiers (``scores.wellbeing.take_up_help_requests``).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time

from bench import bench_organisation, prepare

PARTICIPANTS = 10_000
WITH_DOSSIER = 20  # every 20th participant: 5%
TARGET_SECONDS = 60.0
BATCH = 2_000


def main() -> None:
    prepare()
    from django.db import connection
    from django.utils import timezone

    from casefiles.models import Dossier
    from participants import retention
    from participants.models import AnonymisationRun, ConsentRecord, Department, Invitation, Participant
    from preventicons import crypto
    from scores import wellbeing
    from scores.models import Score
    from scores.sealing import department_text, week_pseudonym

    run = secrets.token_hex(4)
    today = timezone.localdate()
    with bench_organisation("anonymise") as organisation:
        organisation.contract_end = today - dt.timedelta(days=400)
        organisation.save(update_fields=["contract_end"])
        department = Department.objects.create(organisation=organisation, name="Afdeling")
        started = time.perf_counter()
        participants: list[Participant] = []
        for i in range(PARTICIPANTS):
            email, mobile = f"bench-{run}-{i}@example.nl", f"+3162{i:07d}"
            person = Participant(
                organisation=organisation,
                department=department,
                status=Participant.Status.ACTIVE,
                name=f"Medewerker {i}",
                pseudonym=crypto.new_pseudonym(),
            )
            person.set_email(email)
            person.set_mobile(mobile)
            participants.append(person)
        # bulk_create seals each value bound to its row (EncryptedTextField.pre_save).
        Participant.objects.bulk_create(participants, batch_size=BATCH)
        week = today - dt.timedelta(days=today.weekday() + 7)
        expired = timezone.now() - dt.timedelta(days=400)
        ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    # Each person's first record: n = 0 (participants.models.ConsentRecord).
                    participant_index=ConsentRecord.index_for(p.pk, 0),
                    kind="given",
                    text_version="bench",
                    recorded_at=week,
                )
                for p in participants
            ],
            batch_size=BATCH,
        )
        Invitation.objects.bulk_create(
            [
                Invitation(
                    participant=p, token_hash=crypto.hash_token(crypto.new_token()), expires_at=expired
                )
                for p in participants
            ],
            batch_size=BATCH,
        )
        Score.objects.bulk_create(
            [
                Score(
                    organisation=organisation,
                    department=department_text(department.pk),
                    week=week,
                    value=3,
                    pseudonym=week_pseudonym(p.pseudonym or "", week),
                )
                for p in participants
            ],
            batch_size=BATCH,
        )
        dossiers = []
        for n, p in enumerate(participants[::WITH_DOSSIER]):
            dossier = Dossier(
                number=f"D-B{run[:4].upper()}{n:03d}"[:16],
                pseudonym_index=crypto.casefiles_index(p.pseudonym or ""),
                opened_on=week,
            )
            dossier.pseudonym = p.pseudonym
            dossiers.append(dossier)
        Dossier.objects.bulk_create(dossiers, batch_size=BATCH)
        print(
            f"Setup: {PARTICIPANTS:,} participants (contact data and pseudonyms sealed), as many consents, "
            f"scores and expired invitations, {len(dossiers):,} dossiers, "
            f"{time.perf_counter() - started:.1f} s (not measured)",
            flush=True,
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE participants_participant; ANALYZE scores_score")
        print(
            f"Anonymising on PostgreSQL {getattr(connection, 'pg_version', 0) // 10000} "
            f"({connection.settings_dict['NAME']})",
            flush=True,
        )
        try:
            started = time.perf_counter()
            counts = retention.run_retention(today=today)
            seconds = time.perf_counter() - started
            assert counts.contract_ended_anonymised == PARTICIPANTS, counts
            # Erased means look-alikes of the same length, never NULL (participants.models): opened to tell.
            assert not any(
                person.email or person.pseudonym
                for person in Participant.objects.filter(organisation=organisation).only(
                    "pk", "email", "pseudonym"
                )
            )
            closing = time.perf_counter()
            closed = wellbeing.take_up_help_requests(today=today + dt.timedelta(days=1))
            print(
                f"  next day's request batch     {time.perf_counter() - closing:7.2f} s "
                f"({closed.stop_closes:,} dossier closes)",
                flush=True,
            )
            assert not any(
                state.is_open for state in Dossier.objects.filter(pk__in=[d.pk for d in dossiers]).states()
            )
            verdict = "OK" if seconds < TARGET_SECONDS else "TOO SLOW"
            print(
                f"  nightly run                  {seconds:7.2f} s "
                f"(target < {TARGET_SECONDS:.0f} s: {verdict}) "
                f"{counts.contract_ended_anonymised:,} anonymised, "
                f"{PARTICIPANTS / seconds:,.0f} per second, {counts.invitations_purged:,} invitations purged",
                flush=True,
            )
            started = time.perf_counter()
            again = retention.run_retention(today=today)
            assert not again.any(), again
            print(f"  second run (changes nothing) {time.perf_counter() - started:7.2f} s", flush=True)
        finally:
            Dossier.objects.filter(pk__in=[d.pk for d in dossiers]).delete()
            AnonymisationRun.objects.filter(run_on=today).delete()
    print("  (bench rows removed)", flush=True)


if __name__ == "__main__":
    main()
