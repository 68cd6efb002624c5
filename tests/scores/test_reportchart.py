"""The reports' trend chart: withheld periods are gaps, labels are escaped, the colours are readable."""

from __future__ import annotations

import re
from decimal import Decimal

from scores.reportchart import GRID_COLOUR, SERIES_STYLES, TEXT_COLOUR, Series, trend_chart
from tests.casefiles.test_chart import contrast

PERIODS = ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]


def test_a_withheld_period_is_a_gap_in_its_line_never_a_guessed_point() -> None:
    svg = trend_chart(
        PERIODS,
        [Series("Uw organisatie", [Decimal("3.1"), None, Decimal("2.8"), Decimal("3.0")])],
        title="Verloop",
        id_prefix="trend",
    )
    lines = re.findall(r'<polyline points="([^"]+)"', svg)
    # One line, through Q3 and Q4 only: Q1 stands alone (a marker), Q2 has nothing.
    assert len(lines) == 1 and len(lines[0].split()) == 2
    assert svg.count("<circle") == 3
    assert "3 of 4 periods shown" in svg


def test_labels_and_titles_are_escaped() -> None:
    svg = trend_chart(
        PERIODS[:1], [Series("<script>x</script>", [Decimal("3.0")])], title="<b>t</b>", id_prefix="t"
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg


def test_the_colours_are_readable_against_white() -> None:
    assert contrast(TEXT_COLOUR, "#ffffff") >= 4.5
    assert contrast(GRID_COLOUR, "#ffffff") >= 3
    for colour, _dash in SERIES_STYLES:
        assert contrast(colour, "#ffffff") >= 3
