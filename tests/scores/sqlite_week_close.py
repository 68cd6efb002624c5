"""Run by test_weekclose.py in a process of its own, on the embedded SQLite default: scores submitted and a
week closed, with what a copy of the database file shows before and after printed as JSON."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import django


def stored(path: Path) -> list[tuple[str, str, str | None]]:
    """The score rows in the order the file stores them (rowid), read straight from the file."""
    with sqlite3.connect(path) as database:
        return database.execute(
            "SELECT id, pseudonym, department FROM scores_score ORDER BY rowid"
        ).fetchall()


def main() -> None:
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from participants.models import Department, Organisation, Participant
    from participants.participation import participation_of
    from preventicons import crypto
    from preventicons.dbrouter import ALIASES
    from scores import queries, weekclose
    from scores.submission import record_score

    for alias in ALIASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    path = Path(connections["default"].settings_dict["NAME"])
    week, today = dt.date(2026, 11, 9), dt.date(2026, 11, 16)
    organisation = Organisation.objects.create(name="Embedded", sector="zorg")
    care = Department.objects.create(organisation=organisation, name="Care")
    people = []
    for n in range(12):
        participant = Participant(
            organisation=organisation, department=care, status="active", pseudonym=crypto.new_pseudonym()
        )
        participant.save()
        people.append(participant)
        record_score(
            pseudonym=participant.pseudonym or "",
            week=week,
            value=1 + n % 5,
            organisation_id=organisation.pk,
            department_id=care.pk,
        )
    # Three who did not answer: one a missed week away from inactive, one paused, one who missed a first
    # week; the batch opens and seals their state and writes the inactive status on SQLite too.
    from django.conf import settings

    from participants.participation import ParticipationState

    silent = []
    for missed, paused in ((settings.INACTIVE_AFTER_WEEKS - 1, False), (0, True), (0, False)):
        participant = Participant(
            organisation=organisation,
            department=care,
            status="active",
            pseudonym=crypto.new_pseudonym(),
            messages_paused=paused,
            participation=ParticipationState(weeks_without_response=missed).sealed_text(),
        )
        participant.save()
        silent.append(participant)
    # The next (open) week's scores come after them in the file: the rewritten rows cannot simply land in
    # the space the old ones leave, which only secure_delete then clears.
    for _ in range(300):
        record_score(
            pseudonym=crypto.new_pseudonym(),
            week=today,
            value=3,
            organisation_id=organisation.pk,
            department_id=care.pk,
        )
    before = stored(path)[:12]  # the closing week's, stored first
    # Debian builds SQLite with secure_delete on by default; most builds (python.org's, macOS) leave it off.
    with connections["default"].cursor() as cursor:
        cursor.execute("PRAGMA secure_delete = OFF")
    result = weekclose.close_week(organisation_id=organisation.pk, week=week, today=today)
    connections.close_all()
    after = [row for row in stored(path) if row[1] in {p for _id, p, _d in before}]
    print(
        json.dumps(
            {
                "closed": result.closed,
                "responded": result.participation.responded,
                "before": before,
                "after": after,
                "values": [queries.weekly_values_for(p.pseudonym or "") for p in people],
                "participation": [
                    str(participation_of(Participant.objects.get(pk=p.pk)).last_response_week) for p in people
                ],
                "silent": [
                    [
                        str(Participant.objects.get(pk=p.pk).status),
                        participation_of(Participant.objects.get(pk=p.pk)).weeks_without_response,
                    ]
                    for p in silent
                ],
                "limit": settings.INACTIVE_AFTER_WEEKS,
                "outcome": [
                    result.participation.missed,
                    result.participation.not_counted,
                    result.participation.became_inactive,
                ],
                "figures": [
                    [f.department_id, f.count, f.total]
                    for f in queries.frozen_figures(organisation_id=organisation.pk)
                ],
                "file": str(path),
            }
        )
    )


if __name__ == "__main__":
    main()
