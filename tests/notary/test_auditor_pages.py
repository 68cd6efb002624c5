"""The auditor's pages under /notary/ (issue 20, item 3) and the engagement in the admin: an auditor sees only
the organisations that engaged them, per month, quarter or year, by reference and week; never a dossier
number, a name, a contact detail, a note's text or a score."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from casefiles import accesslog
from casefiles import notes as casenotes
from casefiles.models import AccessLogEntry, Trajectory
from notary import periods, references
from notary.admin import EngagementForm
from notary.models import Engagement
from participants.models import Organisation, StaffUser
from preventicons.roles import Role
from tests.conftest import ALL_DATABASES, login_verified, make_organisation, make_staff
from tests.notary.garant import Garant, append_trajectory, clean_garant, sign_head, today

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]

NOTE_TEXT = "Gesprek over werkdruk en slaapproblemen."


@pytest.fixture
def garant(organisation: Organisation, auditor: StaffUser) -> Garant:
    return clean_garant(organisation, auditor)


@pytest.fixture
def trajectory(garant: Garant) -> Trajectory:
    return Trajectory.objects.create(
        dossier=garant.world.dossier, kind="coaching", started_on=today() - dt.timedelta(days=2)
    )


def as_user(user: StaffUser) -> Client:
    return login_verified(Client(HTTP_ACCEPT_LANGUAGE="en"), user)


def organisation_url(organisation_id: int, period: str = "") -> str:
    url = reverse("notary:organisation", args=[organisation_id])
    return f"{url}?period={period}" if period else url


def cells(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", page, re.S)]


# --- who sees what ---


def test_the_dashboard_lists_only_the_organisations_that_engaged_the_auditor(
    garant: Garant, other_organisation: Organisation
) -> None:
    page = as_user(garant.auditor).get(reverse("notary:dashboard")).content.decode()

    assert garant.organisation.name in page
    assert other_organisation.name not in page
    assert organisation_url(garant.organisation.pk) in page


def test_the_auditor_finds_the_notary_in_the_navigation(garant: Garant) -> None:
    page = as_user(garant.auditor).get("/staff/").content.decode()

    assert 'href="/notary/"' in page and "Not available yet" not in page


def test_an_organisation_that_did_not_engage_the_auditor_answers_as_one_that_does_not_exist(
    garant: Garant, other_organisation: Organisation
) -> None:
    client = as_user(garant.auditor)

    assert client.get(organisation_url(garant.organisation.pk)).status_code == 200
    assert client.get(organisation_url(other_organisation.pk)).status_code == 404
    assert client.get(organisation_url(other_organisation.pk + 1000)).status_code == 404


def test_another_auditor_does_not_see_the_engaged_organisation(garant: Garant) -> None:
    colleague = make_staff("garant-twee", Role.AUDITOR)

    response = as_user(colleague).get(organisation_url(garant.organisation.pk))

    assert response.status_code == 404


@pytest.mark.parametrize("persona", ["employer", "platform_admin"])
def test_other_staff_roles_are_refused(garant: Garant, persona: str, request: pytest.FixtureRequest) -> None:
    client = as_user(request.getfixturevalue(persona))

    assert client.get(reverse("notary:dashboard")).status_code == 403
    assert client.get(organisation_url(garant.organisation.pk)).status_code == 403


def test_the_casemanager_is_refused(garant: Garant) -> None:
    client = as_user(garant.world.anna)

    assert client.get(organisation_url(garant.organisation.pk)).status_code == 403


def test_without_the_second_factor_the_auditor_is_sent_to_the_login(garant: Garant) -> None:
    client = Client()
    client.force_login(garant.auditor)

    response = client.get(organisation_url(garant.organisation.pk))

    assert response.status_code == 302 and response["Location"].startswith(reverse("two_factor:login"))


def test_a_post_is_refused(garant: Garant) -> None:
    assert as_user(garant.auditor).post(organisation_url(garant.organisation.pk)).status_code == 405


# --- periods ---


def test_the_page_shows_the_current_quarter_by_default(garant: Garant) -> None:
    page = as_user(garant.auditor).get(organisation_url(garant.organisation.pk)).content.decode()

    current = periods.quarter_of(today())
    assert f'<option value="{current.key}" selected>' in page


@pytest.mark.parametrize("period", ["month", "year"])
def test_the_auditor_chooses_a_month_or_a_year(garant: Garant, period: str) -> None:
    chosen = periods.month(today().year, today().month) if period == "month" else periods.year(today().year)

    page = as_user(garant.auditor).get(organisation_url(garant.organisation.pk, chosen.key)).content.decode()

    assert f'<option value="{chosen.key}" selected>' in page


@pytest.mark.parametrize(
    "period", ["2026-W05", "2026-12-01", "2026-Q5", "1999", "nonsense", f"{dt.date.today().year + 1}"]
)
def test_a_week_a_day_a_malformed_or_future_period_is_not_found(garant: Garant, period: str) -> None:
    response = as_user(garant.auditor).get(organisation_url(garant.organisation.pk, period))

    assert response.status_code == 404


# --- what the organisation page shows ---


def test_the_page_lists_the_trajectories_with_their_weeks_outcome_and_sign_off(
    garant: Garant, trajectory: Trajectory
) -> None:
    reference = append_trajectory(trajectory, sessions=3, outcome="improved", took_place=True)

    page = as_user(garant.auditor).get(organisation_url(garant.organisation.pk)).content.decode()

    row = cells(page)
    week = today() - dt.timedelta(days=2)
    iso = week.isocalendar()
    assert reference in row and "Coaching" in row and f"{iso.year}-W{iso.week:02d}" in row
    assert "improved" in row and "yes, it took place" in row
    assert 'id="attest-heading"' in page


def test_the_checks_are_shown_with_their_result(garant: Garant) -> None:
    page = as_user(garant.auditor).get(organisation_url(garant.organisation.pk)).content.decode()

    for code in (
        "looks_within_assignment",
        "nightly_anonymisation",
        "agreements_first",
        "threshold_never_lowered",
    ):
        assert f'id="check-{code}"' in page
    # No head has been signed in this test: the ledger check fails and says so.
    assert "No signed tree head yet" in page


def test_the_signed_head_is_shown(garant: Garant) -> None:
    head = sign_head()

    page = as_user(garant.auditor).get(organisation_url(garant.organisation.pk)).content.decode()

    assert f"covers {head.tree_size} entries" in page and head.key_fingerprint in page


def test_no_page_shows_a_dossier_number_a_name_a_contact_detail_a_note_or_a_score(
    garant: Garant, trajectory: Trajectory
) -> None:
    world = garant.world
    reference = append_trajectory(trajectory, sessions=3, outcome="improved")
    casenotes.add_note(world.dossier, kind="intake", text=NOTE_TEXT, user=world.anna)
    sign_head()
    client = as_user(garant.auditor)

    pages = [
        client.get(reverse("notary:dashboard")).content.decode(),
        client.get(organisation_url(garant.organisation.pk)).content.decode(),
        client.get(reverse("notary:spot-check", args=[garant.organisation.pk, reference])).content.decode(),
    ]

    participant = world.participant
    secrets = [world.dossier.number, participant.name, participant.email, participant.mobile, NOTE_TEXT]
    for page in pages:
        for secret in secrets:
            assert secret and secret not in page
        assert "smiley" not in page and "<svg" not in page
    # The participant's weekly scores were 4, 4, 5, 4 and 2 (tests.casefiles.world): the trajectory table
    # holds the reference, the kind, weeks, 3 sessions and the outcome, and none of those numbers.
    table = pages[1].split('id="trajectories-heading"')[1].split("</section>")[0]
    assert not {"2", "4", "5"} & set(cells(table))


# --- the spot check ---


def test_the_spot_check_counts_the_notes_by_kind(garant: Garant, trajectory: Trajectory) -> None:
    world = garant.world
    reference = append_trajectory(trajectory)
    casenotes.add_note(world.dossier, kind="intake", text=NOTE_TEXT, user=world.anna)
    for _n in range(3):
        casenotes.add_note(world.dossier, kind="session", text=NOTE_TEXT, user=world.anna)

    page = (
        as_user(garant.auditor)
        .get(reverse("notary:spot-check", args=[garant.organisation.pk, reference]))
        .content.decode()
    )

    assert cells(page) == ["intake", "1", "session", "3", "evaluation", "0", "closing", "0", "4"]
    assert NOTE_TEXT not in page and world.dossier.number not in page


def test_attack_a_spot_check_is_in_the_access_log_naming_the_auditor_and_the_reference_only(
    garant: Garant, trajectory: Trajectory
) -> None:
    world = garant.world
    reference = append_trajectory(trajectory)
    casenotes.add_note(world.dossier, kind="intake", text=NOTE_TEXT, user=world.anna)
    before = AccessLogEntry.objects.count()

    response = as_user(garant.auditor).get(
        reverse("notary:spot-check", args=[garant.organisation.pk, reference]),
        REMOTE_ADDR="192.0.2.40",
    )

    assert response.status_code == 200
    # The look is logged (NEN 7513): without this, an auditor's looks at dossiers left no trace.
    entry = AccessLogEntry.objects.order_by("-sequence").first()
    assert AccessLogEntry.objects.count() == before + 1 and entry is not None
    assert entry.action == AccessLogEntry.Action.SPOT_CHECK
    assert (entry.staff_user_id, entry.staff_username) == (garant.auditor.pk, garant.auditor.get_username())
    # It names the trajectory as the auditor's page does, by reference: no dossier number, which would tie
    # the reference to the dossier for good, past the retention that deletes that link.
    assert entry.detail == f"reference {reference}"
    assert entry.dossier_number == ""
    dump = " ".join(
        str(value) for value in AccessLogEntry.objects.filter(pk=entry.pk).values().get().values()
    )
    assert world.dossier.number not in dump and str(trajectory.pk) not in dump
    assert accesslog.verify_chain() is None


def test_a_spot_check_not_found_is_not_logged(garant: Garant, trajectory: Trajectory) -> None:
    append_trajectory(trajectory)
    before = AccessLogEntry.objects.count()

    response = as_user(garant.auditor).get(
        reverse("notary:spot-check", args=[garant.organisation.pk, "TR-0000-0000-0000"])
    )

    assert response.status_code == 404 and AccessLogEntry.objects.count() == before


def test_a_reference_retention_forgot_says_so(garant: Garant, trajectory: Trajectory) -> None:
    reference = append_trajectory(trajectory)
    references.forget([trajectory.pk])

    response = as_user(garant.auditor).get(
        reverse("notary:spot-check", args=[garant.organisation.pk, reference])
    )

    assert response.status_code == 200
    assert "Retention has forgotten which dossier" in response.content.decode()


def test_a_reference_of_another_organisation_or_none_at_all_is_not_found(
    garant: Garant, trajectory: Trajectory, auditor: StaffUser
) -> None:
    reference = append_trajectory(trajectory)
    elsewhere = make_organisation("Transport West", "transport")
    Engagement.objects.create(auditor_id=auditor.pk, organisation_id=elsewhere.pk, engaged_on=today())
    client = as_user(auditor)

    assert client.get(reverse("notary:spot-check", args=[elsewhere.pk, reference])).status_code == 404
    assert (
        client.get(
            reverse("notary:spot-check", args=[garant.organisation.pk, "TR-0000-0000-0000"])
        ).status_code
        == 404
    )


# --- the engagement in the admin ---


def test_the_platform_admin_engages_an_auditor_for_an_organisation(
    platform_admin: StaffUser, auditor: StaffUser, organisation: Organisation
) -> None:
    client = as_user(platform_admin)

    response = client.post(
        reverse("admin:notary_engagement_add"),
        {"organisation_id": organisation.pk, "auditor_id": auditor.pk, "engaged_on": "2026-11-02"},
    )

    assert response.status_code == 302
    engagement = Engagement.objects.get()
    assert (engagement.auditor_id, engagement.organisation_id) == (auditor.pk, organisation.pk)
    listing = client.get(reverse("admin:notary_engagement_changelist")).content.decode()
    assert organisation.name in listing and auditor.username in listing


def test_only_an_auditor_can_be_engaged(
    platform_admin: StaffUser, auditor: StaffUser, casemanager: StaffUser, organisation: Organisation
) -> None:
    client = as_user(platform_admin)

    response = client.post(
        reverse("admin:notary_engagement_add"),
        {"organisation_id": organisation.pk, "auditor_id": casemanager.pk, "engaged_on": "2026-11-02"},
    )

    assert response.status_code == 200 and not Engagement.objects.exists()


def test_an_auditor_who_lost_the_role_since_the_form_was_shown_is_refused(
    auditor: StaffUser, organisation: Organisation
) -> None:
    form = EngagementForm(
        data={"organisation_id": organisation.pk, "auditor_id": auditor.pk, "engaged_on": "2026-11-02"}
    )
    auditor.groups.remove(Group.objects.get(name=Role.AUDITOR.value))

    assert not form.is_valid() and "auditor_id" in form.errors


def test_an_organisation_engages_the_same_auditor_once(
    platform_admin: StaffUser, auditor: StaffUser, organisation: Organisation
) -> None:
    Engagement.objects.create(auditor_id=auditor.pk, organisation_id=organisation.pk, engaged_on=today())

    response = as_user(platform_admin).post(
        reverse("admin:notary_engagement_add"),
        {"organisation_id": organisation.pk, "auditor_id": auditor.pk, "engaged_on": "2026-11-02"},
    )

    assert response.status_code == 200 and Engagement.objects.count() == 1
