"""One participant's weekly scores as a line chart drawn on the server: an SVG for the dossier page.

No JavaScript, no external font and no third-party script: the page's content security policy allows
none, and nothing about a participant may reach anyone else. The SVG carries its colours as presentation
attributes (``fill``, ``stroke``), not ``style`` attributes, which the policy (``style-src 'self'``) blocks.

What the chart shows:

- x: every week from the first answered week to the last, or to the week of ``until`` (this week, say),
  so that recent silence shows as empty space; a handful of ISO week labels ("2026-W14"), the most recent
  week always among them, so 160 weeks stay readable.
- y: the scale 1..5 with a gridline and the same words the participant tapped ("Very bad" ... "Very good",
  the msgids of ``scores.views.SMILEYS``).
- a line through consecutive answered weeks, broken where a week has no answer, and a dot on every
  answered week, so a lone week between two gaps still shows.

For screen readers the SVG is one image (``role="img"``) named by its ``<title>`` and described by its
``<desc>``: how many weeks were answered, the first and last week shown, and the latest answer in words.
The week by week values are in ``ScoreChart.points``, for the table the page shows beside the chart.

Markup is built with ``format_html`` only: the title, the labels and their translations are text and come
out escaped.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from casefiles.outcome import values_by_week
from preventicons.svgchart import coordinate, gridlines
from scores.weekclose import monday_of

ONE_WEEK = dt.timedelta(days=7)

# The words of the scale: the same msgids as the smileys a participant taps (scores.views.SMILEYS), so the
# casemanager reads the participant's own words in either language.
SCORE_LABELS: dict[int, Promise] = {
    1: _("Very bad"),
    2: _("Bad"),
    3: _("So-so"),
    4: _("Good"),
    5: _("Very good"),
}
LOWEST, HIGHEST = min(SCORE_LABELS), max(SCORE_LABELS)

# Colours, checked against white in the tests (WCAG 2.1 contrast): text 4.5:1 (1.4.3), the line, its dots and
# the gridlines 3:1 (1.4.11, graphics needed to read the chart).
TEXT_COLOUR = "#333333"
LINE_COLOUR = "#1f5fa8"
GRID_COLOUR = "#949494"
BACKGROUND_COLOUR = "#ffffff"

# The drawing's own coordinates; the SVG scales to its container's width (width="100%").
WIDTH, HEIGHT = 720, 240
PLOT_LEFT, PLOT_RIGHT = 88.0, 680.0  # room for the longest scale word on the left, half a week label right
PLOT_TOP, PLOT_BOTTOM = 16.0, 196.0
X_LABEL_Y = 220.0
FONT_SIZE = 12
# At most this many week labels under the x axis (a label is about 60 units wide at this font size).
MAX_X_LABELS = 7
# Label every n-th week, n the first of these that keeps to MAX_X_LABELS: steps a reader can count in.
X_LABEL_STEPS = (1, 2, 4, 8, 13, 26, 52, 104)
# Dots shrink when weeks lie closer than this many units, so three years of dots do not merge into a bar.
DENSE_SPACING = 10.0
DOT_RADIUS, DENSE_DOT_RADIUS = 4.0, 2.5

DEFAULT_ID_PREFIX = "score-chart"
_ID_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class WeekPoint:
    """One week of the chart's range: its Monday and the score, or None when the week has no answer."""

    week: dt.date
    value: int | None

    @property
    def iso_week(self) -> str:
        """The week as the x axis labels it: "2026-W14"."""
        return iso_week_label(self.week)

    @property
    def label(self) -> str:
        """The score in the participant's words, or that there was no answer (for the table)."""
        if self.value is None:
            return gettext("No answer")
        return str(SCORE_LABELS[self.value])


@dataclass(frozen=True)
class ScoreChart:
    """The SVG, and every week it spans (gaps included, oldest first) for the table beside it."""

    svg: SafeString
    points: list[WeekPoint]


def score_chart(
    values: Sequence[tuple[dt.date, int]],
    *,
    title: str,
    until: dt.date | None = None,
    id_prefix: str = DEFAULT_ID_PREFIX,
) -> ScoreChart:
    """The chart of these (week, score) pairs, in any order; empty input gives a chart saying so.

    A date inside a week stands for that week's Monday. ``until`` extends the range to its week when that is
    later than the last answer. ``id_prefix`` starts every element id, so that two charts on one page do
    not share ids. A score outside 1..5, two scores in one week or an id prefix that is no valid id raise
    ValueError: each is a caller's mistake, not something to draw.
    """
    if not _ID_PREFIX.match(id_prefix):
        raise ValueError(f"id_prefix {id_prefix!r} is not a valid element id")
    by_week = values_by_week(values)
    if not by_week:
        return ScoreChart(svg=_empty_svg(title=title, id_prefix=id_prefix), points=[])
    first, last = min(by_week), max(by_week)
    if until is not None:
        last = max(last, monday_of(until))
    points = [
        WeekPoint(week=week, value=by_week.get(week))
        for week in (first + n * ONE_WEEK for n in range((last - first) // ONE_WEEK + 1))
    ]
    return ScoreChart(svg=_svg(points, title=title, id_prefix=id_prefix), points=points)


def iso_week_label(week: dt.date) -> str:
    year, number, _weekday = week.isocalendar()
    return f"{year}-W{number:02d}"


def _week_in_words(week: dt.date) -> str:
    year, number, _weekday = week.isocalendar()
    return gettext("week %(week)d of %(year)d") % {"week": number, "year": year}


def _y(value: int) -> float:
    return PLOT_BOTTOM - (value - LOWEST) * (PLOT_BOTTOM - PLOT_TOP) / (HIGHEST - LOWEST)


def _x(index: int, count: int) -> float:
    if count == 1:
        return (PLOT_LEFT + PLOT_RIGHT) / 2
    return PLOT_LEFT + index * (PLOT_RIGHT - PLOT_LEFT) / (count - 1)


_coordinate = coordinate


def _x_label_indexes(count: int) -> list[int]:
    """Which weeks get a label: every n-th, counted back from the most recent, which always has one."""
    step = next(
        (step for step in X_LABEL_STEPS if math.ceil(count / step) <= MAX_X_LABELS),
        math.ceil(count / MAX_X_LABELS),
    )
    return sorted(range(count - 1, -1, -step))


def _runs(points: Sequence[WeekPoint]) -> list[list[int]]:
    """Indexes of the answered weeks, grouped into runs of consecutive weeks."""
    runs: list[list[int]] = []
    previous: int | None = None
    for index, point in enumerate(points):
        if point.value is None:
            continue
        if previous is not None and previous == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
        previous = index
    return runs


def _open(*, title: str, description: str, id_prefix: str) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="score-chart" viewBox="0 0 {} {}" width="100%"'
        ' preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="{}-title {}-desc"'
        ' font-family="system-ui, sans-serif" font-size="{}" fill="{}">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>'
        '<rect width="{}" height="{}" fill="{}"/>',
        WIDTH,
        HEIGHT,
        id_prefix,
        id_prefix,
        FONT_SIZE,
        TEXT_COLOUR,
        id_prefix,
        title,
        id_prefix,
        description,
        WIDTH,
        HEIGHT,
        BACKGROUND_COLOUR,
    )


def _scale() -> SafeString:
    """A gridline and the word for every score."""
    return format_html(
        '<g class="score-chart-scale">{}</g>',
        gridlines(
            ((_y(value), label) for value, label in sorted(SCORE_LABELS.items(), reverse=True)),
            left=PLOT_LEFT,
            right=PLOT_RIGHT,
            colour=GRID_COLOUR,
        ),
    )


def _empty_svg(*, title: str, id_prefix: str) -> SafeString:
    message = gettext("No answers yet")
    return format_html(
        '{}{}<text class="score-chart-empty" x="{}" y="{}" dy="0.35em" text-anchor="middle" font-size="{}">{}'
        "</text></svg>",
        _open(title=title, description=message, id_prefix=id_prefix),
        _scale(),
        _coordinate((PLOT_LEFT + PLOT_RIGHT) / 2),
        # Between two gridlines, not across one.
        _coordinate((_y(3) + _y(4)) / 2),
        FONT_SIZE + 4,
        message,
    )


def _description(points: Sequence[WeekPoint]) -> str:
    answered = [point for point in points if point.value is not None]
    latest = answered[-1]
    assert latest.value is not None
    summary = ngettext(
        "%(answered)d of %(count)d week answered, from %(first)s to %(last)s.",
        "%(answered)d of %(count)d weeks answered, from %(first)s to %(last)s.",
        len(points),
    ) % {
        "answered": len(answered),
        "count": len(points),
        "first": _week_in_words(points[0].week),
        "last": _week_in_words(points[-1].week),
    }
    latest_answer = gettext("Latest answer: %(label)s, in %(week)s.") % {
        "label": SCORE_LABELS[latest.value],
        "week": _week_in_words(latest.week),
    }
    return f"{summary} {latest_answer}"


def _svg(points: Sequence[WeekPoint], *, title: str, id_prefix: str) -> SafeString:
    count = len(points)
    spacing = (PLOT_RIGHT - PLOT_LEFT) / (count - 1) if count > 1 else math.inf
    radius = DOT_RADIUS if spacing >= DENSE_SPACING else DENSE_DOT_RADIUS

    def at(index: int) -> tuple[str, str]:
        value = points[index].value
        assert value is not None
        return _coordinate(_x(index, count)), _coordinate(_y(value))

    x_axis = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>'
        '<text x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (
                _coordinate(_x(index, count)),
                _coordinate(PLOT_BOTTOM),
                _coordinate(_x(index, count)),
                _coordinate(PLOT_BOTTOM + 5),
                GRID_COLOUR,
                _coordinate(_x(index, count)),
                _coordinate(X_LABEL_Y),
                iso_week_label(points[index].week),
            )
            for index in _x_label_indexes(count)
        ),
    )
    lines = format_html_join(
        "",
        '<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"'
        ' stroke-linecap="round"/>',
        (
            (" ".join(",".join(at(index)) for index in run), LINE_COLOUR)
            for run in _runs(points)
            if len(run) >= 2
        ),
    )
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="{}" fill="{}"><title>{}: {}</title></circle>',
        (
            (*at(index), _coordinate(radius), LINE_COLOUR, point.iso_week, point.label)
            for index, point in enumerate(points)
            if point.value is not None
        ),
    )
    return format_html(
        '{}{}<g class="score-chart-weeks">{}</g><g class="score-chart-line">{}</g>'
        '<g class="score-chart-dots">{}</g></svg>',
        _open(title=title, description=_description(points), id_prefix=id_prefix),
        _scale(),
        x_axis,
        lines,
        dots,
    )
