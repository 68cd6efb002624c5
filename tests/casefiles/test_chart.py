"""The dossier page's score chart: an SVG a screen reader can name and describe, with gaps that show."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import xml.etree.ElementTree as ET

import pytest
from django.utils import translation

from casefiles.chart import (
    BACKGROUND_COLOUR,
    GRID_COLOUR,
    LINE_COLOUR,
    MAX_X_LABELS,
    TEXT_COLOUR,
    ScoreChart,
    WeekPoint,
    score_chart,
)

pytestmark = pytest.mark.usefixtures("english")

NS = "{http://www.w3.org/2000/svg}"
MONDAY = dt.date(2026, 1, 5)  # ISO week 2026-W02


def week(n: int) -> dt.date:
    return MONDAY + dt.timedelta(weeks=n)


def parse(chart: ScoreChart) -> ET.Element:
    return ET.fromstring(str(chart.svg))  # noqa: S314 - our own output, no external entities


def circles(svg: ET.Element) -> list[ET.Element]:
    return list(svg.iter(f"{NS}circle"))


def polylines(svg: ET.Element) -> list[ET.Element]:
    return list(svg.iter(f"{NS}polyline"))


def texts(svg: ET.Element) -> list[str]:
    return ["".join(element.itertext()) for element in svg.iter(f"{NS}text")]


def runs_of_two_or_more(weeks: list[int]) -> int:
    """How many runs of consecutive week numbers hold at least two weeks (counted independently)."""
    ordered = sorted(weeks)
    runs, length = 0, 0
    for index, number in enumerate(ordered):
        length = length + 1 if index and number == ordered[index - 1] + 1 else 1
        if length == 2:
            runs += 1
    return runs


def chart_of(answered: dict[int, int]) -> ScoreChart:
    """The chart of {week number after MONDAY: score}."""
    return score_chart([(week(n), value) for n, value in answered.items()], title="Scores")


def test_every_answered_week_gets_a_dot_and_consecutive_weeks_a_line() -> None:
    svg = parse(chart_of({0: 3, 1: 4, 2: 4, 3: 5}))

    assert len(circles(svg)) == 4
    assert len(polylines(svg)) == 1
    assert len(polylines(svg)[0].get("points", "").split()) == 4


def test_a_gap_breaks_the_line_and_a_lone_week_between_gaps_is_still_a_dot() -> None:
    answered = {0: 3, 1: 4, 3: 5, 5: 1, 6: 2, 7: 3}  # runs: weeks 0-1, week 3 alone, weeks 5-7

    svg = parse(chart_of(answered))

    assert len(circles(svg)) == 6
    assert len(polylines(svg)) == runs_of_two_or_more(list(answered)) == 2
    assert [len(line.get("points", "").split()) for line in polylines(svg)] == [2, 3]
    lone = {(circle.get("cx"), circle.get("cy")) for circle in circles(svg)} - {
        tuple(point.split(",")) for line in polylines(svg) for point in line.get("points", "").split()
    }
    assert len(lone) == 1


def test_a_single_answer_is_one_dot_and_no_line() -> None:
    chart = chart_of({0: 4})
    svg = parse(chart)

    assert len(circles(svg)) == 1
    assert polylines(svg) == []
    assert chart.points == [WeekPoint(week=week(0), value=4)]


def test_points_hold_every_week_oldest_first_with_the_gaps() -> None:
    chart = score_chart([(week(3), 5), (week(0), 2), (week(1), 3)], title="Scores")

    assert chart.points == [
        WeekPoint(week(0), 2),
        WeekPoint(week(1), 3),
        WeekPoint(week(2), None),
        WeekPoint(week(3), 5),
    ]
    assert [point.label for point in chart.points] == ["Bad", "So-so", "No answer", "Very good"]
    assert chart.points[0].iso_week == "2026-W02"


def test_until_extends_the_range_so_recent_silence_shows() -> None:
    chart = score_chart([(week(0), 3), (week(1), 4)], title="Scores", until=week(4) + dt.timedelta(days=3))

    assert [point.week for point in chart.points] == [week(n) for n in range(5)]
    assert [point.value for point in chart.points[2:]] == [None, None, None]
    assert len(circles(parse(chart))) == 2
    # The last answer is no longer at the right edge: the silence after it takes room.
    xs = [float(circle.get("cx", "")) for circle in circles(parse(chart))]
    right_edge = float(
        next(text for text in parse(chart).iter(f"{NS}text") if text.text == "2026-W06").get("x", "")
    )
    assert max(xs) < right_edge


def test_until_before_the_last_answer_changes_nothing() -> None:
    values = [(week(0), 3), (week(2), 4)]

    assert score_chart(values, title="Scores", until=week(1)) == score_chart(values, title="Scores")


def test_a_date_inside_a_week_stands_for_its_monday() -> None:
    chart = score_chart([(week(0) + dt.timedelta(days=2), 3), (week(1) + dt.timedelta(days=6), 4)], title="S")

    assert [point.week for point in chart.points] == [week(0), week(1)]
    assert len(polylines(parse(chart))) == 1


def test_a_higher_score_is_drawn_higher() -> None:
    svg = parse(chart_of({0: 1, 1: 5}))

    low, high = (float(circle.get("cy", "")) for circle in circles(svg))
    assert high < low  # SVG's y grows downwards


def test_the_image_is_named_by_its_title_and_described_by_its_desc() -> None:
    svg = parse(chart_of({0: 3}))

    assert svg.get("role") == "img"
    title, desc = svg.find(f"{NS}title"), svg.find(f"{NS}desc")
    assert title is not None and desc is not None
    assert svg.get("aria-labelledby", "").split() == [title.get("id"), desc.get("id")]
    assert title.text == "Scores"


def test_the_description_says_weeks_answered_first_and_last_week_and_latest_answer() -> None:
    chart = score_chart([(week(0), 3), (week(1), 4), (week(3), 2)], title="Scores", until=week(5))

    desc = parse(chart).find(f"{NS}desc")

    assert desc is not None
    assert desc.text == (
        "3 of 6 weeks answered, from week 2 of 2026 to week 7 of 2026. Latest answer: Bad, in week 5 of 2026."
    )


def test_the_description_of_one_week_is_singular() -> None:
    desc = parse(chart_of({0: 5})).find(f"{NS}desc")

    assert desc is not None
    assert desc.text == (
        "1 of 1 week answered, from week 2 of 2026 to week 2 of 2026."
        " Latest answer: Very good, in week 2 of 2026."
    )


def test_the_y_axis_names_the_five_scores_in_the_participants_words() -> None:
    from scores.views import SMILEYS

    svg = parse(chart_of({0: 3}))

    words = [str(label) for _value, label, _image in SMILEYS]
    assert words == ["Very bad", "Bad", "So-so", "Good", "Very good"]
    assert [text for text in texts(svg) if text in words] == list(reversed(words))  # top to bottom
    assert len([line for line in svg.iter(f"{NS}line") if line.get("stroke-dasharray")]) == 5


def test_the_scale_words_and_the_description_are_translated() -> None:
    with translation.override("nl"):
        chart = chart_of({0: 1})

    svg = parse(chart)
    assert "Heel slecht" in texts(svg)
    assert "Very bad" not in texts(svg)
    desc = svg.find(f"{NS}desc")
    assert desc is not None and "Heel slecht" in (desc.text or "")


def test_the_x_axis_labels_a_handful_of_weeks_and_the_latest_among_them() -> None:
    svg = parse(chart_of({n: 3 for n in range(20)}))

    week_labels = [text for text in texts(svg) if re.fullmatch(r"\d{4}-W\d{2}", text)]
    assert 2 <= len(week_labels) <= MAX_X_LABELS
    assert week_labels[-1] == "2026-W21"


def test_three_years_of_weeks_stay_readable_and_inside_the_drawing() -> None:
    answered = {n: 1 + n % 5 for n in range(160) if n % 17 != 5}  # a missed week now and then
    chart = chart_of(answered)
    svg = parse(chart)

    assert len(chart.points) == 160
    assert len(circles(svg)) == len(answered)
    assert len(polylines(svg)) == runs_of_two_or_more(list(answered))
    week_labels = [text for text in texts(svg) if re.fullmatch(r"\d{4}-W\d{2}", text)]
    assert 3 <= len(week_labels) <= MAX_X_LABELS
    _x, _y, width, height = (float(number) for number in svg.get("viewBox", "").split())
    for circle in circles(svg):
        radius = float(circle.get("r", ""))
        assert radius <= float(circle.get("cx", "")) <= width - radius
        assert radius <= float(circle.get("cy", "")) <= height - radius
    # Dots that would touch their neighbours shrink; the labels do not overlap (about 60 units each).
    xs = sorted(
        float(text.get("x", "")) for text in svg.iter(f"{NS}text") if text.get("text-anchor") == "middle"
    )
    assert all(right - left >= 60 for left, right in itertools.pairwise(xs))


def test_the_drawing_has_a_fixed_viewbox_and_scales_to_its_container() -> None:
    svg = parse(chart_of({0: 3}))

    assert svg.get("viewBox") == "0 0 720 240"
    assert svg.get("width") == "100%"
    assert svg.get("height") is None


def test_a_title_with_markup_is_text_not_markup() -> None:
    title = '<script>alert("x")</script> & <b onload="x">'
    chart = score_chart([(week(0), 3)], title=title)

    assert "<script" not in chart.svg
    assert "<b " not in chart.svg
    svg = parse(chart)
    assert [element for element in svg.iter() if not element.tag.startswith(NS)] == []
    assert not list(svg.iter(f"{NS}script"))
    title_element = svg.find(f"{NS}title")
    assert title_element is not None and title_element.text == title


def test_the_chart_loads_nothing_and_runs_nothing() -> None:
    chart = chart_of({0: 3, 1: 4, 3: 5})

    for element in parse(chart).iter():
        assert not element.tag.endswith(("script", "foreignObject", "image", "use", "style"))
        for name in element.attrib:
            # No event handlers, links or style attributes (the page's CSP blocks inline styles).
            assert not name.startswith("on")
            assert "href" not in name
            assert name != "style"
    assert "url(" not in chart.svg
    assert "@import" not in chart.svg


def test_no_answers_gives_a_chart_that_says_so() -> None:
    chart = score_chart([], title="Scores", until=week(3))
    svg = parse(chart)

    assert chart.points == []
    assert "No answers yet" in texts(svg)
    assert circles(svg) == [] and polylines(svg) == []
    desc = svg.find(f"{NS}desc")
    assert desc is not None and desc.text == "No answers yet"
    assert svg.get("aria-labelledby") == "score-chart-title score-chart-desc"


def test_two_charts_with_their_own_prefix_share_no_element_id() -> None:
    first = parse(score_chart([(week(0), 3)], title="A", id_prefix="chart-a"))
    second = parse(score_chart([], title="B", id_prefix="chart-b"))

    ids = [[element.get("id") for element in svg.iter() if element.get("id")] for svg in (first, second)]
    assert ids == [["chart-a-title", "chart-a-desc"], ["chart-b-title", "chart-b-desc"]]
    assert first.get("aria-labelledby") == "chart-a-title chart-a-desc"


@pytest.mark.parametrize("prefix", ["", "1chart", 'x" onload="alert(1)', "a b"])
def test_an_id_prefix_that_is_no_valid_id_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="id_prefix"):
        score_chart([(week(0), 3)], title="Scores", id_prefix=prefix)


@pytest.mark.parametrize("value", [0, 6, -1])
def test_a_score_off_the_scale_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match="scale"):
        score_chart([(week(0), value)], title="Scores")


def test_two_scores_in_one_week_are_refused() -> None:
    with pytest.raises(ValueError, match="two scores"):
        score_chart([(week(0), 3), (week(0) + dt.timedelta(days=1), 4)], title="Scores")


def contrast(colour: str, background: str) -> float:
    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        red, green, blue = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    lighter, darker = sorted((luminance(colour), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_colours_stand_out_against_white() -> None:
    assert BACKGROUND_COLOUR == "#ffffff"
    assert contrast(TEXT_COLOUR, BACKGROUND_COLOUR) >= 4.5
    assert contrast(LINE_COLOUR, BACKGROUND_COLOUR) >= 3
    assert contrast(GRID_COLOUR, BACKGROUND_COLOUR) >= 3
    svg = parse(chart_of({0: 3, 1: 4}))
    assert {line.get("stroke") for line in polylines(svg)} == {LINE_COLOUR}
    assert {circle.get("fill") for circle in circles(svg)} == {LINE_COLOUR}
    assert svg.get("fill") == TEXT_COLOUR  # the texts inherit it
