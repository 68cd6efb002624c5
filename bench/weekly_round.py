"""How fast a weekly round for 100,000 participants is prepared on PostgreSQL, next to a raw COPY of its rows.

    make bench                       (every benchmark)
    python -m bench.weekly_round     (this one; DATABASE_URL names the server, default 127.0.0.1)

"Prepared" means committed: every link row and every queued message (one per participant, on the channel
they chose: half of the bench's people chose SMS, half an e-mail address), in batches of
WEEKLY_ROUND_BATCH_SIZE, as the hourly beat does it. Sending (and rendering, which the outbox does at send
time for these deferred messages) is the outbox's job and not measured here. The raw baseline COPYs the same
rows into the same two tables: links with a token hash, outbox rows naming renderer and link, no content.
So the ratio is what the ORM, the batching queries and the token derivation cost on top.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from typing import Any

from bench import bench_organisation, prepare

PARTICIPANTS = 100_000
SETUP_BATCH = 5_000
# (the participant's weekly_channel, the outbox channel it leads to)
CHANNELS = (("work_email", "email"), ("sms", "sms"))
# Keys per DELETE: with server-side binding PostgreSQL takes at most 65,535 parameters in one statement.
DELETE_CHUNK = 10_000


def report(label: str, rows: int, seconds: float, what: str) -> None:
    print(f"  {label:<38} {seconds:7.2f} s  {rows / seconds:9,.0f} rows/s   {what}", flush=True)


def _make_participants(organisation: Any, department: Any) -> None:
    from participants.models import Participant
    from preventicons.crypto import new_pseudonym

    for start in range(0, PARTICIPANTS, SETUP_BATCH):
        Participant.objects.bulk_create(
            [
                Participant(
                    organisation=organisation,
                    department=department,
                    status=Participant.Status.ACTIVE,
                    email=f"medewerker{i}@example.nl",
                    mobile=f"+316{20000000 + i:08d}",
                    pseudonym=new_pseudonym(),
                    # The round writes only to the channel each participant chose: half and half here.
                    weekly_channel=CHANNELS[i % 2][0],
                    was_invited=True,
                )
                for i in range(start, min(start + SETUP_BATCH, PARTICIPANTS))
            ]
        )


def _settle() -> None:
    """VACUUM ANALYZE the three tables, outside any timing, so the round and the COPY start alike.

    Runs of this bench delete 300,000 rows each; on a server without autovacuum (a test server) the dead rows
    and stale statistics would otherwise dominate both figures and mislead the planner.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE participants_participant")
        cursor.execute("VACUUM ANALYZE scores_weeklylink")
        cursor.execute("VACUUM ANALYZE preventicons_outboundmessage")


def _statistics_of_past_weeks_only(organisation_id: int, week: dt.date) -> None:
    """Leave scores_weeklylink's statistics as a live installation has them when its round starts: sampled
    while it held last week's links and none of this week's (autovacuum samples again only later).

    The links are sampled and removed again, so the round writes into the same empty table as before and its
    figure stays comparable; what changes is the plan of "the same round again", which then finds this
    week's links estimated at one row, as a resumed round or one run again by hand does (rounds: it has the
    tables analysed first).
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO scores_weeklylink (id, participant_id, week, token_hash, expires_at) "
            "SELECT gen_random_uuid(), id, %s, md5(random()::text) || md5(random()::text), %s "
            "FROM participants_participant WHERE organisation_id = %s",
            [week - dt.timedelta(days=7), dt.datetime.now(tz=dt.UTC), organisation_id],
        )
        cursor.execute("ANALYZE scores_weeklylink")
        cursor.execute("DELETE FROM scores_weeklylink WHERE week = %s", [week - dt.timedelta(days=7)])
        cursor.execute("VACUUM scores_weeklylink")  # the dead rows go, the sampled statistics stay


def _raw_copy(organisation_id: int, week: dt.date, participant_ids: list[uuid.UUID]) -> int:
    """COPY one link and one message row per participant, shaped as the round's; returns the count."""
    from django.db import connection, transaction

    from preventicons.crypto import hash_token, new_token
    from preventicons.messaging import outbox_key_hash

    now = dt.datetime.now(tz=dt.UTC)
    expires = now + dt.timedelta(days=7)
    rows = 0
    link_ids = [uuid.uuid4() for _ in participant_ids]
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3 cursor under Django's wrapper
        with raw.copy(
            "COPY scores_weeklylink (id, participant_id, week, token_hash, expires_at) FROM STDIN"
        ) as copy:
            for link_id, pk in zip(link_ids, participant_ids, strict=True):
                copy.write_row((link_id, pk, week, hash_token(new_token()), expires))
                rows += 1
        columns = (
            "id, key_hash, cancel_tag, channel, renderer, reference, recipient, subject, body, status, "
            "attempts, next_attempt_at, last_error, finished_period"
        )
        with raw.copy(f"COPY preventicons_outboundmessage ({columns}) FROM STDIN") as copy:
            for index, (link_id, pk) in enumerate(zip(link_ids, participant_ids, strict=True)):
                key = f"bench:{pk}:{week.isoformat()}"
                for channel in (CHANNELS[index % 2][1],):
                    copy.write_row(
                        (
                            uuid.uuid4(),
                            # Hashed as the outbox does (the cancel tag costs one more HMAC there).
                            outbox_key_hash(f"{key}:{channel}"),
                            outbox_key_hash(str(pk)),
                            channel,
                            "scores.weekly",
                            str(link_id),
                            None,
                            None,
                            None,
                            "pending",
                            0,
                            now,
                            "",
                            None,
                        )
                    )
                    rows += 1
    return rows


def _key_hashes(kind: str, participant_ids: list[uuid.UUID], week: dt.date) -> list[str]:
    """The outbox keeps keys only hashed: the bench's rows are found again by the hashes of their keys."""
    from preventicons.messaging import outbox_key_hash

    return [
        outbox_key_hash(f"{kind}:{pk}:{week.isoformat()}:{channel}")
        for pk in participant_ids
        for channel in ("email", "sms")
    ]


def _delete_outbox(hashes: list[str]) -> None:
    from preventicons.models import OutboundMessage

    for start in range(0, len(hashes), DELETE_CHUNK):
        OutboundMessage.objects.filter(key_hash__in=hashes[start : start + DELETE_CHUNK]).delete()


def _token_costs(participant_ids: list[uuid.UUID]) -> None:
    """The only cryptography left in the round: deriving each link's token and hashing it."""
    from preventicons.crypto import hash_token
    from scores.rounds import link_token

    started = time.perf_counter()
    for _ in participant_ids:
        hash_token(link_token(uuid.uuid4()))
    report("derive and hash link tokens (HMAC)", len(participant_ids), time.perf_counter() - started, "")


def main() -> None:
    # No worker runs during the bench: the round's nudge after each batch goes to an in-process broker.
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    prepare()
    from django.conf import settings
    from django.db import connection

    from participants.models import Department, Participant
    from scores import rounds
    from scores.models import WeeklyLink

    week = rounds.week_of(dt.datetime.now(tz=dt.UTC))
    print(
        f"Weekly round for {PARTICIPANTS:,} participants (one message each) on PostgreSQL "
        f"{getattr(connection, 'pg_version', 0) // 10000} ({connection.settings_dict['NAME']}), "
        f"batches of {settings.WEEKLY_ROUND_BATCH_SIZE:,}",
        flush=True,
    )
    with bench_organisation("round") as organisation:
        department = Department.objects.create(organisation=organisation, name="Bench")
        participant_ids: list[uuid.UUID] = []
        try:
            started = time.perf_counter()
            _make_participants(organisation, department)
            print(
                f"  (setup: {PARTICIPANTS:,} participants sealed and inserted "
                f"in {time.perf_counter() - started:.1f} s)"
            )
            participant_ids = list(
                Participant.objects.filter(organisation=organisation)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            _settle()
            _statistics_of_past_weeks_only(organisation.pk, week)

            started = time.perf_counter()
            result = rounds.run_weekly_round(organisation=organisation, week=week)
            round_seconds = time.perf_counter() - started
            assert (result.links, result.emails + result.sms) == (PARTICIPANTS,) * 2, result
            round_rows = result.links + result.emails + result.sms
            report(
                "weekly round (deferred, batches)",
                round_rows,
                round_seconds,
                f"{result.batches} transactions",
            )

            started = time.perf_counter()
            again = rounds.run_weekly_round(organisation=organisation, week=week)
            assert again.links == 0, again
            report(
                "the same round again (nothing to do)", round_rows, time.perf_counter() - started, "0 rows"
            )

            _delete_outbox(_key_hashes("week", participant_ids, week))
            WeeklyLink.objects.filter(participant__organisation=organisation).delete()
            _settle()

            started = time.perf_counter()
            raw_rows = _raw_copy(organisation.pk, week, participant_ids)
            raw_seconds = time.perf_counter() - started
            report("raw COPY of as many rows", raw_rows, raw_seconds, "psycopg COPY, one transaction")
            _token_costs(participant_ids)
            verdict = "within" if round_seconds <= 5 * raw_seconds and round_seconds < 10 else "OUTSIDE"
            print(
                f"  ratio round / raw COPY: {round_seconds / raw_seconds:.2f}x "
                f"(target: within 5x and under 10 s: {verdict})",
                flush=True,
            )
        finally:
            for kind in ("bench", "week"):
                _delete_outbox(_key_hashes(kind, participant_ids, week))
    print("  (bench rows removed)", flush=True)


if __name__ == "__main__":
    main()
