"""The trend of a report as an SVG line chart drawn on the server: the organisation's average per period, and
the sector's and all organisations' beside it.

No JavaScript and no external font (the content security policy allows neither); colours as presentation
attributes, because ``style-src 'self'`` blocks inline styles. The lines differ in dash pattern and marker as
well as colour, so the legend reads without colour vision. A withheld period is a gap in its line, never a
guessed point. For screen readers the SVG is one image named by its ``<title>`` and described by its
``<desc>``; the numbers themselves are in the table the page shows beside it (WCAG 1.1.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from preventicons.svgchart import coordinate, gridlines

# Checked against white in the tests: text 4.5:1, lines and gridlines 3:1 (WCAG 1.4.3 and 1.4.11).
TEXT_COLOUR = "#333333"
GRID_COLOUR = "#949494"
SERIES_STYLES = (("#1f5fa8", ""), ("#a8501f", "6 4"), ("#2e7d32", "2 3"))
WIDTH, HEIGHT = 720, 260
# RIGHT leaves room for half of the last period's label, centred under its point ("2026-W48").
LEFT, RIGHT, TOP, BOTTOM = 48.0, 680.0, 16.0, 196.0
LEGEND_Y = 248.0
SCALE = (1, 2, 3, 4, 5)
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[Decimal | None]  # one per period; None where the figure is withheld


_c = coordinate


def _x(index: int, count: int) -> float:
    if count == 1:
        return (LEFT + RIGHT) / 2
    return LEFT + index * (RIGHT - LEFT) / (count - 1)


def _y(value: Decimal | float) -> float:
    return BOTTOM - (float(value) - SCALE[0]) * (BOTTOM - TOP) / (SCALE[-1] - SCALE[0])


def _runs(values: Sequence[Decimal | None]) -> list[list[int]]:
    runs: list[list[int]] = []
    for index, value in enumerate(values):
        if value is None:
            continue
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def _joined(pieces: Iterable[SafeString]) -> SafeString:
    """Markup already made by format_html, one after the other (format_html escapes nothing safe again)."""
    return format_html_join("", "{}", ((piece,) for piece in pieces))


def _marker(number: int, x: str, y: str, colour: str) -> SafeString:
    """A circle, a square or a triangle: the series differ in shape as well as colour and dash."""
    cx, cy = float(x), float(y)
    if number % 3 == 0:
        return format_html('<circle cx="{}" cy="{}" r="4" fill="{}"/>', x, y, colour)
    if number % 3 == 1:
        return format_html(
            '<rect x="{}" y="{}" width="8" height="8" fill="{}"/>', _c(cx - 4), _c(cy - 4), colour
        )
    return format_html(
        '<polygon points="{},{} {},{} {},{}" fill="{}"/>',
        _c(cx),
        _c(cy - 5),
        _c(cx - 5),
        _c(cy + 4),
        _c(cx + 5),
        _c(cy + 4),
        colour,
    )


def trend_chart(
    period_labels: Sequence[str], series: Sequence[Series], *, title: str, id_prefix: str
) -> SafeString:
    """The chart of up to three series over these periods (oldest first)."""
    count = len(period_labels)
    step = max(1, -(-count // MAX_X_LABELS))
    labelled = sorted(range(count - 1, -1, -step))
    shown = [
        gettext("%(series)s: %(count)d of %(periods)d periods shown")
        % {"series": item.label, "count": sum(value is not None for value in item.values), "periods": count}
        for item in series
    ]
    description = gettext("Average answer per period, on a scale of 1 to 5.") + " " + "; ".join(shown) + "."
    grid = gridlines(((_y(value), value) for value in SCALE), left=LEFT, right=RIGHT, colour=GRID_COLOUR)
    x_labels = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle">{}</text>',
        ((_c(_x(index, count)), _c(BOTTOM + 22), period_labels[index]) for index in labelled),
    )
    lines = []
    legend = []
    for number, item in enumerate(series):
        colour, dash = SERIES_STYLES[number % len(SERIES_STYLES)]
        points = [
            [
                (_c(_x(index, count)), _c(_y(value)))
                for index in run
                if (value := item.values[index]) is not None
            ]
            for run in _runs(item.values)
        ]
        lines.append(
            format_html_join(
                "",
                '<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>',
                (
                    (" ".join(",".join(point) for point in run), colour, dash or "none")
                    for run in points
                    if len(run) > 1
                ),
            )
        )
        lines.append(_joined(_marker(number, x, y, colour) for run in points for x, y in run))
        legend_x = LEFT + number * 220
        legend.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>'
                '<text x="{}" y="{}" dy="0.35em">{}</text>',
                _c(legend_x),
                _c(LEGEND_Y),
                _c(legend_x + 28),
                _c(LEGEND_Y),
                colour,
                dash or "none",
                _c(legend_x + 34),
                _c(LEGEND_Y),
                item.label,
            )
        )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart" viewBox="0 0 {} {}" width="100%"'
        ' role="img" aria-labelledby="{}-title {}-desc" font-family="system-ui, sans-serif" font-size="12"'
        ' fill="{}"><title id="{}-title">{}</title><desc id="{}-desc">{}</desc>'
        '<rect width="{}" height="{}" fill="#ffffff"/>{}{}{}{}</svg>',
        WIDTH,
        HEIGHT,
        id_prefix,
        id_prefix,
        TEXT_COLOUR,
        id_prefix,
        title,
        id_prefix,
        description,
        WIDTH,
        HEIGHT,
        grid,
        x_labels,
        _joined(lines),
        _joined(legend),
    )
