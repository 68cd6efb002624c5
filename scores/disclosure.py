"""What an employer may see of its frozen figures: small-group suppression that no sum or difference undoes.

Pure computation on opened figures (scores.reports reads them); nothing here touches the database. The rules,
the same for the page, the CSV and the printable page because all three show these cells:

1. **Fewer than the threshold.** A group's figures are shown only from ``threshold`` answers (at least 5, per
   organisation, only ever raised). Below it the group shows nothing, not even its count.
2. **Too much alike.** A group where all answerers, or all but one, gave the same answer, or where all or all
   but one had a hard week (1 or 2), or none or only one did, shows its count only: an average would tell
   what (nearly) everyone answered, and a share of 0% hard weeks from a department whose every listed person
   answered would tell, of each of them by name, that they had no hard week (the shown share gives the
   number of hard weeks exactly, so one hard week is the same as all but one).
3. **Small departments are folded.** A department under the threshold that week is counted in "other
   departments", together with the answers of people in no department; that group is shown when it passes
   rules 1 and 2 itself.
4. **Complementary suppression.** The organisation's figure minus the figures shown for its groups is the sum
   of the groups withheld. That remainder must itself pass rules 1 and 2 (per layer: the counts against rule
   1, the averages and shares against rules 1 and 2), otherwise the next-smallest shown group is withheld as
   well, until it does. So no difference of shown figures gives a group under the threshold, or one whose
   answers were (nearly) all alike.
5. **Periods.** A quarter or a year is the sum of its closed weeks. Answers of different weeks may come from
   the same people, so a period is shown only when every week in it was shown for that group at the same
   layer: a period figure is then the sum of shown week figures, and tells nothing the weeks did not.
6. **Comparisons.** A week's sector or all-organisations figure sums the organisation-wide figures of
   *other* organisations that were shown to their own employer under their own threshold when the week
   ended (so a later raise does not change who is in a sum), and appears only with at least
   ``COMPARISON_ORGANISATIONS`` of them; all organisations minus the sector (the rest) must be nobody or as
   many, or the all-organisations figure is withheld. A period's comparison is the sum of its weeks', shown
   only when every week's was (rule 5). A week is compared only once no organisation's close can still
   add to it (scores.reports._settled_weeks), and each organisation stays in the division it had when it
   closed the week (ClosedWeek.division), so a figure once shown never gains or loses one organisation. It
   never contains a withheld group, and no difference of two comparisons names one organisation.
7. **Raises.** A raise folds more departments into "other departments" and so regroups the weeks before it,
   which the employer has seen under the old threshold: a group withheld then to protect a department folded
   now could pass on its own. A week that ended before a raise shows only what follows from what it showed
   under the threshold of then (``within``), so the reports before and after a raise give together no more
   than the earlier ones gave.

Week by week the groups partition the organisation exactly (its departments over the threshold, then "other
departments" for the rest), so rules 3 and 4 close every difference within a week; rule 5 makes quarters and
years add nothing to the weeks; rule 6 keeps comparisons out of every organisation's withheld cells; rule 7
keeps a raise from undoing rule 4 for the weeks already shown. The tests
check this against the linear span of everything published (tests/scores/test_report_disclosure.py).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from scores.models import MINIMUM_REPORT_THRESHOLD
from scores.sealing import VALUES

# Values that count as a hard week.
HARD = (1, 2)
# A comparison figure sums at least this many other organisations.
COMPARISON_ORGANISATIONS = 3
# The key of the organisation-wide row and of "other departments"; a department's key is its id.
ORGANISATION = "organisation"
OTHER = "other"
# "Other departments" also holds the answers of people in no department: their member key.
NO_DEPARTMENT = "none"

GroupKey = int | str


@dataclass(frozen=True)
class Tally:
    """Counts of one group that add up: answers, their sum, answers per value, links sent (if known), and, for
    the whole organisation only, how many were on the employer's list (None elsewhere or unknown)."""

    count: int = 0
    total: int = 0
    counts: tuple[int, ...] = (0,) * len(VALUES)
    invited: int | None = 0
    listed: int | None = None

    def __add__(self, other: Tally) -> Tally:
        return add_up((self, other))

    def __sub__(self, other: Tally) -> Tally:
        return Tally(
            count=self.count - other.count,
            total=self.total - other.total,
            counts=tuple(a - b for a, b in zip(self.counts, other.counts, strict=True)),
            invited=None if self.invited is None or other.invited is None else self.invited - other.invited,
            listed=None,
        )

    @property
    def hard(self) -> int:
        return sum(self.counts[value - 1] for value in HARD)


def add_up(tallies: Iterable[Tally]) -> Tally:
    """The sum of ``tallies`` (Tally() for none), as adding them one by one gives, without a Tally per step:
    a report of three years adds up tens of thousands of them."""
    count = total = 0
    counts = [0] * len(VALUES)
    invited: int | None = 0
    listed: int | None = None
    for number, tally in enumerate(tallies):
        if len(tally.counts) != len(counts):
            raise ValueError("tallies of different lengths")
        count += tally.count
        total += tally.total
        for index, answers in enumerate(tally.counts):
            counts[index] += answers
        invited = None if invited is None or tally.invited is None else invited + tally.invited
        if number == 0:
            listed = tally.listed
        elif listed is not None:
            listed = None if tally.listed is None else listed + tally.listed
    return Tally(count=count, total=total, counts=tuple(counts), invited=invited, listed=listed)


def count_shown(tally: Tally, threshold: int) -> bool:
    """Rule 1: enough answers for the count (and anything else) to be shown."""
    return tally.count >= threshold


def figures_shown(tally: Tally, threshold: int) -> bool:
    """Rules 1 and 2: enough answers, no answer shared by all or all but one, and at least two answerers with
    a hard week and two without."""
    return (
        tally.count >= threshold
        and max(tally.counts) <= tally.count - 2
        and 2 <= tally.hard <= tally.count - 2
    )


class Shown(enum.StrEnum):
    FIGURES = "figures"  # answers, average, share of hard weeks, participation
    COUNT = "count"  # the number of answers only
    NOTHING = "nothing"


class Why(enum.StrEnum):
    """Why a cell shows less than everything; the page explains each in words."""

    FEW = "few"  # fewer answers than the threshold
    PROTECT = "protect"  # too much alike, or it would reveal a smaller group (never said which)
    FOLDED = "folded"  # a department counted in "other departments" that week
    PARTIAL = "partial"  # a week of the period could not be shown for this group
    COMPARISON = "comparison"  # too few other organisations to compare with
    WAITING = "waiting"  # a comparison of a week not every organisation has closed yet


@dataclass(frozen=True)
class Cell:
    """What one group shows for one period, and only that: numbers that may not be shown are not in it.

    ``weeks`` and ``members`` say what the cell adds up (the closed weeks, the departments, NO_DEPARTMENT);
    they are the employer's own structure, and let the tests rebuild every published sum.
    """

    group: GroupKey
    shown: Shown
    why: Why | None
    weeks: tuple[dt.date, ...]
    members: frozenset[int | str]
    answers: int | None = None
    average: Decimal | None = None
    hard_percent: int | None = None
    # The share of those sent a link who answered, as the lower edge of its band (PARTICIPATION_BANDS).
    participation: int | None = None


# Participation is shown only in these bands (the lower edge, in percent).
PARTICIPATION_BANDS = (0, 25, 50, 75)


def participation_band(answers: int, listed: int | None) -> int | None:
    """The band of answers per person on the employer's list: the list is the employer's own knowledge and no
    stop, pause or decline changes it, so the band tells nothing the exact answer count does not. Never
    divided by those who could take part that week: a pause would move the band (who takes part)."""
    if not listed:
        return None
    share = Decimal(answers) / Decimal(listed)
    return max(edge for edge in PARTICIPATION_BANDS if share * 100 >= edge)


def _cell(
    group: GroupKey,
    tally: Tally,
    *,
    shown: Shown,
    why: Why | None,
    weeks: tuple[dt.date, ...],
    members: frozenset[int | str],
) -> Cell:
    if shown is Shown.NOTHING:
        return Cell(group, shown, why, weeks, members)
    if shown is Shown.COUNT:
        return Cell(group, shown, why, weeks, members, answers=tally.count)
    average = (Decimal(tally.total) / Decimal(tally.count)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    hard = int((Decimal(100 * tally.hard) / Decimal(tally.count)).quantize(Decimal(1), ROUND_HALF_UP))
    return Cell(
        group,
        shown,
        why,
        weeks,
        members,
        answers=tally.count,
        average=average,
        hard_percent=hard,
        participation=participation_band(tally.count, tally.listed),
    )


@dataclass
class Week:
    """One closed week's decisions: a cell per group, and the tallies behind them (never shown)."""

    week: dt.date
    cells: dict[GroupKey, Cell]
    tallies: dict[GroupKey, Tally] = field(repr=False)


Rule = Callable[[Tally, int], bool]


def _complement(
    withheld: set[GroupKey], children: Mapping[GroupKey, Tally], passes: Rule, threshold: int
) -> set[GroupKey]:
    """Rule 4: withhold the next-smallest shown groups until the withheld ones' sum passes ``passes``."""
    withheld = set(withheld)
    shown = set(children) - withheld
    while withheld and not passes(add_up(children[key] for key in withheld), threshold):
        if not shown:
            break
        smallest = min(shown, key=lambda key: (children[key].count, str(key)))
        shown.discard(smallest)
        withheld.add(smallest)
    return withheld


def decide_week(
    week: dt.date,
    *,
    organisation: Tally,
    departments: Mapping[int, Tally],
    threshold: int,
    department_less: bool,
) -> Week:
    """The cells of one closed week: the organisation, each department over the threshold, and "other
    departments" (the departments under it and, with ``department_less``, or when that week's links went to
    anyone in no department, the people in no department: whether the list has such people is the employer's
    own knowledge)."""
    if threshold < MINIMUM_REPORT_THRESHOLD:
        raise ValueError(f"a report threshold under {MINIMUM_REPORT_THRESHOLD}")
    no_department = organisation - add_up(departments.values())
    children: dict[GroupKey, Tally] = {}
    folded: list[int | str] = []
    for department_id, tally in sorted(departments.items()):
        if count_shown(tally, threshold):
            children[department_id] = tally
        else:
            folded.append(department_id)
    # Whether "other departments" holds the people in no department must not depend on whether they answered:
    # where it did, an organisation equal to its departments would tell that they did not (one person, who
    # has a department by now, so that ``department_less`` is False). The links sent that week say whether
    # there were any, before anyone answered; figures frozen before links were counted (invited None) fall
    # back to today's list and to the answers.
    listed = no_department.invited is not None and no_department.invited > 0
    if department_less or listed or no_department.count:
        folded.append(NO_DEPARTMENT)
    if folded:
        children[OTHER] = add_up(departments[key] for key in folded if isinstance(key, int)) + (
            no_department if NO_DEPARTMENT in folded else Tally()
        )
    members: dict[GroupKey, frozenset[int | str]] = {
        key: frozenset({key}) for key in children if key != OTHER
    }
    members[OTHER] = frozenset(folded)
    members[ORGANISATION] = frozenset([*departments, NO_DEPARTMENT])

    counted: set[GroupKey] = set()
    figured: set[GroupKey] = set()
    protected: set[GroupKey] = set()
    if count_shown(organisation, threshold):
        without_count = {key for key, tally in children.items() if not count_shown(tally, threshold)}
        withheld = _complement(without_count, children, count_shown, threshold)
        protected |= withheld - without_count
        counted = set(children) - withheld
        counted.add(ORGANISATION)
    if figures_shown(organisation, threshold):
        without_figures = {key for key in children if key not in counted}
        without_figures |= {key for key, tally in children.items() if not figures_shown(tally, threshold)}
        withheld = _complement(without_figures, children, figures_shown, threshold)
        figured = set(children) - withheld
        figured.add(ORGANISATION)
    else:
        # The organisation's figure is not shown, so no remainder can be formed from it; a group that passes
        # on its own shows its figures.
        figured = {key for key in counted if key != ORGANISATION and figures_shown(children[key], threshold)}

    tallies = {**children, ORGANISATION: organisation}
    weeks = (week,)
    cells: dict[GroupKey, Cell] = {}
    for group, tally in tallies.items():
        key = group
        if key in figured:
            shown, why = Shown.FIGURES, None
        elif key in counted:
            shown, why = Shown.COUNT, Why.PROTECT
        else:
            shown = Shown.NOTHING
            why = Why.PROTECT if key in protected else Why.FEW
        cells[key] = _cell(key, tally, shown=shown, why=why, weeks=weeks, members=members[key])
    for member in folded:
        if isinstance(member, int):
            cells[member] = Cell(member, Shown.NOTHING, Why.FOLDED, weeks, frozenset({member}))
    for department_id, department_tally in departments.items():
        tallies.setdefault(department_id, department_tally)
    return Week(week=week, cells=cells, tallies=tallies)


def _span_layer(earlier: Week, members: frozenset[int | str]) -> int:
    """The highest layer at which the group of ``members`` follows from ``earlier``'s shown cells by sums and
    differences (0: at none).

    A week's groups partition its organisation, so at a layer a set of members follows from the shown cells
    exactly when it is a union of shown groups, or (with the organisation shown) the organisation minus such
    a union. Members in no group of ``earlier`` (nobody without a department that week) are empty.
    """
    group_of = {
        member: key
        for key, cell in earlier.cells.items()
        if key != ORGANISATION and cell.why is not Why.FOLDED
        for member in cell.members
    }
    everyone = frozenset(group_of)

    def union_of_shown(part: frozenset[int | str], layer: int) -> bool:
        keys = {group_of[member] for member in part}
        return all(_layer(earlier.cells[key]) >= layer and earlier.cells[key].members <= part for key in keys)

    covered = members & everyone
    for layer in (2, 1):
        if union_of_shown(covered, layer):
            return layer
        if _layer(earlier.cells[ORGANISATION]) >= layer and union_of_shown(everyone - covered, layer):
            return layer
    return 0


def within(later: Week, earlier: Week) -> Week:
    """``later`` (the week decided under a raised threshold) showing nothing that ``earlier`` (the same week
    as first decided, under the threshold of then) did not already give.

    A raise folds more departments into "other departments" and so regroups the week: a group withheld before
    to protect a smaller one may pass on its own now, and the earlier report minus it would give the one it
    protected. Each cell of ``later`` is shown at most at the layer at which it follows from ``earlier``'s
    shown cells; withholding more never breaks rule 4 (a sum that passes rules 1 and 2 still does with more
    groups in it), and everything shown follows from what was shown before, so the two together give no
    more than ``earlier`` gave alone.
    """
    cells: dict[GroupKey, Cell] = {}
    for key, cell in later.cells.items():
        layer = min(_layer(cell), _span_layer(earlier, cell.members))
        if layer == _layer(cell):
            cells[key] = cell
            continue
        shown = {2: Shown.FIGURES, 1: Shown.COUNT, 0: Shown.NOTHING}[layer]
        cells[key] = _cell(
            key, later.tallies[key], shown=shown, why=Why.PROTECT, weeks=cell.weeks, members=cell.members
        )
    return Week(week=later.week, cells=cells, tallies=later.tallies)


def _layer(cell: Cell) -> int:
    return {Shown.FIGURES: 2, Shown.COUNT: 1, Shown.NOTHING: 0}[cell.shown]


def combine(group: GroupKey, weeks: Sequence[Week]) -> Cell | None:
    """Rule 5: the group's cell for a period of these closed weeks, or None when the group has none in it.

    Shown at the lowest layer any of its weeks was shown at: a period never shows more than its weeks did.
    A week in which the group does not occur (a department that did not exist yet; no "other departments")
    adds nothing; a week in which a department was folded makes the period show nothing for it.
    """
    present = [week for week in weeks if group in week.cells]
    if not present:
        return None
    cells = [week.cells[group] for week in present]
    layer = min(_layer(cell) for cell in cells)
    tally = add_up(week.tallies[group] for week in present)
    members = frozenset().union(*(cell.members for cell in cells))
    covered = tuple(week.week for week in present)
    if layer == 2:
        return _cell(group, tally, shown=Shown.FIGURES, why=None, weeks=covered, members=members)
    reasons = {cell.why for cell in cells if _layer(cell) == layer}
    why = reasons.pop() if len(reasons) == 1 and layer == max(_layer(cell) for cell in cells) else Why.PARTIAL
    if layer == 1:
        return _cell(group, tally, shown=Shown.COUNT, why=why, weeks=covered, members=members)
    return _cell(group, tally, shown=Shown.NOTHING, why=why, weeks=covered, members=members)


def organisation_figure(tally: Tally, threshold: int) -> Tally | None:
    """An organisation's own weekly figure as a comparison may use it: only when shown to its employer."""
    return tally if figures_shown(tally, threshold) else None


@dataclass(frozen=True)
class ComparedWeek:
    """One week's comparison figures for one employer: the sum of the other organisations shown to their own
    employer that week, in its sector and in all (None: too few to show), with who is in each sum."""

    week: dt.date
    sector: tuple[frozenset[int], Tally] | None
    everyone: tuple[frozenset[int], Tally] | None
    # Not every organisation has closed the week yet: nothing is compared until all have.
    waiting: bool = False


def compare_week(week: dt.date, *, sector: Mapping[int, Tally], outside: Mapping[int, Tally]) -> ComparedWeek:
    """Rule 6 for one week. ``sector`` and ``outside``: the other organisations of the employer's sector and
    of the rest whose organisation-wide figure of ``week`` their own employer was shown (the caller decides
    that, under each one's threshold of then, so that a later raise does not change who is in a sum).

    Each figure sums at least COMPARISON_ORGANISATIONS of them, and so does the difference of the two: all
    organisations minus the sector is the rest, shown only when the rest is nobody or at least as many.
    """
    in_sector = frozenset(sector)
    everyone = in_sector | frozenset(outside)
    shown_sector = len(in_sector) >= COMPARISON_ORGANISATIONS
    rest = len(outside)
    shown_everyone = len(everyone) >= COMPARISON_ORGANISATIONS and (
        not shown_sector or rest == 0 or rest >= COMPARISON_ORGANISATIONS
    )
    return ComparedWeek(
        week=week,
        sector=(in_sector, add_up(sector.values())) if shown_sector else None,
        everyone=(everyone, add_up([*sector.values(), *outside.values()])) if shown_everyone else None,
    )


def compared_period(
    period_weeks: Sequence[dt.date], compared: Mapping[dt.date, ComparedWeek], *, sector: bool
) -> Cell:
    """A period's comparison: the sum of its weeks' figures, shown only when every week's was (rule 5 as for
    the groups: a period then tells nothing its weeks did not)."""
    weeks = tuple(period_weeks)
    if not weeks:
        return Cell("comparison", Shown.NOTHING, Why.COMPARISON, weeks, frozenset())
    figures = []
    for week in weeks:
        found = compared.get(week)
        figure = None if found is None else found.sector if sector else found.everyone
        if figure is None:
            why = Why.WAITING if found is not None and found.waiting else Why.COMPARISON
            return Cell("comparison", Shown.NOTHING, why, weeks, frozenset())
        figures.append(figure[1])
    total = add_up(figures)
    # Participation bands are the employer's own matter; a comparison shows answers, average and hard weeks.
    total = Tally(count=total.count, total=total.total, counts=total.counts, invited=None, listed=None)
    return _cell("comparison", total, shown=Shown.FIGURES, why=None, weeks=weeks, members=frozenset())
