"""Pieces the server-drawn SVG charts share (casefiles.chart for a participant, scores.reportchart for an
employer): coordinates written the same way and a labelled scale of gridlines. Markup through format_html
only, so every label comes out escaped."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.html import format_html_join
from django.utils.safestring import SafeString


def coordinate(number: float) -> str:
    """An SVG coordinate: never localised (a decimal point whatever the reader's language), one decimal."""
    return f"{number:.1f}"


def gridlines(rows: Iterable[tuple[float, object]], *, left: float, right: float, colour: str) -> SafeString:
    """A dashed gridline across the plot at each (y, label), the label right-aligned just left of it."""
    return format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1" stroke-dasharray="2 3"/>'
        '<text x="{}" y="{}" dy="0.35em" text-anchor="end">{}</text>',
        (
            (
                coordinate(left),
                coordinate(y),
                coordinate(right),
                coordinate(y),
                colour,
                coordinate(left - 8),
                coordinate(y),
                label,
            )
            for y, label in rows
        ),
    )
