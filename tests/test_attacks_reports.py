"""Attacks on the employer reports (#19), as an employer, a group of employers or a script would make them:
each test states what the attacker does and what it must not learn. A test marked xfail(strict) is a
weakness found and not fixed here: its reason says the attack and a direction for the fix."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from participants.models import Department, Organisation, Participant
from preventicons.models import OutboundMessage
from preventicons.roles import Role
from scores import reports, rounds, weekclose
from scores.disclosure import ORGANISATION, Shown
from scores.models import ClosedWeek, Figures, WeeklyAggregate, WeeklyLink
from scores.reports import Level
from tests.conftest import ALL_DATABASES, login_verified, make_organisation, make_staff
from tests.scores.people import add_score, make_participant
from tests.scores.reporting import departments_of, freeze_week, frozen_with_code, weeks_from

pytestmark = pytest.mark.usefixtures("english", "empty_cache")

FIRST_WEEK = dt.date(2026, 1, 5)
MIXED = [1, 2, 3, 4, 5, 3, 4]  # seven answers any report may show
FIVE = [2, 3, 4, 4, 5]  # five answers that pass every rule
SIX = [1, 3, 3, 4, 5, 2]
ELEVEN = [3, 4, 4, 5, 2, 3, 4, 3, 4, 5, 3]


def sector_answers(organisation: Organisation) -> list[int | None]:
    report = reports.build_report(organisation, Level.WEEK)
    assert report.sector is not None
    return [cell.answers for cell in report.sector]


@pytest.mark.django_db
def test_setting_one_organisations_sbi_code_does_not_change_a_past_weeks_sector_figure() -> None:
    """Who is in a past week's sector must not follow today's SBI codes: a code set or changed later would
    move every past sector figure by exactly that organisation's, for an employer looking before and after."""
    weeks = weeks_from(FIRST_WEEK, 2)
    own = frozen_with_code("Own", "8610", MIXED, weeks)
    frozen_with_code("Hospital", "8620", MIXED, weeks)
    frozen_with_code("Clinic", "8690", [*MIXED, 5], weeks)
    frozen_with_code("Nursing", "8691", [*MIXED, 5, 5], weeks)
    newcomer = frozen_with_code("Newcomer", "", [4, 4, 2, 3, 5, 1], weeks)

    before = sector_answers(own)
    assert before == [7 + 8 + 9] * 2

    # The admin records Newcomer's SBI code: it is in care too.
    newcomer.sbi_code = "8610"
    newcomer.save(update_fields=["sbi_code"])

    after = sector_answers(own)
    # The attacker's difference: [6, 6], Newcomer's own answers in each past week (and its average with them).
    assert after == before


@pytest.mark.django_db
def test_a_week_compared_before_another_organisation_closed_it_does_not_change_when_it_does() -> None:
    """The beat closes organisations one after another (and a failed close catches up later): an employer
    polling during the run must not see a week's sector figure first without, then with one more
    organisation, whose figure the difference would be."""
    weeks = weeks_from(FIRST_WEEK, 2)
    own = frozen_with_code("Own", "8610", MIXED, weeks)
    frozen_with_code("Hospital", "8620", MIXED, weeks)
    frozen_with_code("Clinic", "8690", [*MIXED, 5], weeks)
    frozen_with_code("Nursing", "8691", [*MIXED, 5, 5], weeks)
    late = frozen_with_code("Late", "8692", [4, 4, 2, 3, 5, 1], weeks[:1])

    # Late has not closed the last week yet: that week's comparisons wait for it.
    before = sector_answers(own)
    assert before == [7 + 8 + 9 + 6, None]

    care = departments_of(late)["Care"]
    freeze_week(late, weeks[1], {care: [4, 4, 2, 3, 5, 1]})  # Late's close commits

    after = sector_answers(own)
    assert after == [30, 30]
    # The attacker's difference: no figure it saw before changed.
    assert all(seen is None or seen == now for seen, now in zip(before, after, strict=True))


def freeze_invited(
    organisation: Organisation,
    week: dt.date,
    answers: dict[Department, list[int]],
    invited: dict[Department, int],
) -> None:
    """A closed week as the close writes it, with the links each department was sent; nobody in no
    department (the organisation's invited count is the sum of its departments')."""
    everyone: list[int] = []
    for department, values in answers.items():
        everyone.extend(values)
        WeeklyAggregate.objects.create(
            organisation=organisation,
            department=department,
            week=week,
            figures=Figures.of(values, invited=invited[department]).sealed_text(),
        )
    WeeklyAggregate.objects.create(
        organisation=organisation,
        department=None,
        week=week,
        figures=Figures.of(everyone, invited=sum(invited.values())).sealed_text(),
    )
    ClosedWeek.objects.create(organisation=organisation, week=week)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_participation_band_does_not_move_when_one_person_who_never_answers_pauses() -> None:
    """The band once divided a group's answers by those who could take part that week (active, listed, not
    paused), beside the exact answer count: the week the band moved while the answers stayed the same,
    someone had paused or stopped. It now divides the organisation's answers by the people on the
    employer's own list, which no pause, stop or decline changes, and departments show no band."""
    organisation = make_organisation("Zorggroep Noord", "zorg")
    people = [make_participant(organisation) for _ in range(8)]
    answering, silent = people[:6], people[6:]
    weeks = weeks_from(FIRST_WEEK, 2)
    for number, week in enumerate(weeks):
        if number == 1:
            silent[0].messages_paused = True  # one who never answers pauses (or stops) in the second week
            silent[0].save()
        for index, person in enumerate(answering):
            add_score(person, week=week, value=1 + (index + number) % 5)
        weekclose.close_week(organisation_id=organisation.pk, week=week, today=week + dt.timedelta(days=7))
    report = reports.build_report(organisation, Level.WEEK)
    whole = report.rows[0].cells
    assert [cell.answers for cell in whole if cell] == [6, 6]
    assert [cell.participation for cell in whole if cell] == [75, 75]  # six of the eight on the list
    for row in report.rows[1:]:
        assert all(cell is None or cell.participation is None for cell in row.cells), row.label


# --- what held: authorization, URL tampering, CSV injection ---


@pytest.mark.django_db
def test_an_employer_gets_404_for_every_report_url_of_another_organisation_and_for_unknown_levels() -> None:
    own = make_organisation("Own")
    other = make_organisation("Other")
    for week in weeks_from(FIRST_WEEK, 2):
        freeze_week(other, week, {departments_of(other)["Care"]: MIXED})
    client = login_verified(Client(), make_staff("hr-own", Role.EMPLOYER, own))
    for name, kwargs in [
        ("scores:report", {"level": "week"}),
        ("scores:report", {"level": "quarter"}),
        ("scores:report-print", {"level": "year"}),
        ("scores:report-csv", {"level": "week"}),
        ("scores:report-settings", {}),
    ]:
        response = client.get(reverse(name, kwargs={"organisation_id": other.pk, **kwargs}))
        assert response.status_code == 404, name
    settings_url = reverse("scores:report-settings", kwargs={"organisation_id": other.pk})
    assert client.post(settings_url, {"threshold": 9}).status_code == 404
    for level in ("month", "WEEK", "all", "department"):
        assert client.get(f"/reports/{own.pk}/{level}/").status_code == 404, level
    assert reports.threshold_of(other.pk) == 5


@pytest.mark.django_db
@time_machine.travel(dt.datetime(2026, 11, 16, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam")), tick=False)
def test_a_dump_taken_while_the_rounds_messages_wait_does_not_tell_who_takes_part() -> None:
    organisation = make_organisation("Zorggroep Noord", "zorg")
    taking_part = make_participant(organisation)
    paused = make_participant(organisation, messages_paused=True)
    declined = make_participant(organisation, status=Participant.Status.DECLINED)

    rounds.run_weekly_round(organisation=organisation, week=dt.date(2026, 11, 16))

    # The operator's dump, before the outbox has sent anything: only tables in clear, no key.
    links = dict(WeeklyLink.objects.values_list("id", "participant_id"))
    assert set(links.values()) == {taking_part.pk, paused.pk, declined.pk}
    referenced = {
        links[uuid.UUID(reference)]
        for reference in OutboundMessage.objects.exclude(reference="").values_list("reference", flat=True)
        if uuid.UUID(reference) in links
    }
    # Every link's message waits alike, on the channel its person chose: the outbox names nobody apart.
    assert referenced == set(links.values())
    per_link = Counter(OutboundMessage.objects.exclude(reference="").values_list("reference", "channel"))
    assert set(per_link.values()) == {1} and len({channel for _reference, channel in per_link}) == 1

    # Sent, only the participant's went out; the others' ended unsent and their rows hold no reference.
    from django.core import mail

    from preventicons import messaging

    messaging.send_due_messages()
    assert [message.to for message in mail.outbox] == [[taking_part.email]]
    assert not OutboundMessage.objects.exclude(reference="").exists()


@pytest.mark.parametrize("answers", [[3, 4, 4, 5, 5, 3], [3, 4, 4, 5, 5, 2], [1, 2, 2, 1, 2, 4]])
@pytest.mark.django_db
def test_a_department_where_everyone_answered_shows_nothing_about_what_any_one_of_them_answered(
    answers: list[int],
) -> None:
    """#19: IT has six people on the employer's list and all six answered. A share of 0% hard weeks would tell
    the employer, of each of the six by name, that they answered 3, 4 or 5 that week; 17% (one in six) that
    each had five chances in six of a good week, as 83% (all but one) tells the opposite; and an average of
    4.7 from six says the same as 0%. Such a group shows its count only, the page says it is withheld to
    protect, and the organisation minus its shown groups does not give it back."""
    organisation = make_organisation("Zorggroep Noord", "zorg")
    departments = departments_of(organisation)
    finance, care, it = departments["Finance"], departments["Care"], departments["IT"]
    freeze_invited(
        organisation,
        FIRST_WEEK,
        {finance: SIX, care: [*ELEVEN, 1], it: answers},
        {finance: 8, care: 14, it: 6},
    )
    report = reports.build_report(organisation, Level.WEEK)
    cells = {row.key: row.cells[-1] for row in report.rows}
    cell = cells[it.pk]
    assert cell is not None and cell.answers == 6
    assert cell.shown is Shown.COUNT
    assert (cell.average, cell.hard_percent, cell.participation) == (None, None, None)
    # The rest is still a report: the organisation shows its figures, and what it shows minus the shown
    # departments is a group that could itself be shown.
    whole = cells[ORGANISATION]
    assert whole is not None and whole.shown is Shown.FIGURES
    shown = [
        key for key, other in cells.items() if key != ORGANISATION and other and other.shown == Shown.FIGURES
    ]
    assert it.pk not in shown
    remainder = {finance.pk: SIX, care.pk: [*ELEVEN, 1], it.pk: answers}
    withheld = [value for key, values in remainder.items() if key not in shown for value in values]
    assert 2 <= sum(value in (1, 2) for value in withheld) <= len(withheld) - 2


@pytest.mark.django_db
def test_a_request_that_read_the_version_before_a_close_and_the_rest_after_shows_no_partial_week() -> None:
    """A script fires requests while the beat closes: one reads the comparisons' version, Late's close
    commits, and it goes on to read which weeks are settled (all now) and the figures cached under the
    version it read (without Late's week). What it shows must still be a figure that never changes."""
    weeks = weeks_from(FIRST_WEEK, 2)
    own = frozen_with_code("Own", "8610", MIXED, weeks)
    hospital = frozen_with_code("Hospital", "8620", MIXED, weeks)
    frozen_with_code("Clinic", "8690", [*MIXED, 5], weeks)
    frozen_with_code("Nursing", "8691", [*MIXED, 5, 5], weeks)
    late = frozen_with_code("Late", "8692", [4, 4, 2, 3, 5, 1], weeks[:1])
    shown = reports.periods(weeks, Level.WEEK)

    version = reports._comparison_version()
    # Another employer's request: the shared organisation-wide figures are now cached under that version.
    reports.comparisons(hospital, shown, version=version)
    freeze_week(late, weeks[1], {departments_of(late)["Care"]: [4, 4, 2, 3, 5, 1]})
    sector, _everyone = reports.comparisons(own, shown, version=version)

    assert sector is not None
    assert sector_answers(own) == [30, 30]
    assert sector[1].answers in (None, 30)  # as it was: 24, Late's six answers as the difference
