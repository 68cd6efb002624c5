"""The employer's reports: frozen figures per department and for the organisation, by week, quarter and year,
compared with the sector and with all organisations, after scores.disclosure has decided what may be shown.

Reads frozen aggregates only (WeeklyAggregate, one sealed row per group and closed week), never a score row,
so the time a report takes does not grow with the number of answers. Fixed groupings and calendar periods
only: no free filter and no custom date range, each of which would let two reports be subtracted.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from participants.models import Department, Organisation, StaffUser
from preventicons import crypto
from scores.disclosure import (
    ORGANISATION,
    OTHER,
    Cell,
    ComparedWeek,
    GroupKey,
    Tally,
    Week,
    combine,
    compare_week,
    compared_period,
    decide_week,
    figures_shown,
    within,
)
from scores.models import (
    MINIMUM_REPORT_THRESHOLD,
    ClosedWeek,
    Figures,
    ReportSetting,
    ReportSettingChange,
    WeeklyAggregate,
)
from scores.weekclose import previous_week

ONE_WEEK = dt.timedelta(days=7)
THRESHOLD_SETTING = "threshold"
# The highest threshold an employer can set: above it a department-level report would show next to nothing.
MAXIMUM_REPORT_THRESHOLD = 50
# How long a comparison figure is kept: every close and every settings change makes a new key anyway.
COMPARISON_CACHE_SECONDS = 24 * 3600
# How long an organisation's decided cells are kept: a close or a threshold raise makes a new key anyway
# (see _cells_key).
CELLS_CACHE_SECONDS = 24 * 3600
# In every cache key of this module: bump it when a cached value's shape (Cell, Period) or a rule of
# scores.disclosure changes, so that a deploy never serves cells decided by the code it replaced
# (tests/test_attacks_review12.py pins the rules' code to the format; 4: rule 2's two hard weeks, fb07b8a).
CACHE_FORMAT = 4


class Level(enum.StrEnum):
    WEEK = "week"
    QUARTER = "quarter"
    YEAR = "year"

    @property
    def label(self) -> str:
        return {Level.WEEK: _("Weeks"), Level.QUARTER: _("Quarters"), Level.YEAR: _("Years")}[self]


# How many of the most recent periods a report shows, per level.
SHOWN_PERIODS = {Level.WEEK: 13, Level.QUARTER: 8, Level.YEAR: 3}


@dataclass(frozen=True)
class Period:
    """A calendar period and the closed weeks in it (weeks count where their Thursday falls, as ISO does)."""

    level: Level
    key: str  # "2026-W14", "2026-Q2", "2026"
    weeks: tuple[dt.date, ...]
    complete: bool  # the period has ended and every one of its weeks is closed

    @property
    def label(self) -> str:
        if self.level is Level.WEEK:
            iso_year, number, _weekday = self.weeks[0].isocalendar()
            return _("week %(week)d, %(year)d") % {"week": number, "year": iso_year}
        if self.level is Level.QUARTER:
            year, quarter = self.key.split("-Q")
            text = _("Q%(quarter)s %(year)s") % {"quarter": quarter, "year": year}
        else:
            text = self.key
        return text if self.complete else _("%(period)s (so far)") % {"period": text}


def period_key(week: dt.date, level: Level) -> str:
    thursday = week + dt.timedelta(days=3)
    if level is Level.WEEK:
        year, number, _weekday = week.isocalendar()
        return f"{year}-W{number:02d}"
    if level is Level.QUARTER:
        return f"{thursday.year}-Q{(thursday.month - 1) // 3 + 1}"
    return str(thursday.year)


def _last_week(key: str, level: Level, week: dt.date) -> dt.date:
    """The Monday of the period's last ISO week (``week`` is one of its Mondays)."""
    while period_key(week + ONE_WEEK, level) == key:
        week += ONE_WEEK
    return week


def periods(closed_weeks: Iterable[dt.date], level: Level) -> list[Period]:
    """The most recent SHOWN_PERIODS[level] periods that hold a closed week, oldest first.

    A period is complete once its last week is closed: one that began before the organisation's first
    closed week is complete too, only shorter (its label says nothing of "so far").
    """
    grouped: dict[str, list[dt.date]] = defaultdict(list)
    for week in sorted(closed_weeks):
        grouped[period_key(week, level)].append(week)
    if not grouped:
        return []
    latest = max(max(weeks) for weeks in grouped.values())
    keys = sorted(grouped)[-SHOWN_PERIODS[level] :]
    return [
        Period(
            level=level,
            key=key,
            weeks=tuple(grouped[key]),
            complete=_last_week(key, level, grouped[key][-1]) <= latest,
        )
        for key in keys
    ]


# --- settings ---


def threshold_of(organisation_id: int) -> int:
    setting = ReportSetting.objects.filter(organisation_id=organisation_id).first()
    return setting.threshold if setting else MINIMUM_REPORT_THRESHOLD


def raise_threshold(organisation: Organisation, threshold: int, *, by: StaffUser) -> ReportSettingChange:
    """Raise the organisation's threshold and log who did it (ValueError unless it is higher than now and at
    most MAXIMUM_REPORT_THRESHOLD). Parallel raises queue on the setting's row; the second sees the first."""
    if threshold > MAXIMUM_REPORT_THRESHOLD:
        raise ValueError(f"a threshold above {MAXIMUM_REPORT_THRESHOLD}")
    with transaction.atomic():
        ReportSetting.objects.get_or_create(
            organisation_id=organisation.pk, defaults={"threshold": MINIMUM_REPORT_THRESHOLD}
        )
        setting = ReportSetting.objects.select_for_update().get(organisation_id=organisation.pk)
        if threshold <= setting.threshold:
            raise ValueError("a report threshold can only be raised")
        change = ReportSettingChange.objects.create(
            organisation_id=organisation.pk,
            changed_at=timezone.now(),
            changed_by=by,
            changed_by_name=by.get_username(),
            setting=THRESHOLD_SETTING,
            old_value=str(setting.threshold),
            new_value=str(threshold),
        )
        setting.threshold = threshold
        setting.save(update_fields=["threshold"])
    return change


@dataclass(frozen=True)
class ThresholdChange:
    """A raise of an organisation's report threshold as the notary's ledger records it: not who did it."""

    id: int
    organisation_id: int
    changed_on: dt.date
    old: int
    new: int


def threshold_changes() -> list[ThresholdChange]:
    """Every change of any organisation's report threshold, oldest first; ``changed_on`` in local time."""
    return [
        ThresholdChange(
            id=pk,
            organisation_id=organisation_id,
            changed_on=timezone.localdate(changed_at),
            old=int(old),
            new=int(new),
        )
        for pk, organisation_id, changed_at, old, new in ReportSettingChange.objects.filter(
            setting=THRESHOLD_SETTING
        )
        .order_by("changed_at", "pk")
        .values_list("pk", "organisation_id", "changed_at", "old_value", "new_value")
    ]


def setting_changes(organisation_id: int) -> list[ReportSettingChange]:
    return list(
        ReportSettingChange.objects.filter(organisation_id=organisation_id).order_by("-changed_at", "-pk")
    )


# --- reading frozen figures ---


def _tally(figures: Figures) -> Tally:
    return Tally(
        count=figures.count,
        total=figures.total,
        counts=figures.counts,
        invited=figures.invited,
        listed=figures.listed,
    )


def _opened_rows(
    rows: Iterable[tuple[int, int | None, dt.date, str]],
) -> list[tuple[int, int | None, dt.date, Tally]]:
    """(organisation, department, week, sealed figures) rows opened with one cipher for the column."""
    cipher = crypto.ColumnCipher("field", WeeklyAggregate._meta.db_table, "figures")
    opened = []
    for organisation_id, department_id, week, sealed in rows:
        # NaturalKeySealedField's binding: organisation id, department id ("-" for none), week.
        row = f"{organisation_id}/{'-' if department_id is None else department_id}/{week.isoformat()}"
        opened.append(
            (organisation_id, department_id, week, _tally(Figures.from_text(cipher.open(sealed, row))))
        )
    return opened


def _stored(queryset: Iterable[WeeklyAggregate]) -> Iterable[tuple[int, int | None, dt.date, str]]:
    return queryset.values_list("organisation_id", "department_id", "week", "figures")  # type: ignore[attr-defined]


def decided_weeks(
    organisation_id: int, *, since: dt.date | None = None, threshold: int | None = None
) -> list[Week]:
    """Every closed week of the organisation (from ``since``), decided by scores.disclosure, oldest first.

    ``threshold`` when the caller has just read it (build_report): read here otherwise. A week that ended
    before a raise is also decided under the threshold of then, and shows nothing that did not follow from
    it (disclosure rule 7).
    """
    rows = WeeklyAggregate.objects.filter(organisation_id=organisation_id)
    if since is not None:
        rows = rows.filter(week__gte=since)
    by_week: dict[dt.date, dict[int | None, Tally]] = defaultdict(dict)
    for _organisation, department_id, week, tally in _opened_rows(_stored(rows)):
        by_week[week][department_id] = tally
    if threshold is None:
        threshold = threshold_of(organisation_id)
    when_ended = _thresholds_when_ended(organisation_id)
    decided = []
    for week in sorted(by_week):
        groups = by_week[week]
        if None not in groups:
            continue  # a week is frozen in one transaction: never without its organisation-wide row
        departments = {key: tally for key, tally in groups.items() if key is not None}
        then = when_ended(organisation_id, week)
        under = {
            limit: decide_week(
                week,
                organisation=groups[None],
                departments=departments,
                threshold=limit,
                # Never from the participants table: every row of the employer's list names a department
                # (the import refuses one without), and the rows in none are those a stop or the
                # anonymisation shredded before participants 0025 (since, they keep it), so a report
                # reading it would show the employer that someone stopped. The week's own links and
                # answers say whether "other departments" takes in people in no department
                # (disclosure.decide_week).
                department_less=False,
            )
            for limit in {threshold, then}
        }
        # A week that ended before a raise shows nothing it did not show under the threshold of then: the
        # raise regroups it, and the reports of before and after must not give together what neither gave.
        decided.append(under[threshold] if then == threshold else within(under[threshold], under[then]))
    return decided


def _thresholds_when_ended(organisation_id: int | None = None) -> Callable[[int, dt.date], int]:
    """Each organisation's threshold at the end of a week (when it could first be closed and shown), from
    the log of changes (of one organisation, or all): every report of the week since shows only what that
    threshold showed, and comparisons count the organisation by it."""
    changes = ReportSettingChange.objects.filter(setting=THRESHOLD_SETTING)
    if organisation_id is not None:
        changes = changes.filter(organisation_id=organisation_id)
    logged: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for changed_by, changed_at, new_value in changes.order_by("changed_at", "pk").values_list(
        "organisation_id", "changed_at", "new_value"
    ):
        logged[changed_by].append((changed_at, int(new_value)))

    def threshold_at(organisation: int, week: dt.date) -> int:
        ended = timezone.make_aware(dt.datetime.combine(week + ONE_WEEK, dt.time.min))
        threshold = MINIMUM_REPORT_THRESHOLD
        for changed_at, new_value in logged.get(organisation, []):
            if changed_at >= ended:
                break
            threshold = new_value
        return threshold

    return threshold_at


# --- comparisons ---


def sector_of(organisation: Organisation) -> str:
    """The SBI division an organisation is compared within (the code's first two digits), "" without one."""
    return organisation.sbi_code[:2] if organisation.sbi_code else ""


def _comparison_version() -> str:
    """Changes whenever a comparison figure can: a week closed anywhere (or an organisation's weeks removed),
    a threshold changed anywhere, an organisation's SBI code set or changed, a new week ended
    (_settled_weeks).

    The latest organisation-wide figures' ciphertext is in it for its random nonce: ids and counts repeat
    where a database is restored or made anew (as the test suite's is) while the cache lives on.
    """
    closed = ClosedWeek.objects.aggregate(count=Count("pk"), last=Max("pk"))
    latest = (
        WeeklyAggregate.objects.filter(department__isnull=True)
        .order_by("-pk")
        .values_list("figures", flat=True)
        .first()
    )
    changed = ReportSettingChange.objects.aggregate(last=Max("pk"))["last"]
    sectors = hashlib.sha256(
        repr(list(Organisation.objects.order_by("pk").values_list("pk", "sbi_code"))).encode()
    )
    sectors.update(str(latest).encode())
    # The last ended week: until an organisation that has closed none closes it, it is not settled.
    last_ended = previous_week()
    return f"{closed['count']}-{closed['last']}-{changed}-{last_ended.isoformat()}-{sectors.hexdigest()}"


def _divisions(since: dt.date) -> dict[tuple[int, dt.date], str]:
    """Each organisation's SBI division per week from ``since``, as it was when it closed the week (today's
    where that was not recorded): a code set or changed later moves no past week between sums."""
    today = {pk: code[:2] for pk, code in Organisation.objects.values_list("pk", "sbi_code")}
    return {
        (organisation_id, week): today.get(organisation_id, "") if division is None else division
        for organisation_id, week, division in ClosedWeek.objects.filter(week__gte=since).values_list(
            "organisation_id", "week", "division"
        )
    }


def _organisation_figures(*, since: dt.date, version: str) -> dict[int, dict[dt.date, tuple[str, Tally]]]:
    """Every organisation's organisation-wide weekly figures from ``since`` that its own employer was shown
    (under its threshold when the week ended): id -> {week: (SBI division when it closed the week, figures)}.

    Shared by every employer's comparisons and cached per version: each dashboard would otherwise open the
    organisation-wide rows of every organisation, a cost that grew with the square of their number.
    """
    key = f"reports:organisations:v{CACHE_FORMAT}:{since.isoformat()}:{version}"
    cached: dict[int, dict[dt.date, tuple[str, Tally]]] | None = cache.get(key)
    if cached is not None:
        return cached
    divisions = _divisions(since)
    when_ended = _thresholds_when_ended()
    rows = WeeklyAggregate.objects.filter(department__isnull=True, week__gte=since)
    figures: dict[int, dict[dt.date, tuple[str, Tally]]] = {}
    for organisation_id, _department, week, tally in _opened_rows(_stored(rows)):
        entry = figures.setdefault(organisation_id, {})
        if figures_shown(tally, when_ended(organisation_id, week)):
            entry[week] = (divisions.get((organisation_id, week), ""), tally)
    cache.set(key, figures, COMPARISON_CACHE_SECONDS)
    return figures


@dataclass(frozen=True)
class _Closes:
    """Each organisation's latest closed week (None: it has closed none yet), read once per comparison before
    any figure: everything it calls settled was committed before the figures are read (_settled_weeks)."""

    latest: dict[int, dt.date | None]

    @classmethod
    def read(cls) -> _Closes:
        latest: dict[int, dt.date | None] = dict.fromkeys(Organisation.objects.values_list("pk", flat=True))
        latest.update(
            ClosedWeek.objects.values("organisation_id")
            .annotate(latest=Max("week"))
            .values_list("organisation_id", "latest")
        )
        return cls(latest)

    @property
    def stamp(self) -> str:
        return hashlib.sha256(repr(sorted(self.latest.items())).encode()).hexdigest()[:16]


def _settled_weeks(weeks: Iterable[dt.date], closes: _Closes) -> set[dt.date]:
    """The weeks among ``weeks`` that no organisation's close can still add to (rule 6).

    The beat closes the organisations one after another, each in its own transaction, and one whose close
    failed catches up later: a comparison read in between would gain one organisation when it closes, and
    the figures before and after would differ by exactly that organisation's. Each organisation closes its
    weeks in order without gaps, from the week that had just ended when it first closed one: a week is
    settled when every organisation has closed it or a later one, or (one that has closed none yet) when
    the week is older than the last ended week, which is the only one its first close can take. The
    figures must be read after ``closes`` (comparisons() keys their cache by its stamp), or a close that
    commits in between would be settled here and missing from them.
    """
    last_ended = previous_week()
    closed = [latest for latest in closes.latest.values() if latest is not None]
    never_closed = len(closed) < len(closes.latest)
    earliest_latest = min(closed, default=None)
    return {
        week
        for week in weeks
        if (earliest_latest is None or earliest_latest >= week) and not (never_closed and week >= last_ended)
    }


def comparisons(
    organisation: Organisation, shown: Sequence[Period], *, version: str | None = None
) -> tuple[list[Cell] | None, list[Cell]]:
    """The sector's cell (None without a sector to compare with) and all organisations' cell for each period.

    ``version``: _comparison_version(), when the caller has read it already.
    """
    if not shown:
        return (None if not sector_of(organisation) else []), []
    # Read first: what it calls settled is then in every figure read below (see _settled_weeks).
    closes = _Closes.read()
    version = f"{version or _comparison_version()}-{closes.stamp}"
    key = (
        f"reports:comparison:v{CACHE_FORMAT}:{organisation.pk}:{shown[0].level}:{shown[0].key}-{shown[-1].key}:"
        f"{version}"
    )
    cached: tuple[list[Cell] | None, list[Cell]] | None = cache.get(key)
    if cached is not None:
        return cached
    figures = _organisation_figures(since=shown[0].weeks[0], version=version)
    # The sector of each week as the organisation's own division when it closed it (today's if unrecorded).
    division = sector_of(organisation)
    own = {
        week: division if recorded is None else recorded
        for week, recorded in ClosedWeek.objects.filter(
            organisation=organisation, week__gte=shown[0].weeks[0]
        ).values_list("week", "division")
    }
    settled = _settled_weeks((week for period in shown for week in period.weeks), closes)
    compared: dict[dt.date, ComparedWeek] = {}
    for period in shown:
        for week in period.weeks:
            if week not in settled:
                compared[week] = ComparedWeek(week=week, sector=None, everyone=None, waiting=True)
                continue
            sector: dict[int, Tally] = {}
            outside: dict[int, Tally] = {}
            ours = own.get(week, division)
            for other, weekly in figures.items():
                if other == organisation.pk or week not in weekly:
                    continue
                other_division, tally = weekly[week]
                (sector if ours and other_division == ours else outside)[other] = tally
            compared[week] = compare_week(week, sector=sector, outside=outside)
    result = (
        [compared_period(period.weeks, compared, sector=True) for period in shown] if division else None,
        [compared_period(period.weeks, compared, sector=False) for period in shown],
    )
    cache.set(key, result, COMPARISON_CACHE_SECONDS)
    return result


# --- the report ---


@dataclass(frozen=True)
class Row:
    """One group's cells, one per period (None: the group had no week in that period)."""

    key: GroupKey
    label: str
    cells: list[Cell | None]

    @property
    def is_organisation(self) -> bool:
        return self.key == ORGANISATION


@dataclass(frozen=True)
class Report:
    organisation: Organisation
    level: Level
    threshold: int
    periods: list[Period]
    rows: list[Row]
    sector: list[Cell] | None  # None: no SBI code to compare with
    everyone: list[Cell]

    @property
    def latest(self) -> Period | None:
        return self.periods[-1] if self.periods else None


def _labels(organisation: Organisation, keys: Iterable[GroupKey]) -> dict[GroupKey, str]:
    names = dict(Department.objects.filter(organisation=organisation).values_list("pk", "name"))
    labels: dict[GroupKey, str] = {}
    for key in keys:
        if key == ORGANISATION:
            labels[key] = _("Whole organisation")
        elif key == OTHER:
            labels[key] = _("Other departments")
        else:
            labels[key] = names.get(int(key), _("Removed department"))
    return labels


def _row_order(keys: Iterable[GroupKey], labels: Mapping[GroupKey, str]) -> list[GroupKey]:
    departments = sorted((key for key in keys if isinstance(key, int)), key=lambda key: (labels[key], key))
    ordered: list[GroupKey] = [ORGANISATION, *departments]
    if OTHER in keys:
        ordered.append(OTHER)
    return ordered


def _decided_cells(
    organisation: Organisation, shown: Sequence[Period], *, threshold: int
) -> dict[GroupKey, list[Cell | None]]:
    """Each group's cell per shown period (rule 5 over the decided weeks)."""
    weeks = decided_weeks(organisation.pk, since=shown[0].weeks[0], threshold=threshold)
    by_week = {week.week: week for week in weeks}
    keys: set[GroupKey] = set()
    for week in weeks:
        keys.update(week.cells)
    return {
        key: [combine(key, [by_week[week] for week in period.weeks if week in by_week]) for period in shown]
        for key in keys
    }


def _cells_key(organisation: Organisation, shown: Sequence[Period], *, threshold: int) -> str:
    """Everything the decided cells depend on, so that no change has to remember to clear them.

    The frozen figures: a week's aggregates are written in one transaction with its ClosedWeek and never
    rewritten, so the organisation-wide rows' ciphertexts of the shown weeks stand for all of them. Their
    random nonces make the key differ for every close, also where ids repeat (a database restored or made
    anew, as the test suite's is, while the cache lives on). The rules' other inputs: the threshold (only
    ever raised) and its history (rule 7), which the last logged change stands for. Department names are
    not in the cells: the labels are read for every request.
    """
    rows = WeeklyAggregate.objects.filter(
        organisation_id=organisation.pk, department__isnull=True, week__gte=shown[0].weeks[0]
    ).order_by("week")
    last_change = ReportSettingChange.objects.filter(organisation_id=organisation.pk).aggregate(
        last=Max("pk")
    )["last"]
    frozen = hashlib.sha256()
    for week, sealed in rows.values_list("week", "figures"):
        frozen.update(f"{week.isoformat()}:{sealed};".encode())
    return (
        f"reports:cells:v{CACHE_FORMAT}:{organisation.pk}:{shown[0].level}:{shown[0].key}-{shown[-1].key}:"
        f"{threshold}:{last_change}:{frozen.hexdigest()}"
    )


def _cells(
    organisation: Organisation, shown: Sequence[Period], *, threshold: int
) -> dict[GroupKey, list[Cell | None]]:
    """The decided cells of these periods, from the cache when nothing they depend on has changed."""
    cache_key = _cells_key(organisation, shown, threshold=threshold)
    cells: dict[GroupKey, list[Cell | None]] | None = cache.get(cache_key)
    if cells is None:
        cells = _decided_cells(organisation, shown, threshold=threshold)
        cache.set(cache_key, cells, CELLS_CACHE_SECONDS)
    return cells


def prepare_cells(organisation: Organisation) -> None:
    """Decide the cells of every level now (after a close), so that the first dashboard after it does not
    open three years of frozen figures while the employer waits. Only the organisation's own cells: the
    comparisons change with every organisation's close and are computed on the first request."""
    closed = list(ClosedWeek.objects.filter(organisation=organisation).values_list("week", flat=True))
    threshold = threshold_of(organisation.pk)
    for level in Level:
        shown = periods(closed, level)
        if shown:
            _cells(organisation, shown, threshold=threshold)


def build_report(organisation: Organisation, level: Level) -> Report:
    """The report of one level: its cells decided once per closed week and threshold history (cached, see
    _cells_key), its labels read fresh, its comparisons from comparisons()."""
    closed = ClosedWeek.objects.filter(organisation=organisation).values_list("week", flat=True)
    shown = periods(closed, level)
    threshold = threshold_of(organisation.pk)
    if not shown:
        return Report(organisation, level, threshold, [], [], None, [])
    cells = _cells(organisation, shown, threshold=threshold)
    labels = _labels(organisation, cells)
    sector, everyone = comparisons(organisation, shown)
    rows = [Row(key=key, label=labels[key], cells=cells[key]) for key in _row_order(cells, labels)]
    return Report(
        organisation=organisation,
        level=level,
        threshold=threshold,
        periods=shown,
        rows=rows,
        sector=sector,
        everyone=everyone,
    )
