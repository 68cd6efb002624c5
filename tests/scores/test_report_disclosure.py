"""The suppression engine (scores.disclosure) against what an employer could compute from everything it is
ever shown: no withheld group's count or sum lies in the linear span of the published ones, no group under the
threshold shows a number, and the homogeneity rule is exactly what it says, checked by brute force.

Pure computation, no database: organisations are generated with a seeded random generator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from fractions import Fraction

import pytest

from scores import disclosure
from scores.disclosure import (
    NO_DEPARTMENT,
    ORGANISATION,
    OTHER,
    Cell,
    GroupKey,
    Shown,
    Tally,
    Week,
    add_up,
    count_shown,
    figures_shown,
)
from scores.reports import Level, period_key, periods

FIRST_MONDAY = dt.date(2025, 11, 3)  # Q4 2025, so 30 to 60 weeks reach into Q1-Q4 2026 and two years
SEEDS = (1, 2, 3, 4, 5, 6)

# An atom is the smallest group an employer can name: (organisation, department or NO_DEPARTMENT, week).
Atom = tuple[int, int | str, dt.date]
Vector = frozenset[Atom]


# --- generated organisations ------------------------------------------------------------------------------


def tally_of(values: Sequence[int], *, invited: int) -> Tally:
    counts = [0] * 5
    for value in values:
        counts[value - 1] += 1
    return Tally(count=len(values), total=sum(values), counts=tuple(counts), invited=invited)


def answers(rng: random.Random, people: int, mood: str) -> list[int]:
    """This week's answers of a group of ``people``: participation varies, and some groups answer (nearly)
    alike or have (nearly) all hard weeks, which rule 2 is about."""
    answered = sum(rng.random() < rng.uniform(0.3, 1.0) for _person in range(people))
    if mood == "alike" and answered:
        common = rng.randint(1, 5)
        values = [common] * answered
        if rng.random() < 0.5:
            values[0] = rng.randint(1, 5)  # all but one alike
        return values
    if mood == "hard":
        return [rng.choice((1, 1, 2, 2, 3)) for _answer in range(answered)]
    return [rng.randint(1, 5) for _answer in range(answered)]


@dataclasses.dataclass
class GeneratedOrganisation:
    id: int
    threshold: int
    department_less: bool
    weeks: list[Week]


def generate(
    rng: random.Random, organisation_id: int, *, threshold: int | None = None
) -> GeneratedOrganisation:
    """An organisation of 2 to 6 departments of 1 to 30 people (more of them small), maybe people in no
    department, over 30 to 60 weeks; a department may start late or be removed part-way. Some organisations
    had people in no department only in their first weeks. Decided as the reports decide (scores.reports):
    never from today's list (``department_less`` False), only from each week's own links and answers."""
    if threshold is None:
        threshold = rng.choice((5, 5, 5, 7))
    sizes = {
        organisation_id * 100 + number: rng.choice(
            (rng.randint(1, 8), rng.randint(4, 12), rng.randint(1, 30))
        )
        for number in range(rng.randint(2, 6))
    }
    number_of_weeks = rng.randint(30, 60)
    lifetimes = {}
    for department in sizes:
        start, end = 0, number_of_weeks
        if rng.random() < 0.2:
            start = rng.randint(1, number_of_weeks // 2)
        elif rng.random() < 0.2:
            end = rng.randint(number_of_weeks // 2, number_of_weeks - 1)
        lifetimes[department] = (start, end)
    department_less = rng.random() < 0.5
    without_department = rng.randint(1, 6) if department_less else 0
    # Until this week people without a department were on the list; after it they all have one.
    assigned = number_of_weeks
    if not department_less and rng.random() < 0.5:
        assigned, without_department = rng.randint(3, number_of_weeks // 2), rng.randint(1, 3)
    moods = {department: rng.choice(("mixed", "mixed", "alike", "hard")) for department in sizes}
    decided = []
    for number in range(number_of_weeks):
        week = FIRST_MONDAY + dt.timedelta(weeks=number)
        departments = {}
        for department, people in sizes.items():
            start, end = lifetimes[department]
            if start <= number < end:
                mood = moods[department] if rng.random() < 0.8 else "mixed"
                departments[department] = tally_of(answers(rng, people, mood), invited=people)
        listed = without_department if number < assigned else 0
        nobody = tally_of(answers(rng, listed, "mixed"), invited=listed)
        organisation = add_up(departments.values()) + nobody
        decided.append(
            disclosure.decide_week(
                week,
                organisation=organisation,
                departments=departments,
                threshold=threshold,
                department_less=False,
            )
        )
    return GeneratedOrganisation(organisation_id, threshold, False, decided)


def sector(seed: int, size: int = 4) -> list[GeneratedOrganisation]:
    rng = random.Random(seed)
    return [generate(rng, seed * 10 + number) for number in range(size)]


# --- what is published ------------------------------------------------------------------------------------

COUNTS, SUMS = "counts", "sums"
LAYERS = (COUNTS, SUMS)


def published_at(cell: Cell, layer: str) -> bool:
    """The counts layer: every cell with a count. The sums layer (sum of answers and number of hard weeks,
    which the average and the share of hard weeks give away): every cell with figures."""
    return cell.answers is not None if layer == COUNTS else cell.shown is Shown.FIGURES


def week_vector(organisation: GeneratedOrganisation, week: Week, group: GroupKey) -> Vector:
    return frozenset((organisation.id, member, week.week) for member in week.cells[group].members)


def without_department(week: Week) -> Tally:
    """The answers (and links) of people in no department: the organisation minus its departments."""
    departments = [key for key in week.tallies if isinstance(key, int)]
    return week.tallies[ORGANISATION] - add_up(week.tallies[key] for key in departments)


def true_count(organisation: GeneratedOrganisation, vector: Vector) -> int:
    by_week = {week.week: week for week in organisation.weeks}
    total = 0
    for _organisation, member, week in vector:
        tallies = by_week[week].tallies
        if member == NO_DEPARTMENT:
            total += without_department(by_week[week]).count
        else:
            total += tallies[member].count
    return total


@dataclasses.dataclass
class Publication:
    """Everything shown (per layer, as vectors over atoms) and every group that must stay withheld."""

    published: dict[str, set[Vector]] = dataclasses.field(default_factory=lambda: defaultdict(set))
    withheld: dict[str, set[Vector]] = dataclasses.field(default_factory=lambda: defaultdict(set))
    # Atoms everyone knows are empty: "no department" in a week when the list had nobody without one.
    known_empty: set[Atom] = dataclasses.field(default_factory=set)


def period_cells(
    organisation: GeneratedOrganisation,
) -> Iterable[tuple[GroupKey, Cell, Vector]]:
    """Every cell a report ever shows: each week, and each quarter and year as it stood after every closed
    week of it (a period in progress is shown "so far"), grouped as scores.reports groups them."""
    closed = [week.week for week in organisation.weeks]
    by_week = {week.week: week for week in organisation.weeks}
    groups = {key for week in organisation.weeks for key in week.cells}
    for level in Level:
        grouped: dict[str, list[dt.date]] = defaultdict(list)
        for week in closed:
            grouped[period_key(week, level)].append(week)
        # The grouping is the one the report uses for its most recent periods.
        for period in periods(closed, level):
            assert grouped[period.key] == list(period.weeks)
        for weeks in grouped.values():
            for end in range(1, len(weeks) + 1):
                so_far = [by_week[week] for week in weeks[:end]]
                for group in groups:
                    cell = disclosure.combine(group, so_far)
                    if cell is None:
                        continue
                    vector = frozenset().union(
                        *(week_vector(organisation, week, group) for week in so_far if group in week.cells)
                    )
                    yield group, cell, vector


def publication(organisations: Sequence[GeneratedOrganisation], *, compared: bool = True) -> Publication:
    """What these organisations' employers see together (with ``compared``, the comparisons too), and what
    each must not be able to compute."""
    result = Publication()
    for organisation in organisations:
        for _group, cell, vector in period_cells(organisation):
            if cell.answers is not None:
                assert cell.answers == true_count(organisation, vector), "a cell's members are not its sum"
            for layer in LAYERS:
                (result.published if published_at(cell, layer) else result.withheld)[layer].add(vector)
        for week in organisation.weeks:
            atom = (organisation.id, NO_DEPARTMENT, week.week)
            if without_department(week).invited == 0:
                result.known_empty.add(atom)
                continue
            # The people in no department on their own: withheld unless they are all of "other departments".
            other = week.cells.get(OTHER)
            for layer in LAYERS:
                if other is None or not published_at(other, layer) or other.members != {NO_DEPARTMENT}:
                    result.withheld[layer].add(frozenset({atom}))
    if compared:
        add_comparisons(organisations, result)
    return result


def add_comparisons(organisations: Sequence[GeneratedOrganisation], result: Publication) -> None:
    """Each organisation is shown the others' figures for every week and every period so far (rule 6), as
    scores.reports.comparisons decides them: the generated organisations make one sector, so the sector's
    figure and all organisations' are the same sums."""
    by_id = {organisation.id: organisation for organisation in organisations}
    for organisation in organisations:
        compared: dict[dt.date, disclosure.ComparedWeek] = {}
        included: dict[dt.date, dict[int, Week]] = {}
        for mine in organisation.weeks:
            shown: dict[int, Week] = {}
            for candidate in organisations:
                decided = next((each for each in candidate.weeks if each.week == mine.week), None)
                if (
                    candidate.id != organisation.id
                    and decided is not None
                    and disclosure.figures_shown(decided.tallies[ORGANISATION], candidate.threshold)
                ):
                    shown[candidate.id] = decided
            included[mine.week] = shown
            compared[mine.week] = disclosure.compare_week(
                mine.week,
                sector={key: decided.tallies[ORGANISATION] for key, decided in shown.items()},
                outside={},
            )
        closed = [each.week for each in organisation.weeks]
        for level in Level:
            grouped: dict[str, list[dt.date]] = defaultdict(list)
            for monday in closed:
                grouped[period_key(monday, level)].append(monday)
            for weeks in grouped.values():
                for end in range(1, len(weeks) + 1):
                    so_far = weeks[:end]
                    for sector in (True, False):
                        cell = disclosure.compared_period(so_far, compared, sector=sector)
                        if cell.shown is Shown.NOTHING:
                            continue
                        vector: set[Atom] = set()
                        count = 0
                        for monday in so_far:
                            for other_id, decided in included[monday].items():
                                vector |= week_vector(by_id[other_id], decided, ORGANISATION)
                                count += decided.tallies[ORGANISATION].count
                        assert cell.answers == count, (
                            "the comparison is not the sum of the organisations it names"
                        )
                        for layer in LAYERS:
                            result.published[layer].add(frozenset(vector))


def test_all_organisations_minus_the_sector_never_names_one_or_two_organisations() -> None:
    """The difference of a week's two comparisons is the rest of the organisations: shown only when it is
    nobody or at least three of them, else all organisations' figure is withheld."""
    figures = {number: tally_of([2, 3, 4, 4, 5], invited=6) for number in range(6)}
    sector = {number: figures[number] for number in range(3)}
    for rest in range(4):
        outside = {number: figures[number] for number in range(3, 3 + rest)}
        compared = disclosure.compare_week(FIRST_MONDAY, sector=sector, outside=outside)
        assert compared.sector is not None
        assert (compared.everyone is not None) is (rest in (0, 3)), rest
    # Without a sector figure, all organisations needs only three in all.
    compared = disclosure.compare_week(
        FIRST_MONDAY, sector={0: figures[0]}, outside={1: figures[1], 2: figures[2]}
    )
    assert compared.sector is None and compared.everyone is not None


def test_a_period_comparison_is_shown_only_when_every_week_of_it_was() -> None:
    three = {number: tally_of([2, 3, 4, 4, 5], invited=6) for number in range(3)}
    weeks = [FIRST_MONDAY + dt.timedelta(weeks=n) for n in range(3)]
    compared = {week: disclosure.compare_week(week, sector=three, outside={}) for week in weeks}
    assert disclosure.compared_period(weeks, compared, sector=True).answers == 45
    compared[weeks[1]] = disclosure.compare_week(weeks[1], sector={0: three[0], 1: three[1]}, outside={})
    assert disclosure.compared_period(weeks, compared, sector=True).shown is Shown.NOTHING
    assert disclosure.compared_period(weeks[:1], compared, sector=True).answers == 15


# --- the linear algebra -----------------------------------------------------------------------------------


class Span:
    """The span over the rationals of 0/1 vectors, by exact Gaussian elimination (fractions, no rounding).

    Exact rather than modulo a prime: over GF(p) a combination whose determinant p divides disappears, so a
    vector that is in the rational span could look outside it there, and a leak would be missed. With
    fractions "not in the span" is a proof. Rows are sparse (dicts), each kept with a leading 1 on its
    highest atom, so reducing a vector only ever steps down through its own atoms.
    """

    def __init__(self, atoms: Iterable[Atom]) -> None:
        self.index = {
            atom: number
            for number, atom in enumerate(sorted(atoms, key=lambda atom: (atom[2], atom[0], str(atom[1]))))
        }
        self.rows: dict[int, dict[int, Fraction]] = {}

    def _reduce(self, vector: Vector) -> dict[int, Fraction]:
        row = {self.index[atom]: Fraction(1) for atom in vector}
        while row:
            lead = max(row)
            basis = self.rows.get(lead)
            if basis is None:
                return row
            factor = row[lead]
            for column, value in basis.items():
                updated = row.get(column, Fraction(0)) - factor * value
                if updated:
                    row[column] = updated
                else:
                    row.pop(column, None)
        return row

    def add(self, vector: Vector) -> None:
        row = self._reduce(vector)
        if row:
            lead = max(row)
            factor = row[lead]
            self.rows[lead] = {column: value / factor for column, value in row.items()}

    def __contains__(self, vector: Vector) -> bool:
        return not self._reduce(vector)


def span_of(result: Publication, layer: str, atoms: set[Atom]) -> Span:
    span = Span(atoms)
    for atom in result.known_empty:
        span.add(frozenset({atom}))
    for vector in sorted(result.published[layer], key=len):
        span.add(vector)
    return span


def leaks(
    result: Publication, *, first: bool = False, known_before: Publication | None = None
) -> dict[str, list[Vector]]:
    """Per layer, the withheld groups whose figure follows from the published ones by sums and differences
    (with ``first``, stop at the first one; with ``known_before``, leave out those that already followed
    from that earlier publication alone)."""
    found: dict[str, list[Vector]] = {}
    for layer in LAYERS:
        atoms = set(result.known_empty)
        for vector in itertools.chain(result.published[layer], result.withheld[layer]):
            atoms |= vector
        span = span_of(result, layer, atoms)
        before = span_of(known_before, layer, atoms) if known_before is not None else None
        found[layer] = []
        for vector in sorted(result.withheld[layer], key=len):
            if not vector or vector <= result.known_empty or vector not in span:
                continue
            if before is not None and vector in before:
                continue
            found[layer].append(vector)
            if first:
                return found
    return found


# --- the span tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_no_withheld_count_or_sum_is_a_combination_of_everything_the_employers_of_a_sector_see(
    seed: int,
) -> None:
    organisations = sector(seed)
    result = publication(organisations)
    # The generated organisations exercise what the rules are about.
    reasons = {
        cell.why
        for organisation in organisations
        for week in organisation.weeks
        for cell in week.cells.values()
    }
    assert {disclosure.Why.FEW, disclosure.Why.FOLDED} <= reasons
    assert result.withheld[COUNTS] and result.withheld[SUMS]
    assert leaks(result) == {COUNTS: [], SUMS: []}


def any_leak(seeds: Iterable[int]) -> bool:
    return any(any(leaks(publication(sector(seed)), first=True).values()) for seed in seeds)


def test_without_complementary_suppression_the_span_check_finds_a_withheld_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check is not vacuous: withholding only the small groups lets the remainder give them away."""
    monkeypatch.setattr(
        disclosure, "_complement", lambda withheld, children, passes, threshold: set(withheld)
    )
    assert any_leak(SEEDS)


def redecided(organisation: GeneratedOrganisation, threshold: int) -> GeneratedOrganisation:
    """The same frozen weeks decided again under another threshold, as a report does after a raise."""
    weeks = [
        disclosure.decide_week(
            week.week,
            organisation=week.tallies[ORGANISATION],
            departments={key: tally for key, tally in week.tallies.items() if isinstance(key, int)},
            threshold=threshold,
            department_less=organisation.department_less,
        )
        for week in organisation.weeks
    ]
    return GeneratedOrganisation(organisation.id, threshold, organisation.department_less, weeks)


def leaks_across_a_change(seed: int, old: int, new: int, *, restrict: bool = True) -> dict[str, list[Vector]]:
    """What the reports under ``old`` (up to a change of threshold) and those under ``new`` (every week since,
    and again every earlier week) together give of a week's group that neither gave on its own.

    Only a single week's groups are checked: a period that spans a raise is withheld under the new threshold
    when one of its earlier weeks was folded, yet every week of it was shown at some time."""
    rng = random.Random(seed)
    found: dict[str, list[Vector]] = {COUNTS: [], SUMS: []}
    for number in range(3):
        organisation = redecided(generate(rng, seed * 10 + number), old)
        changed_at = rng.randint(5, len(organisation.weeks) - 5)
        before = publication(
            [dataclasses.replace(organisation, weeks=organisation.weeks[:changed_at])], compared=False
        )
        # Weeks closed before the change show under the new threshold only what they showed under the old.
        raised = redecided(organisation, new)
        raised.weeks = [
            disclosure.within(week, first) if restrict and number < changed_at else week
            for number, (week, first) in enumerate(zip(raised.weeks, organisation.weeks, strict=True))
        ]
        after = publication([raised], compared=False)
        together = Publication(known_empty=before.known_empty | after.known_empty)
        for layer in LAYERS:
            together.published[layer] = before.published[layer] | after.published[layer]
            together.withheld[layer] = {
                vector
                for vector in before.withheld[layer] | after.withheld[layer]
                if len({week for _organisation, _member, week in vector}) == 1
            }
        for layer, vectors in leaks(together, known_before=before).items():
            found[layer] += vectors
    return found


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_reports_before_and_after_a_raise_of_the_threshold_together_give_away_nothing_the_earlier_did_not(
    seed: int,
) -> None:
    assert leaks_across_a_change(seed, 5, 8) == {COUNTS: [], SUMS: []}


def test_weeks_decided_again_under_a_raised_threshold_without_their_first_decision_would_be_found() -> None:
    """The check is not vacuous: a raise regroups "other departments", and a week decided afresh under the
    new threshold can show a group withheld before to protect one that is folded now."""
    assert any(leaks_across_a_change(SEEDS[0], 5, 8, restrict=False).values())


def test_periods_shown_whenever_their_sum_reaches_the_threshold_would_be_found_by_the_span_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check is not vacuous for rule 5 either: a quarter shown because its weeks add up to enough answers,
    although a week of it was withheld, gives that week away (against the quarter so far, or its weeks)."""
    original = disclosure.combine

    def combine_on_the_sum(group: GroupKey, weeks: Sequence[Week]) -> Cell | None:
        cell = original(group, weeks)
        if cell is None or len(cell.weeks) == 1:
            return cell
        tally = add_up(week.tallies[group] for week in weeks if group in week.cells)
        threshold = disclosure.MINIMUM_REPORT_THRESHOLD
        if figures_shown(tally, threshold):
            shown = Shown.FIGURES
        elif count_shown(tally, threshold):
            shown = Shown.COUNT
        else:
            return cell
        return disclosure._cell(group, tally, shown=shown, why=None, weeks=cell.weeks, members=cell.members)

    monkeypatch.setattr(disclosure, "combine", combine_on_the_sum)
    assert any_leak(SEEDS[:2])


def test_comparisons_that_included_withheld_organisations_would_be_found_by_the_span_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A comparison over every other organisation, shown or not, lets a sector's members subtract theirs."""
    rng = random.Random(99)
    organisations = [generate(rng, number, threshold=5) for number in range(4)]
    # Organisation 7 is always tiny: its weeks are withheld from its own employer, yet the comparisons
    # the others see (all five minus their own) would together give its figure.
    tiny = generate(random.Random(7), 7, threshold=5)
    small_weeks = []
    for week in tiny.weeks:
        small_weeks.append(
            disclosure.decide_week(
                week.week,
                organisation=tally_of([3, 4], invited=3),
                departments={},
                threshold=5,
                department_less=True,
            )
        )
    organisations.append(GeneratedOrganisation(7, 5, True, small_weeks))
    result = Publication()
    for organisation in organisations:
        for week in organisation.weeks:
            vector = week_vector(organisation, week, ORGANISATION)
            for layer in LAYERS:
                target = (
                    result.published if published_at(week.cells[ORGANISATION], layer) else result.withheld
                )
                target[layer].add(vector)
    monkeypatch.setattr(disclosure, "figures_shown", lambda tally, threshold: tally.count > 0)
    add_comparisons(organisations, result)
    assert any(leaks(result, first=True).values())


def test_a_week_in_which_the_one_person_without_a_department_did_not_answer_looks_like_one_they_did() -> None:
    """Someone was in no department in these weeks and has one now, so the employer's list has nobody without
    a department (the report's ``department_less`` is False). Whether "other departments" holds the people in
    no department must not depend on whether they answered: in a week in which they did not, the organisation
    would equal its departments, and the employer would read that this one person did not answer."""
    care = tally_of([3, 4, 4, 5, 2, 1], invited=6)
    decided = {
        answered: disclosure.decide_week(
            FIRST_MONDAY,
            organisation=care + tally_of([2] if answered else [], invited=1),
            departments={1: care},
            threshold=5,
            department_less=False,
        )
        for answered in (True, False)
    }
    shapes = {
        answered: {key: (cell.shown, cell.members) for key, cell in week.cells.items()}
        for answered, week in decided.items()
    }
    assert shapes[True] == shapes[False]
    assert decided[False].cells[OTHER].shown is Shown.NOTHING


# --- rules 1, 2 and 4 cell by cell ------------------------------------------------------------------------


def all_multisets(largest: int) -> Iterable[tuple[int, ...]]:
    for size in range(1, largest + 1):
        yield from itertools.combinations_with_replacement(range(1, 6), size)


def near_alike(values: Sequence[int]) -> bool:
    """All answerers, or all but one, gave the same answer."""
    return max(values.count(value) for value in set(values)) >= len(values) - 1


def nearly_all_hard(values: Sequence[int]) -> bool:
    return sum(value in disclosure.HARD for value in values) >= len(values) - 1


def nearly_none_hard(values: Sequence[int]) -> bool:
    """None of the answerers, or only one, had a hard week: of a department whose every listed person
    answered, a share of 0% names each of them as having had none (#19)."""
    return sum(value in disclosure.HARD for value in values) <= 1


@pytest.mark.parametrize("threshold", [5, 7])
def test_figures_are_shown_exactly_with_enough_answers_no_near_alike_answer_and_two_hard_weeks_and_two_not(
    threshold: int,
) -> None:
    for values in all_multisets(10):
        tally = tally_of(values, invited=10)
        expected = (
            len(values) >= threshold
            and not near_alike(values)
            and not nearly_all_hard(values)
            and not nearly_none_hard(values)
        )
        assert figures_shown(tally, threshold) is expected, values
        assert count_shown(tally, threshold) is (len(values) >= threshold), values


def published_numbers(values: Sequence[int]) -> tuple[int | None, Decimal | None, int | None]:
    cell = disclosure._cell(
        "group",
        tally_of(values, invited=len(values)),
        shown=Shown.FIGURES,
        why=None,
        weeks=(),
        members=frozenset(),
    )
    return cell.answers, cell.average, cell.hard_percent


def test_the_numbers_of_a_shown_group_fit_answers_that_are_not_all_alike_nor_all_hard() -> None:
    """From the answers, the average to one decimal and the rounded share of hard weeks, nobody can conclude
    that (nearly) everyone gave one answer, had a hard week or had none: every shown group's numbers also fit
    answers that are none of these, so the rounding never narrows them down to near-alike ones."""
    fitting: dict[tuple[int | None, Decimal | None, int | None], list[tuple[int, ...]]] = defaultdict(list)
    for values in all_multisets(10):
        fitting[published_numbers(values)].append(values)
    shown = [values for values in all_multisets(10) if figures_shown(tally_of(values, invited=10), 5)]
    assert shown
    for values in shown:
        candidates = fitting[published_numbers(values)]
        assert not all(near_alike(candidate) for candidate in candidates), values
        assert not all(nearly_all_hard(candidate) for candidate in candidates), values
        assert not all(nearly_none_hard(candidate) for candidate in candidates), values
    # Checked against hand-made cases: 1, 2, 4, 5, 5 is shown (average 3.4, two hard weeks in five); 2, 3, 4,
    # 4, 5 is not (one hard week: 20% would say that the other four, all but one, had none).
    assert published_numbers((1, 2, 4, 5, 5)) == (5, Decimal("3.4"), 40)
    assert figures_shown(tally_of((1, 2, 4, 5, 5), invited=5), 5)
    assert not figures_shown(tally_of((2, 3, 4, 4, 5), invited=5), 5)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_group_under_the_threshold_shows_no_number_in_any_week_quarter_or_year(seed: int) -> None:
    checked = 0
    for organisation in sector(seed):
        for group, cell, vector in period_cells(organisation):
            if true_count(organisation, vector) >= organisation.threshold:
                continue
            checked += 1
            assert (cell.answers, cell.average, cell.hard_percent, cell.participation) == (None,) * 4, (
                group,
                cell,
            )
    assert checked


@pytest.mark.parametrize("seed", SEEDS)
def test_the_organisation_minus_its_shown_groups_is_nothing_or_itself_a_group_that_could_be_shown(
    seed: int,
) -> None:
    rules: dict[str, Callable[[Tally, int], bool]] = {COUNTS: count_shown, SUMS: figures_shown}
    complemented = 0
    for organisation in sector(seed):
        for week in organisation.weeks:
            children = {
                key: cell
                for key, cell in week.cells.items()
                if key != ORGANISATION and cell.why is not disclosure.Why.FOLDED
            }
            # The groups partition the organisation.
            assert add_up(week.tallies[key] for key in children) == week.tallies[ORGANISATION]
            for layer, passes in rules.items():
                if not published_at(week.cells[ORGANISATION], layer):
                    continue
                withheld = [key for key, cell in children.items() if not published_at(cell, layer)]
                if not withheld:
                    continue
                remainder = add_up(week.tallies[key] for key in withheld)
                assert len(withheld) >= 2 and passes(remainder, organisation.threshold), (
                    week.week,
                    layer,
                    withheld,
                )
                complemented += any(passes(week.tallies[key], organisation.threshold) for key in withheld)
    assert complemented


def test_a_raise_never_shows_a_group_that_protected_a_group_now_folded() -> None:
    """Under 5 a department of five that all answered 4 shows its count only, and the smallest other group (a
    department of eight) is withheld with it so that the organisation minus the shown groups does not give
    it. Under 8 the five are folded into "other departments"; if the eight were shown now, the report from
    before the raise (the organisation, "other departments" and the largest department) minus it would give
    the five's sum, 20: all alike. Whatever a raise regroups, the earlier reports and the later together
    must not give a group that neither gave."""
    departments = {
        1: tally_of([2, 2, 1, 1, 3, 3, 3, 3], invited=8),
        2: tally_of([4, 4, 4, 4, 4], invited=5),
        3: tally_of([1, 2, 3], invited=3),
        4: tally_of([3, 4, 5, 5, 1, 2, 3, 4, 2, 3, 4, 5], invited=12),
        5: tally_of([5, 3, 2, 4], invited=4),
        6: tally_of([1, 3, 5], invited=3),
    }
    decided = [
        disclosure.decide_week(
            FIRST_MONDAY,
            organisation=add_up(departments.values()),
            departments=departments,
            threshold=threshold,
            department_less=False,
        )
        for threshold in (5, 8)
    ]
    assert decided[0].cells[2].shown is Shown.COUNT and decided[1].cells[2].why is disclosure.Why.FOLDED
    # Alone, the week under 8 shows the department of eight: with the week as first shown, it does not.
    assert decided[1].cells[1].shown is Shown.FIGURES
    decided[1] = disclosure.within(decided[1], decided[0])
    assert decided[1].cells[1].shown is Shown.COUNT
    both = Publication(known_empty={(1, NO_DEPARTMENT, FIRST_MONDAY)})
    for week in decided:
        generated = GeneratedOrganisation(1, 5, False, [week])
        for key, cell in week.cells.items():
            (both.published if published_at(cell, SUMS) else both.withheld)[SUMS].add(
                week_vector(generated, week, key)
            )
    assert leaks(both)[SUMS] == []
