"""Server time of the employer's reports (issue #19: the dashboard of an organisation of 10,000 employees in
40 departments with three years of weeks under 200 ms, not growing with the number of raw score rows).

    make bench                       (every benchmark)
    python -m bench.reports          (this one; DATABASE_URL names the server, default 127.0.0.1)
    BENCH_PROFILE=1                  (also: the top costs of the year dashboard of the largest organisation)

Setup (not measured): four organisations to report on, of 1,000 and 10,000 employees, each with one year
(52 weeks) and three years (157 weeks) of closed weeks, in 40 departments of varied sizes (four of them
under 5 people, so folding and complementary suppression have work to do); their employees as participants
(sealed pseudonyms, all in a department); per closed week a ClosedWeek and a sealed WeeklyAggregate for
every department and the organisation, as the week close writes them, from a random week of answers (55-85%
answering). They share one SBI division with SECTOR_OTHERS smaller organisations (the sector comparison);
ELSEWHERE more are in another division (only in "all organisations"). One employer login per organisation.

Measured, per organisation: GET of the dashboard at each level (week, quarter, year) and of the year's CSV,
through Django's test client in this process with DEBUG off and the employer's verified two-factor session.
Each page is first asked once with an empty cache (a fresh cache key prefix: the organisation's cells and
the comparisons are computed, "cold"); once more with an empty cache after scores.reports.prepare_cells,
as the week close's task leaves it ("after a close": the comparisons are computed); then WARMUPS times
unmeasured and REQUESTS times timed (median and p90 of the wall time of the whole request in the server,
no network, and the median CPU time of this process), then once more under CaptureQueriesContext on every
store for the number of SQL queries (warm). "under 200 ms" is judged on the warm median.

Then the raw score rows: the largest organisation gets one score row for every answer behind its frozen
figures (about 1.1 million for 10,000 employees over three years), inserted by PostgreSQL itself from a
pool of properly sealed rows (each row a copy of a pool row's ciphertext under its own random pseudonym: the
reports never open a score, and the table has the rows, the indexes and the size it would have). Its
dashboard is measured again with them: the time and the queries should not change.

Every request appends to the access log (as in production); that log is append-only on PostgreSQL, so
those rows stay in the bench database. Everything else the bench made is removed.
"""

from __future__ import annotations

import contextlib
import cProfile
import datetime as dt
import io
import os
import pstats
import random
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench import bench_organisation, prepare
from bench.casefiles import nearest_rank

DEPARTMENTS = 40
# Departments under 5 people in every organisation reported on (folded into "other departments").
SMALL_DEPARTMENTS = (1, 2, 3, 4)
# (employees, closed weeks) of the organisations reported on.
ORGANISATIONS = ((1_000, 52), (1_000, 157), (10_000, 52), (10_000, 157))
SECTOR_OTHERS = 6
ELSEWHERE = 4
OTHER_DEPARTMENTS = 10
OTHER_SIZES = (80, 2_500)
SECTOR_CODE, OTHER_SECTOR_CODE = "8610", "4120"
ANSWERING = (0.55, 0.85)
WARMUPS = 2
REQUESTS = 20
TARGET_MS = 200.0
PROFILED_REQUESTS = 10
PROFILE_LINES = 30
# Score rows sealed in Python for the pool PostgreSQL copies from.
SCORE_POOL = 2_000
BATCH = 5_000


@dataclass(frozen=True)
class Sizes:
    organisations: tuple[tuple[int, int], ...] = ORGANISATIONS
    departments: int = DEPARTMENTS
    sector_others: int = SECTOR_OTHERS
    elsewhere: int = ELSEWHERE
    other_departments: int = OTHER_DEPARTMENTS
    other_sizes: tuple[int, int] = OTHER_SIZES
    score_pool: int = SCORE_POOL
    warmups: int = WARMUPS
    requests: int = REQUESTS


@dataclass(frozen=True)
class PageFigures:
    """One page's timings in milliseconds (cold first request, warm ones) and SQL queries per store."""

    label: str
    path: str
    cold_ms: float
    cold_queries: int
    after_close_ms: float
    timings_ms: list[float]
    cpu_ms: list[float]
    queries: dict[str, int] = field(default_factory=dict)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.timings_ms)

    @property
    def p90_ms(self) -> float:
        return nearest_rank(self.timings_ms, 0.90)

    @property
    def total_queries(self) -> int:
        return sum(self.queries.values())

    @property
    def under_target(self) -> bool:
        return self.median_ms < TARGET_MS


@dataclass
class Reported:
    """An organisation the bench reports on, its employer login and what it holds."""

    organisation: Any
    employer: Any
    employees: int
    weeks: list[dt.date]
    answers: int  # answers behind its frozen figures: the score rows it would have

    @property
    def label(self) -> str:
        years = round(len(self.weeks) / 52)
        span = f"{years} year{'s' if years > 1 else ''}" if years else f"{len(self.weeks)} weeks"
        return f"{self.employees:,} employees, {span}"


def department_sizes(employees: int, departments: int, rng: random.Random) -> list[int]:
    """``departments`` sizes adding up to ``employees``: SMALL_DEPARTMENTS first, the rest varied (a few
    large, many middling), each at least 5."""
    small = list(SMALL_DEPARTMENTS[: max(0, departments - 1)])
    rest = departments - len(small)
    remaining = employees - sum(small)
    weights = [rng.lognormvariate(0, 0.8) for _ in range(rest)]
    scale = (remaining - 5 * rest) / sum(weights)
    sizes = [5 + int(weight * scale) for weight in weights]
    sizes[0] += remaining - sum(sizes)  # the rounding goes to the first
    return small + sizes


def _closed_weeks(count: int) -> list[dt.date]:
    from scores import weekclose

    last = weekclose.previous_week()
    return [last - dt.timedelta(weeks=back) for back in range(count - 1, -1, -1)]


def _week_counts(size: int, leaning: list[float], rng: random.Random) -> tuple[int, ...]:
    """How many of a group of ``size`` answered 1..5 in a week (the department's own leaning)."""
    rate = rng.uniform(*ANSWERING)
    answering = sum(1 for _ in range(size) if rng.random() < rate)
    counts = [0] * 5
    for value in rng.choices(range(5), weights=leaning, k=answering):
        counts[value] += 1
    return tuple(counts)


def _freeze(
    organisation: Any, departments: list[Any], sizes: list[int], weeks: list[dt.date], rng: random.Random
) -> int:
    """ClosedWeek and WeeklyAggregate rows as the close writes them, from random weeks; the answers in all."""
    from scores.models import ClosedWeek, Figures, WeeklyAggregate

    leanings = [[rng.uniform(0.2, 1.5) for _ in range(5)] for _ in departments]
    rows: list[WeeklyAggregate] = []
    answers = 0
    for week in weeks:
        everyone = [0] * 5
        for department, size, leaning in zip(departments, sizes, leanings, strict=True):
            counts = _week_counts(size, leaning, rng)
            everyone = [a + b for a, b in zip(everyone, counts, strict=True)]
            figures = Figures(
                count=sum(counts),
                total=sum(n * (value + 1) for value, n in enumerate(counts)),
                counts=counts,
                invited=size,
            )
            rows.append(
                WeeklyAggregate(
                    organisation=organisation, department=department, week=week, figures=figures.sealed_text()
                )
            )
        figures = Figures(
            count=sum(everyone),
            total=sum(n * (value + 1) for value, n in enumerate(everyone)),
            counts=tuple(everyone),
            invited=sum(sizes),
        )
        rows.append(
            WeeklyAggregate(
                organisation=organisation, department=None, week=week, figures=figures.sealed_text()
            )
        )
        answers += figures.count
    # bulk_create seals each row's figures bound to its (organisation, department, week).
    WeeklyAggregate.objects.bulk_create(rows, batch_size=BATCH)
    ClosedWeek.objects.bulk_create([ClosedWeek(organisation=organisation, week=week) for week in weeks])
    return answers


def _employer(organisation: Any, username: str) -> Any:
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from participants.models import StaffUser
    from preventicons.roles import Role

    user = StaffUser.objects.create_user(username=username, password=None, organisation=organisation)
    user.groups.add(Group.objects.get_or_create(name=Role.EMPLOYER.value)[0])
    TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    return user


def build_reported(
    organisation: Any, employees: int, weeks: int, sizes: Sizes, rng: random.Random, username: str
) -> Reported:
    from participants.models import Department, Participant
    from preventicons.crypto import new_pseudonym

    organisation.sbi_code = SECTOR_CODE
    organisation.save(update_fields=["sbi_code"])
    departments = Department.objects.bulk_create(
        [Department(organisation=organisation, name=f"Afdeling {i:02d}") for i in range(sizes.departments)]
    )
    headcounts = department_sizes(employees, sizes.departments, rng)
    Participant.objects.bulk_create(
        [
            Participant(
                organisation=organisation,
                department=department,
                status=Participant.Status.ACTIVE,
                pseudonym=new_pseudonym(),
                weekly_channel="work_email",
                was_invited=True,
            )
            for department, headcount in zip(departments, headcounts, strict=True)
            for _ in range(headcount)
        ],
        batch_size=BATCH,
    )
    closed = _closed_weeks(weeks)
    answers = _freeze(organisation, departments, headcounts, closed, rng)
    return Reported(organisation, _employer(organisation, username), employees, closed, answers)


def build_other(organisation: Any, code: str, weeks: int, sizes: Sizes, rng: random.Random) -> None:
    """An organisation only compared with: departments and frozen weeks, no participants."""
    from participants.models import Department

    organisation.sbi_code = code
    organisation.save(update_fields=["sbi_code"])
    departments = Department.objects.bulk_create(
        [Department(organisation=organisation, name=f"Team {i}") for i in range(sizes.other_departments)]
    )
    employees = rng.randint(*sizes.other_sizes)
    headcounts = [employees // len(departments)] * len(departments)
    _freeze(organisation, departments, headcounts, _closed_weeks(weeks), rng)


def add_scores(reported: Reported, pool_size: int, rng: random.Random) -> int:
    """One score row per answer behind the organisation's frozen figures, spread over its closed weeks (as
    the close leaves them: no department), copied by PostgreSQL from a pool of rows sealed here."""
    from django.db import connection

    from scores.models import Score
    from scores.sealing import week_pseudonym

    weeks = reported.weeks
    pool = [
        Score(
            organisation=reported.organisation,
            week=weeks[n % len(weeks)],
            value=rng.randint(1, 5),
            pseudonym=week_pseudonym(secrets.token_hex(16), weeks[n % len(weeks)]),
        )
        for n in range(min(pool_size, reported.answers))
    ]
    Score.objects.bulk_create(pool, batch_size=BATCH)
    copies = reported.answers - len(pool)
    table = Score._meta.db_table
    with connection.cursor() as cursor:
        # Every copy: a new random id and pseudonym, a pool row's week and ciphertext.
        cursor.execute(
            f"""
            WITH pool AS (
                SELECT row_number() OVER (ORDER BY id) - 1 AS n, week, value, organisation_id
                FROM {table} WHERE organisation_id = %s
            ), size AS (SELECT count(*) AS rows FROM pool)
            INSERT INTO {table} (id, week, value, organisation_id, department, pseudonym)
            SELECT gen_random_uuid(), pool.week, pool.value, pool.organisation_id, NULL,
                   md5(random()::text || copy::text)
            FROM generate_series(0, %s - 1) AS copy
            CROSS JOIN size
            JOIN pool ON pool.n = copy %% size.rows
            """,  # the table name is the model's own, the rest parameters
            [reported.organisation.pk, copies],
        )
    vacuum(table)
    return reported.answers


def vacuum(*tables: str) -> None:
    """Fresh planner statistics for what was just inserted, as autovacuum would have them by the time an
    employer looks; skipped inside a transaction (the test suite's), where VACUUM cannot run."""
    from django.db import connection

    if connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def remove_scores(organisation: Any) -> None:
    """All at once: bench_organisation's chunked delete would take minutes for a million rows."""
    from django.db import connection

    from scores.models import Score

    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {Score._meta.db_table} WHERE organisation_id = %s",  # the model's table
            [organisation.pk],
        )


def verified_client(user: Any) -> Any:
    from bench.casefiles import verified_client as client_for

    return client_for(user)


@contextlib.contextmanager
def empty_cache(tag: str) -> Iterator[None]:
    """The cache as configured, under a key prefix of its own: empty at first, nothing else's touched."""
    from django.conf import settings
    from django.test.utils import override_settings

    caches = {
        alias: {**config, "KEY_PREFIX": f"bench-reports-{tag}"} for alias, config in settings.CACHES.items()
    }
    with override_settings(CACHES=caches):
        yield


def _get(client: Any, path: str) -> Callable[[], None]:
    def request() -> None:
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}")
        if response.streaming:
            b"".join(response.streaming_content)

    return request


def _queries(request: Callable[[], None]) -> dict[str, int]:
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from preventicons.dbrouter import ALIASES

    captures = {alias: CaptureQueriesContext(connections[alias]) for alias in ALIASES}
    with contextlib.ExitStack() as stack:
        for capture in captures.values():
            stack.enter_context(capture)
        request()
    return {alias: len(capture.captured_queries) for alias, capture in captures.items()}


def measure(label: str, client: Any, organisation: Any, path: str, sizes: Sizes) -> PageFigures:
    from scores import reports

    request = _get(client, path)
    with empty_cache(secrets.token_hex(6)):
        started = time.perf_counter()
        cold_queries = sum(_queries(request).values())
        cold = (time.perf_counter() - started) * 1000
    with empty_cache(secrets.token_hex(6)):
        # What the week close's task leaves: the organisation's cells decided, the comparisons not.
        reports.prepare_cells(organisation)
        started = time.perf_counter()
        request()
        after_close = (time.perf_counter() - started) * 1000
        for _ in range(sizes.warmups):
            request()
        timings, cpu = [], []
        for _ in range(sizes.requests):
            started, cpu_started = time.perf_counter(), time.process_time()
            request()
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
        queries = _queries(request)
    return PageFigures(label, path, cold, cold_queries, after_close, timings, cpu, queries)


def report(figures: PageFigures) -> None:
    print(
        f"  {figures.label:<44} cold {figures.cold_ms:6.1f} ms ({figures.cold_queries:2d} q)  "
        f"after a close {figures.after_close_ms:6.1f} ms   "
        f"warm median {figures.median_ms:6.1f} ms  p90 {figures.p90_ms:6.1f} ms  "
        f"CPU {statistics.median(figures.cpu_ms):6.1f} ms  queries {figures.total_queries:2d}   "
        f"under {TARGET_MS:.0f} ms: {'yes' if figures.under_target else 'no'}",
        flush=True,
    )


def pages(reported: Reported) -> list[tuple[str, str]]:
    from django.urls import reverse

    from scores.reports import Level

    key = {"organisation_id": reported.organisation.pk}
    found = [
        (f"{reported.label}, {level.value}", reverse("scores:report", kwargs={**key, "level": level.value}))
        for level in Level
    ]
    found.append(
        (f"{reported.label}, year CSV", reverse("scores:report-csv", kwargs={**key, "level": "year"}))
    )
    return found


def profile(client: Any, path: str) -> str:
    request = _get(client, path)
    profiler = cProfile.Profile()
    with empty_cache(secrets.token_hex(6)):
        request()  # the comparisons cached, as for every request but the first
        profiler.enable()
        for _ in range(PROFILED_REQUESTS):
            request()
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    out.write(f"--- {path}: {PROFILED_REQUESTS} warm requests, by own time\n")
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    out.write(f"--- {path}: by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    return out.getvalue()


@dataclass
class Results:
    pages: list[PageFigures]
    # The largest organisation's pages again, with its raw score rows.
    with_scores: list[PageFigures]
    score_rows: int


def run(sizes: Sizes | None = None, *, profiled: bool = False) -> Results:
    """Build, measure, print the figures, remove what was built; the figures."""
    sizes = sizes or Sizes()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import override_settings

    from participants.models import StaffUser

    run_id = secrets.token_hex(4)
    rng = random.Random(run_id)
    results = Results([], [], 0)
    usernames = [f"bench-hr-{run_id}-{n}" for n in range(len(sizes.organisations))]
    longest = max(weeks for _employees, weeks in sizes.organisations)
    with contextlib.ExitStack() as stack:
        started = time.perf_counter()
        reported: list[Reported] = []
        try:
            for n, (employees, weeks) in enumerate(sizes.organisations):
                organisation = stack.enter_context(bench_organisation(f"reports {n}"))
                stack.callback(remove_scores, organisation)
                reported.append(build_reported(organisation, employees, weeks, sizes, rng, usernames[n]))
            for n in range(sizes.sector_others + sizes.elsewhere):
                organisation = stack.enter_context(bench_organisation(f"reports other {n}"))
                code = SECTOR_CODE if n < sizes.sector_others else OTHER_SECTOR_CODE
                build_other(organisation, code, longest, sizes, rng)
            vacuum("scores_weeklyaggregate", "scores_closedweek", "participants_participant")
            print(
                f"  (setup: {len(reported)} organisations reported on, {sizes.departments} departments each "
                f"(sizes varied, {len(SMALL_DEPARTMENTS)} under 5), {sizes.sector_others} more in their SBI "
                f"division and {sizes.elsewhere} elsewhere, in {time.perf_counter() - started:.1f} s)",
                flush=True,
            )
            print(
                f"Employer reports on PostgreSQL {getattr(connection, 'pg_version', 0) // 10000} "
                f"({connection.settings_dict['NAME']}), cache {settings.CACHES['default']['BACKEND']}, "
                f"DEBUG off, test client in process; per page one cold request (empty cache), then "
                f"{sizes.warmups} warm-ups and {sizes.requests} timed requests; queries of a warm request",
                flush=True,
            )
            with override_settings(DEBUG=False, ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
                for target in reported:
                    client = verified_client(target.employer)
                    for label, path in pages(target):
                        results.pages.append(measure(label, client, target.organisation, path, sizes))
                        report(results.pages[-1])
                largest = max(reported, key=lambda target: (target.employees, len(target.weeks)))
                started = time.perf_counter()
                results.score_rows = add_scores(largest, sizes.score_pool, rng)
                print(
                    f"  (the {largest.label} organisation now has {results.score_rows:,} raw score rows, "
                    f"inserted in {time.perf_counter() - started:.1f} s; its pages again:)",
                    flush=True,
                )
                client = verified_client(largest.employer)
                for label, path in pages(largest):
                    results.with_scores.append(
                        measure(f"{label}, with scores", client, largest.organisation, path, sizes)
                    )
                    report(results.with_scores[-1])
                if profiled:
                    print(profile(client, pages(largest)[2][1]), flush=True)
        finally:
            StaffUser.objects.filter(username__in=usernames).delete()
    print("  (bench rows removed, but the access log's: append-only)", flush=True)
    return results


def main() -> None:
    prepare()
    run(profiled=os.environ.get("BENCH_PROFILE", "") not in ("", "0"))


if __name__ == "__main__":
    main()
