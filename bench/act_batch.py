"""What one participant's act costs the request batch now that it writes every row (participants.rewrite).

    python -m bench.act_batch      (DATABASE_URL names the server, default 127.0.0.1)

Setup (not measured): 100,000 participants of one organisation, every contact sealed and indexed (as after
enrolment), in 40 departments. Measured, after a CHECKPOINT: a request batch holding one pause (every
row's sealed columns opened and sealed again, both blind indexes renewed under a new salt, one statement
per 5,000 rows) with the WAL it wrote; then a batch holding two, which costs the same one pass.
"""

from __future__ import annotations

import secrets
import time

from bench import bench_organisation, prepare

PARTICIPANTS = int(__import__("os").environ.get("BENCH_PARTICIPANTS", "100000"))
DEPARTMENTS = 40
BATCH = 5_000


def main() -> None:
    prepare()
    from django.db import connection

    from participants import requestqueue
    from participants.models import Department, Participant
    from preventicons.crypto import blind_index_email, blind_index_phone, new_pseudonym
    from scores import wellbeing

    run = secrets.token_hex(4)
    with bench_organisation("act batch") as organisation:
        departments = Department.objects.bulk_create(
            [Department(organisation=organisation, name=f"Afdeling {i}") for i in range(DEPARTMENTS)]
        )
        started = time.perf_counter()
        participants = []
        for i in range(PARTICIPANTS):
            email, mobile = f"p{i}-{run}@example.nl", f"+316{i:08d}"
            participants.append(
                Participant(
                    organisation=organisation,
                    department=departments[i % DEPARTMENTS],
                    status=Participant.Status.ACTIVE,
                    name=f"Deelnemer {i}",
                    email=email,
                    email_index=blind_index_email(email),
                    mobile=mobile,
                    mobile_index=blind_index_phone(mobile),
                    pseudonym=new_pseudonym(),
                    weekly_channel=Participant.WeeklyChannel.SMS,
                )
            )
        Participant.objects.bulk_create(participants, batch_size=BATCH)
        setup = time.perf_counter() - started
        print(f"Setup: {PARTICIPANTS:,} participants, sealed and indexed, {setup:.1f} s (not measured)")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE participants_participant")
            cursor.execute("CHECKPOINT")
            cursor.execute("SELECT pg_current_wal_lsn()")
            wal_before = cursor.fetchone()[0]

        requestqueue.queue_pause_change(participant=participants[PARTICIPANTS // 2], paused=True)
        started = time.perf_counter()
        batch = wellbeing.take_up_help_requests()
        seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [wal_before])
            wal = int(cursor.fetchone()[0])
        assert batch.pauses_changed == 1
        print(
            f"  batch with one pause      {seconds:6.2f} s  ({PARTICIPANTS:,} rows rewritten, "
            f"{PARTICIPANTS / seconds:,.0f} per second, {wal / 1e6:.0f} MB of WAL)"
        )

        requestqueue.queue_pause_change(participant=participants[PARTICIPANTS // 2], paused=False)
        requestqueue.queue_pause_change(participant=participants[PARTICIPANTS // 3], paused=True)
        started = time.perf_counter()
        batch = wellbeing.take_up_help_requests()
        seconds = time.perf_counter() - started
        assert batch.pauses_changed == 2
        print(f"  batch with two pauses     {seconds:6.2f} s  (the same one pass over every row)")


if __name__ == "__main__":
    main()
