"""Server time of the casemanager's two pages: the dashboard with 200 dossiers, and a dossier with three
years of weeks (target: each under 100 ms, median of warm requests).

    make bench                       (every benchmark)
    python -m bench.casefiles        (this one; DATABASE_URL names the server, default 127.0.0.1)
    BENCH_PROFILE=1                  (also: the top costs of each page under cProfile)

Setup (not measured), all through the product's own operations: one organisation, one casemanager (role,
recorded agreement, linked), DOSSIERS active participants with RECENT_WEEKS weekly scores each, who all ask
for help (queued) and are taken up in one batch, which opens their dossiers and gives them to the
casemanager; a note in every NOTE_EVERY-th dossier. The first participant has HISTORY_WEEKS weeks of
scores (three years), LONG_NOTES notes, a trajectory that ended (with held sessions) and one under way.

Measured: GET /dossiers/ and GET /dossiers/<number>/ through Django's test client in this process, with
DEBUG off and a verified two-factor staff session; each page WARMUPS times unmeasured, then REQUESTS times
timed one by one (median, p90, max; wall time of the whole request in the server, no network; and the
median CPU time of this process per request, which on a busy shared machine leaves out the waits for a
core). Then one more request of each under CaptureQueriesContext on every store, for the number of SQL
queries. "under 100 ms" is judged on the median wall time.

Every request appends to the access log (as in production); that log is append-only on PostgreSQL, so
those rows stay in the bench database. Everything else the bench made is removed.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import io
import os
import pstats
import random
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import bench_organisation, prepare

DOSSIERS = 200
RECENT_WEEKS = 8
HISTORY_WEEKS = 157  # three years
LONG_NOTES = 20
NOTE_EVERY = 10
WARMUPS = 3
REQUESTS = 30
TARGET_MS = 100.0
PROFILED_REQUESTS = 10
PROFILE_LINES = 30


@dataclass(frozen=True)
class Sizes:
    dossiers: int = DOSSIERS
    recent_weeks: int = RECENT_WEEKS
    history_weeks: int = HISTORY_WEEKS
    long_notes: int = LONG_NOTES
    note_every: int = NOTE_EVERY
    warmups: int = WARMUPS
    requests: int = REQUESTS


@dataclass(frozen=True)
class PageFigures:
    """One page's timings in milliseconds and its SQL queries per store (one request)."""

    label: str
    path: str
    timings_ms: list[float]
    # This process's CPU time per request (the web side without PostgreSQL): on a shared machine, wall
    # time also counts the waits for a core, CPU time does not.
    cpu_ms: list[float]
    queries: dict[str, int]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.timings_ms)

    @property
    def p90_ms(self) -> float:
        return nearest_rank(self.timings_ms, 0.90)

    @property
    def max_ms(self) -> float:
        return max(self.timings_ms)

    @property
    def under_target(self) -> bool:
        return self.median_ms < TARGET_MS


def nearest_rank(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (the smallest value with at least ``fraction`` of them at or below)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without float surprises at exact ranks
    return ordered[int(rank) - 1]


@dataclass(frozen=True)
class Built:
    casemanager: Any  # participants.models.StaffUser
    numbers: list[str]
    long_number: str


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def casemanager_username(run: str) -> str:
    return f"bench-cm-{run}"


def _casemanager(organisation: Any, run: str) -> Any:
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from participants import casemanagers
    from participants.agreements import record_agreement
    from participants.models import StaffUser
    from preventicons.roles import Role

    user = StaffUser.objects.create_user(username=casemanager_username(run), password=None)
    user.groups.add(Group.objects.get_or_create(name=Role.CASEMANAGER.value)[0])
    TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    record_agreement(casemanager=user, signed_on=timezone.localdate(), signer="Bench", document=run.encode())
    casemanagers.link_casemanager(organisation=organisation, casemanager=user)
    return user


def _weeks(rng: random.Random, count: int) -> list[int]:
    """A plausible run of weekly values 1-5: mostly steady, now and then a drop or a recovery."""
    value = rng.randint(3, 5)
    values = []
    for _ in range(count):
        value = min(5, max(1, value + rng.choice((-2, -1, 0, 0, 0, 0, 1, 1))))
        values.append(value)
    return values


def build(organisation: Any, sizes: Sizes, rng: random.Random, run: str) -> Built:
    """The casemanager and their dossiers, through the real operations (see the module docstring)."""
    from django.utils import timezone

    from casefiles import notes, trajectories
    from casefiles.models import Dossier, ProgressNote
    from participants.models import Department, Participant
    from preventicons import crypto
    from scores import wellbeing
    from scores.submission import record_score

    user = _casemanager(organisation, run)
    department = Department.objects.create(organisation=organisation, name="Bench")
    people = Participant.objects.bulk_create(
        [
            Participant(
                organisation=organisation,
                department=department,
                status=Participant.Status.ACTIVE,
                name=f"Medewerker {i}",
                email=f"medewerker{i}.{run}@example.nl",
                pseudonym=crypto.new_pseudonym(),
                weekly_channel="work_email",
                was_invited=True,
            )
            for i in range(sizes.dossiers)
        ]
    )
    pseudonyms = [str(person.pseudonym) for person in people]
    today = timezone.localdate()
    this_week = _monday(today)
    for index, pseudonym in enumerate(pseudonyms):
        count = sizes.history_weeks if index == 0 else sizes.recent_weeks
        for back, value in enumerate(reversed(_weeks(rng, count))):
            record_score(
                pseudonym=pseudonym,
                week=this_week - dt.timedelta(weeks=back),
                value=value,
                organisation_id=organisation.pk,
                department_id=department.pk,
            )
    for person in people:
        wellbeing.request_help(
            participant=person,
            channel=rng.choice(sorted(wellbeing.CONTACT_CHANNELS)),
            consent_text_version=wellbeing.CONTACT_CONSENT_VERSION,
        )
    wellbeing.take_up_help_requests()
    by_index = {
        dossier.pseudonym_index: dossier
        for dossier in Dossier.objects.filter(
            pseudonym_index__in=[crypto.casefiles_index(pseudonym) for pseudonym in pseudonyms]
        )
    }
    dossiers = [by_index[crypto.casefiles_index(pseudonym)] for pseudonym in pseudonyms]
    assert all(dossier.casemanager_id == user.pk for dossier in dossiers), "dossiers went elsewhere"

    kinds = [kind.value for kind in ProgressNote.Kind]
    for dossier in dossiers[1 :: max(1, sizes.note_every)]:
        notes.add_note(dossier, kind="intake", text="Eerste gesprek gevoerd; afspraken gemaakt.", user=user)
    long = dossiers[0]
    for n in range(sizes.long_notes):
        notes.add_note(
            long,
            kind=kinds[n % len(kinds)] if n else "intake",
            text=f"Gesprek {n + 1}: werkdruk besproken, vervolgafspraak gepland. " * 3,
            user=user,
        )
    # Written to the notes store, as the note batch would by the time anyone reads them.
    notes.take_up_queued_notes(force=True)
    kind = trajectories.kinds()[0][0]
    # A year or so back (at tiny sizes: far enough back to have ended by now).
    started = today - dt.timedelta(weeks=max(10, min(60, sizes.history_weeks // 2)))
    done = trajectories.start_trajectory(long, kind=kind, started_on=started, user=user)
    for n in range(6):
        trajectories.add_session(
            done,
            planned_on=started + dt.timedelta(weeks=n + 1),
            held_on=started + dt.timedelta(weeks=n + 1),
            user=user,
        )
    trajectories.end_trajectory(done, ended_on=started + dt.timedelta(weeks=8), user=user)
    ongoing = trajectories.start_trajectory(
        long, kind=trajectories.kinds()[-1][0], started_on=today - dt.timedelta(weeks=3), user=user
    )
    for n in range(3):
        trajectories.add_session(
            ongoing,
            planned_on=today - dt.timedelta(weeks=3 - n),
            held_on=today - dt.timedelta(weeks=3 - n) if n < 2 else None,
            user=user,
        )
    return Built(
        casemanager=user,
        numbers=[dossier.number for dossier in dossiers],
        long_number=long.number,
    )


def remove(organisation: Any, casemanager_username: str) -> None:
    """What the bench made outside its organisation's own tables (bench_organisation removes those), but
    the access log, which is append-only. Also after a setup that failed half-way."""
    from casefiles import notes
    from casefiles.models import Dossier, ProgressNote
    from participants.models import ConsentRecord, Participant, ProcessingAgreement, StaffUser

    dossiers = list(Dossier.objects.filter(organisation_id=organisation.pk))
    numbers = [dossier.number for dossier in dossiers]
    notes.take_up_queued_notes(force=True)  # a setup that failed half-way may have left notes queued
    subjects = [s for d in dossiers for s in notes.note_subjects(d.number, d.notes_written)]
    ProgressNote.objects.filter(subject__in=subjects).delete()
    Dossier.objects.filter(number__in=numbers).delete()
    people = list(Participant.objects.filter(organisation=organisation).values_list("pk", flat=True))
    ConsentRecord.objects.filter(participant_index__in=list(ConsentRecord.objects.owners(people))).delete()
    ProcessingAgreement.objects.filter(casemanager__username=casemanager_username).delete()
    StaffUser.objects.filter(username=casemanager_username).delete()


def composition(user: Any) -> str:
    """What the dashboard shows in each section (a row appears in every section it belongs to)."""
    from casefiles import assignment, dashboard

    board = dashboard.dashboard_for(assignment.reach_of(user))
    return (
        f"{len(board.new_requests)} new help requests, {len(board.sharp_drops)} sharp drops, "
        f"{len(board.quiet)} quiet, {len(board.all_rows)} in all"
    )


def verified_client(user: Any) -> Any:
    """Django's test client with a staff session that passed both factors (as tests/conftest.py fakes it)."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return client


def _get(client: Any, path: str) -> Callable[[], None]:
    def request() -> None:
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}")

    return request


def measure(label: str, client: Any, path: str, sizes: Sizes) -> PageFigures:
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from preventicons.dbrouter import ALIASES

    request = _get(client, path)
    for _ in range(sizes.warmups):
        request()
    timings = []
    cpu = []
    for _ in range(sizes.requests):
        started, cpu_started = time.perf_counter(), time.process_time()
        request()
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    captures = {alias: CaptureQueriesContext(connections[alias]) for alias in ALIASES}
    for capture in captures.values():
        capture.__enter__()
    try:
        request()
    finally:
        for capture in captures.values():
            capture.__exit__(None, None, None)
    return PageFigures(
        label=label,
        path=path,
        timings_ms=timings,
        cpu_ms=cpu,
        queries={alias: len(capture.captured_queries) for alias, capture in captures.items()},
    )


def profile(label: str, client: Any, path: str) -> str:
    """The top costs of PROFILED_REQUESTS warm requests of the page under cProfile, as text."""
    request = _get(client, path)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(PROFILED_REQUESTS):
        request()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    out.write(f"--- {label}: {PROFILED_REQUESTS} requests, by own time\n")
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    out.write(f"--- {label}: by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    return out.getvalue()


def report(figures: PageFigures) -> None:
    queries = ", ".join(f"{alias} {count}" for alias, count in figures.queries.items())
    print(
        f"  {figures.label:<34} median {figures.median_ms:6.1f} ms  p90 {figures.p90_ms:6.1f} ms  "
        f"max {figures.max_ms:6.1f} ms  (CPU median {statistics.median(figures.cpu_ms):5.1f} ms)  "
        f"queries: {queries}   "
        f"under {TARGET_MS:.0f} ms: {'yes' if figures.under_target else 'no'}",
        flush=True,
    )


def run(sizes: Sizes | None = None, *, profiled: bool = False) -> list[PageFigures]:
    """Build, measure both pages, print the figures, remove what was built; the figures."""
    sizes = sizes or Sizes()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import override_settings
    from django.urls import reverse

    run_id = secrets.token_hex(4)
    rng = random.Random(run_id)
    figures: list[PageFigures] = []
    with bench_organisation("casefiles") as organisation:
        started = time.perf_counter()
        try:
            built = build(organisation, sizes, rng, run_id)
            print(
                f"  (setup: {len(built.numbers)} dossiers through the help-request batch, "
                f"{sizes.recent_weeks} recent weeks each, one of {sizes.history_weeks} weeks with "
                f"{sizes.long_notes} notes and 2 trajectories, in {time.perf_counter() - started:.1f} s)",
                flush=True,
            )
            print(f"  (the dashboard lists {composition(built.casemanager)})", flush=True)
            print(
                f"Casemanager's pages on PostgreSQL {getattr(connection, 'pg_version', 0) // 10000} "
                f"({connection.settings_dict['NAME']}), DEBUG off, test client in process, "
                f"{sizes.warmups} warm-ups then {sizes.requests} timed requests each",
                flush=True,
            )
            # DEBUG off as in production (the bench's settings are the development ones): no query log, and
            # the template engines are rebuilt without debug information. The test client's host allowed.
            with override_settings(DEBUG=False, ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
                client = verified_client(built.casemanager)
                pages = [
                    (f"dashboard, {len(built.numbers)} dossiers", reverse("casefiles:dashboard")),
                    (
                        f"dossier, {sizes.history_weeks} weeks, {sizes.long_notes} notes",
                        reverse("casefiles:dossier", kwargs={"number": built.long_number}),
                    ),
                ]
                for label, path in pages:
                    figures.append(measure(label, client, path, sizes))
                    report(figures[-1])
                if profiled:
                    for label, path in pages:
                        print(profile(label, client, path), flush=True)
                client.logout()
        finally:
            remove(organisation, casemanager_username(run_id))
    print("  (bench rows removed, but the access log's: append-only)", flush=True)
    return figures


def main() -> None:
    prepare()
    run(profiled=os.environ.get("BENCH_PROFILE", "") not in ("", "0"))


if __name__ == "__main__":
    main()
