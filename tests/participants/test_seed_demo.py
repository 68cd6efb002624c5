"""seed_demo and demo_code: demo data that can be loaded twice, and that never reaches production."""

from __future__ import annotations

import datetime as dt
import re
from base64 import b32decode
from binascii import hexlify
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django.fixtures import Settings

from casefiles.models import AccessLogEntry, Dossier, ProgressNote, Trajectory, TrajectorySession
from notary.models import Attestation, Engagement, LedgerEntry
from participants.management.demo import DEMO_PASSWORD, LOGINS, ORGANISATIONS
from participants.models import (
    CasemanagerLink,
    ConsentRecord,
    Department,
    Organisation,
    Participant,
    ProcessingAgreement,
    StaffUser,
)
from preventicons.roles import Role, roles_of
from scores import reports
from scores.disclosure import Shown, Why
from scores.management import demo as scores_demo
from scores.management.demo import DEMO_EMPLOYER, DEMO_WEEKS
from scores.models import ClosedWeek, Score, WeeklyAggregate
from scores.queries import weekly_values_for
from scores.weekclose import monday_of
from tests.conftest import ALL_DATABASES

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

# Each seed lives through every demo week of every organisation (about 20 s on PostgreSQL for half a year):
# the tests that are not about the length of the demo live through a few weeks only.
SHORT_DEMO_WEEKS = 3


@pytest.fixture(autouse=True)
def short_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scores_demo, "DEMO_WEEKS", SHORT_DEMO_WEEKS)


@pytest.fixture
def full_demo(short_demo: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo as `make demo` seeds it: every one of its DEMO_WEEKS."""
    monkeypatch.setattr(scores_demo, "DEMO_WEEKS", DEMO_WEEKS)


SEEDED = (
    Organisation,
    Department,
    ProcessingAgreement,
    Participant,
    ConsentRecord,
    StaffUser,
    TOTPDevice,
    Score,
    ClosedWeek,
    WeeklyAggregate,
    CasemanagerLink,
    Dossier,
    ProgressNote,
    Trajectory,
    TrajectorySession,
    AccessLogEntry,
    Engagement,
    LedgerEntry,
    Attestation,
)


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in SEEDED}


def test_seeding_twice_leaves_the_same_data() -> None:
    seed()
    first = counts()
    participants = set(Participant.objects.values_list("pk", "email"))
    keys = set(TOTPDevice.objects.values_list("user__username", "key"))
    output = seed()
    assert counts() == first
    assert set(Participant.objects.values_list("pk", "email")) == participants
    assert set(TOTPDevice.objects.values_list("user__username", "key")) == keys
    assert "(0 added)" in output


def test_the_demo_has_weeks_of_scores_of_active_people_and_those_weeks_are_closed() -> None:
    seed()

    weeks = set(Score.objects.values_list("week", flat=True))
    assert len(weeks) == scores_demo.DEMO_WEEKS
    # Active people, and those the closed weeks made inactive (four demo weeks in a row without a score
    # happen now and then: the scores are drawn at random per pseudonym).
    holders = Participant.objects.with_status(Participant.Status.ACTIVE, Participant.Status.INACTIVE)
    found = sum(len(weekly_values_for(participant.pseudonym or "")) for participant in holders)
    assert found == Score.objects.count()
    closed = len(ORGANISATIONS) * scores_demo.DEMO_WEEKS
    assert ClosedWeek.objects.filter(week__in=weeks).count() == closed
    assert WeeklyAggregate.objects.filter(week__in=weeks, department__isnull=True).count() == closed


WEEKLY_LINK = re.compile(r"smiley link of ([^(]+) \(.*\n\s+https?://\S+(/w/[A-Za-z0-9_-]{43}/)")
INVITATION_LINK = re.compile(
    r"participants: ([^(]+) \(.*not enrolled yet.*\n\s+https?://\S+(/i/[A-Za-z0-9_-]{43}/)"
)


def test_the_demo_names_whose_unanswered_smiley_link_it_prints_and_a_fresh_one_once_used(
    client: Client,
) -> None:
    first = WEEKLY_LINK.search(seed())
    assert first is not None
    name, link = first.group(1).strip(), first.group(2)
    assert name in {person.name for person in Participant.objects.with_status(Participant.Status.ACTIVE)}
    page = client.get(link)
    assert page.status_code == 200 and 'class="week-form"' in page.content.decode()
    assert client.post(link, {"value": "2"}).status_code == 303

    second = WEEKLY_LINK.search(seed())

    assert second is not None and second.group(2) != link and second.group(1).strip() != name
    assert client.get(second.group(2)).status_code == 200


def test_the_demo_prints_a_fresh_invitation_link_of_someone_not_enrolled(client: Client) -> None:
    first, again = INVITATION_LINK.search(seed()), INVITATION_LINK.search(seed())

    assert first is not None and again is not None
    assert first.group(2) != again.group(2)  # a new token on every run
    name = first.group(1).strip()
    invited = [
        person
        for person in Participant.objects.with_status(Participant.Status.INVITED)
        if person.name == name
    ]
    assert len(invited) == 1 and invited[0].invitations.count() >= 2
    for link in (first.group(2), again.group(2)):
        page = client.get(link, follow=True)
        assert page.status_code == 200 and page.redirect_chain[-1][0].endswith("/enrol/")


def test_the_demo_weeks_are_made_by_the_round_and_the_week_close() -> None:
    from scores.models import WeeklyLink, WeeklyRound

    seed()

    this_week = monday_of(timezone.localdate())
    organisations = Organisation.objects.count()
    # A finished round for every demo week and this one, links only of this week (the close deleted the rest).
    assert WeeklyRound.objects.filter(finished_at__isnull=False).count() == organisations * (
        scores_demo.DEMO_WEEKS + 1
    )
    assert set(WeeklyLink.objects.values_list("week", flat=True)) == {this_week}
    # No score of a closed week keeps its department (the close rewrote them).
    assert not Score.objects.filter(week__lt=this_week, department__isnull=False).exists()


def test_the_demo_has_sectors_with_signed_agreements_and_a_department_of_four() -> None:
    seed()
    organisations = Organisation.objects.all()
    assert set(organisations.values_list("sector", flat=True)) == {"bouw", "zorg", "transport", "drukkerij"}
    for organisation in organisations:
        assert organisation.agreements.filter(party=ProcessingAgreement.Party.ORGANISATION).count() == 1
        assert organisation.sbi_code
        organisation.full_clean()  # a valid SBI code
    sizes = Department.objects.annotate(people=Count("participants")).values_list("people", flat=True)
    assert 4 in sizes
    assert 84 <= Participant.objects.count() <= 100


def test_the_demo_employer_has_at_least_three_peers_in_its_sbi_division() -> None:
    seed()
    employer = StaffUser.objects.get(username=DEMO_EMPLOYER)
    assert employer.organisation is not None
    peers = Organisation.objects.exclude(pk=employer.organisation.pk).filter(
        sbi_code__startswith=reports.sector_of(employer.organisation)
    )
    assert peers.count() >= 3
    for peer in peers:
        assert peer.participants.count() >= 10
    # The builder has no peers: its report shows why there is no sector figure.
    builder = Organisation.objects.get(sector="bouw")
    assert not Organisation.objects.exclude(pk=builder.pk).filter(
        sbi_code__startswith=reports.sector_of(builder)
    )


REPORTS_LINK = re.compile(
    rf"reports of ([^\n]+) for {DEMO_EMPLOYER} .*\n\s+https?://\S+(/reports/\d+/quarter/)"
)


@pytest.mark.usefixtures("full_demo")
def test_the_demo_employers_report_shows_trends_withheld_cells_and_a_sector_comparison(
    client: Client,
) -> None:
    from tests.conftest import login_verified

    printed = REPORTS_LINK.search(seed())

    assert printed is not None
    employer = StaffUser.objects.get(username=DEMO_EMPLOYER)
    assert employer.organisation is not None and printed.group(1) == employer.organisation.name
    login_verified(client, employer)
    assert client.get(printed.group(2)).status_code == 200
    # Two quarters and more, and thirteen weeks: a trend.
    quarters = reports.build_report(employer.organisation, reports.Level.QUARTER)
    assert len(quarters.periods) >= 2 and any(period.complete for period in quarters.periods)
    weeks = reports.build_report(employer.organisation, reports.Level.WEEK)
    assert len(weeks.periods) == reports.SHOWN_PERIODS[reports.Level.WEEK]
    cells = [cell for row in weeks.rows for cell in row.cells if cell is not None]
    # A department with its own figures; Facilitair (four people) always folded into "other departments";
    # and a group withheld, for too few answers or because it would reveal a smaller one.
    departments = [row for row in weeks.rows if isinstance(row.key, int)]
    assert any(cell and cell.shown is Shown.FIGURES for row in departments for cell in row.cells)
    facilitair = next(row for row in departments if row.label == "Facilitair")
    assert all(cell and cell.why is Why.FOLDED for cell in facilitair.cells)
    assert any(cell.shown is Shown.NOTHING and cell.why in {Why.FEW, Why.PROTECT} for cell in cells)
    assert weeks.sector is not None and any(cell.shown is Shown.FIGURES for cell in weeks.sector)
    # Three organisations outside care: all organisations minus the sector is never one of them.
    assert any(cell.shown is Shown.FIGURES for cell in weeks.everyone)
    page = client.get(f"/reports/{employer.organisation.pk}/week/").content.decode()
    assert "counted in “Other departments”" in page
    assert "fewer than 5 answers" in page or "it would reveal a smaller group" in page
    sector = next(cell for cell in weeks.sector if cell.shown is Shown.FIGURES)
    assert f"{sector.average} ({sector.answers})" in page  # the trend table's "average (answers)"


def test_demo_people_have_plausible_contact_data_that_is_stored_sealed() -> None:
    seed()
    people = list(Participant.objects.all())
    for person in people:
        assert re.fullmatch(r"[a-z]+\.[a-z]+@example\.nl", person.email or ""), person.email
        assert re.fullmatch(r"\+316\d{8}", person.mobile or ""), person.mobile
        assert len((person.name or "").split()) >= 2
    assert len({person.email for person in people}) == len(people)
    raw = Participant.objects.values_list("name", "email", "mobile")
    for columns in raw:
        assert all(column and column.startswith("v1.") for column in columns)
        assert not any("@" in str(column) or "+31" in str(column) for column in columns)


def test_active_demo_people_consented_and_have_a_pseudonym_and_invited_ones_do_not() -> None:
    seed()
    active = Participant.objects.with_status(Participant.Status.ACTIVE)
    invited = Participant.objects.with_status(Participant.Status.INVITED)
    assert active.exists() and invited.exists()
    assert all(person.pseudonym and ConsentRecord.objects.of(person.pk).exists() for person in active)
    assert all(
        person.pseudonym is None and not ConsentRecord.objects.of(person.pk).exists() for person in invited
    )


def test_there_is_one_login_per_role_with_the_demo_password_and_a_confirmed_totp_device() -> None:
    output = seed()
    for login in LOGINS:
        user = StaffUser.objects.get(username=login.username)
        assert login.role in roles_of(user)
        assert user.check_password(DEMO_PASSWORD)
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        secret = re.search(rf"otpauth://totp/Preventicons%3A{login.username}\?secret=([A-Z2-7]+)", output)
        assert secret is not None, f"no otpauth URI printed for {login.username}"
        assert hexlify(b32decode(secret.group(1))).decode() == device.key
        if login.role is Role.EMPLOYER:
            assert user.organisation is not None and user.organisation.name == login.organisation
    assert {login.role for login in LOGINS} == set(Role)
    assert "/account/login/" in output


@time_machine.travel(dt.datetime(2026, 11, 23, 9, 0, 5, tzinfo=dt.UTC), tick=False)
def test_demo_code_prints_a_code_the_device_accepts_once() -> None:
    seed()
    out = StringIO()
    call_command("demo_code", "demo-casemanager", stdout=out)
    code = out.getvalue().split()[0]
    assert re.fullmatch(r"\d{6}", code)
    device = TOTPDevice.objects.get(user__username="demo-casemanager")
    assert device.verify_token(code) is True
    again = StringIO()
    call_command("demo_code", "demo-casemanager", stdout=again)
    assert "already used" in again.getvalue()


def test_demo_code_for_a_login_without_a_device_fails_clearly() -> None:
    with pytest.raises(CommandError, match="no confirmed TOTP device"):
        call_command("demo_code", "nobody", stdout=StringIO())


def test_seed_demo_refuses_in_production(settings: Settings) -> None:
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        seed()
    assert counts() == {model.__name__: 0 for model in SEEDED}


def test_demo_code_refuses_in_production(settings: Settings) -> None:
    seed()
    settings.PRODUCTION = True
    out = StringIO()
    with pytest.raises(CommandError, match="production"):
        call_command("demo_code", "demo-admin", stdout=out)
    assert out.getvalue() == ""


def test_the_demo_casemanager_has_a_living_dashboard(client: Client) -> None:
    from tests.conftest import login_verified

    output = seed()

    assert "casefiles: 5 dossiers for demo-casemanager" in output
    casemanager = StaffUser.objects.get(username="demo-casemanager")
    page = login_verified(client, casemanager).get("/dossiers/").content.decode()
    for state in ("new help request", "overdue since", "no recent note", "closed"):
        assert state in page, state
    assert Trajectory.objects.count() == 2 and ProgressNote.objects.count() == 5
    (closed,) = [dossier for dossier in Dossier.objects.all() if not dossier.is_open]
    dossier_page = client.get(f"/dossiers/{closed.number}/").content.decode()
    assert "Counselling" in dossier_page and "read only" in dossier_page


def test_the_demo_employer_downloads_the_demo_attestation_and_it_verifies(client: Client) -> None:
    from notary import attestations
    from tests.conftest import login_verified

    output = seed()

    assert "notary: demo-auditor engaged by Zorggroep De Linde" in output
    attestation = Attestation.objects.get()
    assert attestation.organisation_id == Organisation.objects.get(name="Zorggroep De Linde").pk
    assert attestation.period_end < timezone.localdate()
    assert attestations.period_length(attestation.period_start, attestation.period_end) == "quarter"
    employer = StaffUser.objects.get(username="demo-hr-zorg")
    login_verified(client, employer)
    data = client.get(f"/attestations/{attestation.pk}/download/").content
    assert attestations.verify_file(data).valid
    auditor = StaffUser.objects.get(username="demo-auditor")
    page = login_verified(Client(), auditor).get(
        f"/notary/organisations/{attestation.organisation_id}/attestations/"
    )
    assert page.status_code == 200
