"""How fast a week closes for an organisation of 100,000 participants on PostgreSQL (target: under 5 s).

    make bench                      (every benchmark)
    python -m bench.week_close      (this one; DATABASE_URL names the server, default 127.0.0.1)

Setup (not measured): 100,000 active participants with sealed pseudonyms and participation over 40
departments, each with the week's link, 70% of them with a sealed score in the week, 1% one missed week away
from becoming inactive.
Measured, after a CHECKPOINT as in production: the close itself (every value opened, aggregates computed
and sealed, every participant's participation opened and sealed again, the week's rows rewritten under new
ids without departments, the week's links deleted, the inactive ones announced) with the WAL it wrote, the
VACUUM after it, then a second, idempotent close.
"""

from __future__ import annotations

import random
import secrets
import time

from bench import bench_organisation, prepare

PARTICIPANTS = 100_000
DEPARTMENTS = 40
RESPONDING = 0.70
NEAR_INACTIVE = 0.01
TARGET_SECONDS = 5.0
BATCH = 5_000


def main() -> None:
    prepare()
    from django.conf import settings
    from django.db import connection

    from participants.models import Department, Participant
    from participants.participation import ParticipationState
    from preventicons.crypto import new_pseudonym
    from scores import weekclose
    from scores.models import Score, WeeklyLink
    from scores.rounds import week_closes_at
    from scores.sealing import department_text, week_pseudonym

    run = secrets.token_hex(4)
    rng = random.Random(run)
    week = weekclose.previous_week()
    with bench_organisation("week close") as organisation:
        departments = Department.objects.bulk_create(
            [Department(organisation=organisation, name=f"Afdeling {i}") for i in range(DEPARTMENTS)]
        )
        started = time.perf_counter()
        participants: list[Participant] = []
        scores: list[Score] = []
        for i in range(PARTICIPANTS):
            department = departments[i % DEPARTMENTS]
            pseudonym = new_pseudonym()
            participants.append(
                Participant(
                    organisation=organisation,
                    department=department,
                    status=Participant.Status.ACTIVE,
                    pseudonym=pseudonym,
                    participation=ParticipationState(
                        weeks_without_response=settings.INACTIVE_AFTER_WEEKS - 1
                        if rng.random() < NEAR_INACTIVE
                        else 0
                    ).sealed_text(),
                )
            )
            if rng.random() < RESPONDING:
                scores.append(
                    Score(
                        organisation=organisation,
                        department=department_text(department.pk),
                        week=week,
                        value=rng.randint(1, 5),
                        pseudonym=week_pseudonym(pseudonym, week),
                    )
                )
        # bulk_create seals each pseudonym, participation and value bound to its row (the fields' pre_save).
        Participant.objects.bulk_create(participants, batch_size=BATCH)
        Score.objects.bulk_create(scores, batch_size=BATCH)
        # The week's links, as the round left them: the close deletes them.
        expires_at = week_closes_at(week)
        WeeklyLink.objects.bulk_create(
            [
                WeeklyLink(
                    participant=participant,
                    week=week,
                    token_hash=secrets.token_hex(32),
                    expires_at=expires_at,
                )
                for participant in participants
            ],
            batch_size=BATCH,
        )
        print(
            f"Setup: {PARTICIPANTS:,} participants (pseudonyms sealed) with the week's links, "
            f"{len(scores):,} scores in {DEPARTMENTS} departments, {time.perf_counter() - started:.1f} s "
            "(not measured)",
            flush=True,
        )
        with connection.cursor() as cursor:
            # VACUUM as autovacuum would have done during the week: without it (a server with autovacuum
            # off) the rows earlier runs removed stay in the tables, and every run scans more of them.
            cursor.execute("VACUUM ANALYZE participants_participant")
            cursor.execute("VACUUM ANALYZE scores_score")
            cursor.execute("VACUUM ANALYZE scores_weeklylink")
        print(
            f"Closing the week of {week} on PostgreSQL {getattr(connection, 'pg_version', 0) // 10000} "
            f"({connection.settings_dict['NAME']})",
            flush=True,
        )

        with connection.cursor() as cursor:
            # In production a week has passed since the last close wrote these rows, and the server has
            # checkpointed many times since: the close writes every page it touches whole to the WAL the first
            # time (full-page writes). Without a checkpoint here, whether the setup's pages were already
            # checkpointed varied from run to run (67 to 165 MB of WAL, and most of the spread of the figure).
            cursor.execute("CHECKPOINT")
            cursor.execute("SELECT pg_current_wal_lsn()")
            (wal_before,) = cursor.fetchone()
        started = time.perf_counter()
        # Without its VACUUM, which is timed on its own below.
        result = weekclose.close_week(organisation_id=organisation.pk, week=week, vacuum=False)
        seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [wal_before])
            (wal_bytes,) = cursor.fetchone()
        assert result.closed and result.participation.responded == len(scores), result
        verdict = "OK" if seconds < TARGET_SECONDS else "TOO SLOW"
        print(
            f"  first close                  {seconds:7.2f} s  (target < {TARGET_SECONDS:.0f} s: {verdict})  "
            f"{result.aggregates} aggregates, {result.participation.responded:,} responded, "
            f"{result.participation.missed:,} missed, "
            f"{len(result.participation.became_inactive):,} became inactive, "
            f"{float(wal_bytes) / 1e6:.0f} MB of WAL",
            flush=True,
        )
        started = time.perf_counter()
        weekclose.vacuum_scores_after_commit()  # outside a transaction: runs at once
        print(f"  VACUUM of the score table      {time.perf_counter() - started:5.2f} s", flush=True)
        started = time.perf_counter()
        again = weekclose.close_week(organisation_id=organisation.pk, week=week)
        assert not again.closed
        print(f"  second close (changes nothing) {time.perf_counter() - started:5.2f} s", flush=True)
    print("  (bench rows removed)", flush=True)


if __name__ == "__main__":
    main()
