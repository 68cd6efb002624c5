"""The auditor's privacy checks (issue 20, item 3): each passes on a clean setup and fails, naming the
finding by access log entry, night or week, when broken."""

from __future__ import annotations

import datetime as dt

import pytest

from casefiles import accesslog, assignment
from casefiles.models import AccessLogEntry, Deputy
from notary import checks
from notary.checks import CheckResult, run_checks, week_label
from participants.models import Organisation, StaffUser
from preventicons.roles import Role
from scores import reports
from scores.models import ReportSettingChange
from tests.conftest import ALL_DATABASES, make_staff
from tests.notary.garant import (
    Garant,
    append_organisation_agreement,
    append_threshold_change,
    clean_garant,
    monday_of,
    sign_head,
    today,
)
from tests.scores.reporting import freeze_week

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]

Action = AccessLogEntry.Action
CODES = [
    "looks_within_assignment",
    "nightly_anonymisation",
    "agreements_first",
    "threshold_never_lowered",
    "ledger_intact",
]


@pytest.fixture
def garant(organisation: Organisation, auditor: StaffUser) -> Garant:
    return clean_garant(organisation, auditor)


def checked(garant: Garant) -> dict[str, CheckResult]:
    return {result.code: result for result in run_checks(garant.organisation.pk, garant.start, garant.end)}


def look(user: StaffUser, garant: Garant, action: str = Action.VIEW_DOSSIER) -> AccessLogEntry:
    return accesslog.record(action, user=user, dossier_number=garant.world.dossier.number)


def test_every_check_passes_on_a_clean_setup(garant: Garant) -> None:
    look(garant.world.anna, garant)
    look(garant.world.anna, garant, Action.VIEW_SCORES)
    sign_head()

    results = run_checks(garant.organisation.pk, garant.start, garant.end)

    assert [result.code for result in results] == CODES
    assert all(result.passed for result in results), [r for r in results if not r.passed]
    assert all(result.findings == 0 for result in results)


# --- a: looks within an assignment or deputy period ---


def test_a_look_by_a_casemanager_neither_assigned_nor_deputy_is_a_finding(garant: Garant) -> None:
    look(garant.world.anna, garant)
    stray = look(garant.world.bert, garant, Action.REVEAL_CONTACT)

    result = checked(garant)["looks_within_assignment"]

    assert not result.passed and result.findings == 1
    assert f"{stray.sequence} ({week_label(today())})" in result.detail
    assert garant.world.dossier.number not in result.detail


def test_a_deputy_within_the_absence_period_looks_within_it(garant: Garant) -> None:
    Deputy.objects.create(
        casemanager_id=garant.world.anna.pk,
        deputy_id=garant.world.bert.pk,
        starts_on=today() - dt.timedelta(days=1),
        ends_on=today(),
    )
    look(garant.world.bert, garant, Action.DEPUTY_VIEW)

    assert checked(garant)["looks_within_assignment"].passed


def test_a_deputy_after_the_absence_period_is_a_finding(garant: Garant) -> None:
    Deputy.objects.create(
        casemanager_id=garant.world.anna.pk,
        deputy_id=garant.world.bert.pk,
        starts_on=today() - dt.timedelta(days=5),
        ends_on=today() - dt.timedelta(days=1),
    )
    look(garant.world.bert, garant, Action.DEPUTY_VIEW)

    assert checked(garant)["looks_within_assignment"].findings == 1


def test_a_reassignment_moves_who_may_look_from_that_entry_on(
    garant: Garant, platform_admin: StaffUser
) -> None:
    before = look(garant.world.anna, garant)
    assignment.reassign(garant.world.dossier, to=garant.world.bert, by=platform_admin)
    look(garant.world.bert, garant, Action.ADD_NOTE)
    late = look(garant.world.anna, garant)

    result = checked(garant)["looks_within_assignment"]

    assert result.findings == 1
    assert f"{late.sequence} (" in result.detail and f"{before.sequence} (" not in result.detail


def test_the_participants_own_request_and_the_admins_reassignment_are_no_look(
    garant: Garant, platform_admin: StaffUser
) -> None:
    accesslog.record_participant_request(Action.REASSIGN, dossier_number=garant.world.dossier.number)
    accesslog.record(Action.SEARCH, user=platform_admin, dossier_number=garant.world.dossier.number)

    assert checked(garant)["looks_within_assignment"].passed


def test_looks_at_another_organisations_dossiers_are_not_this_organisations(
    garant: Garant, other_organisation: Organisation
) -> None:
    stranger = make_staff("cm-elsewhere", Role.CASEMANAGER)
    accesslog.record(Action.VIEW_DOSSIER, user=stranger, dossier_number="D-OTHERONE")

    assert checked(garant)["looks_within_assignment"].passed


# --- b: a summary for every night ---


def test_a_missing_night_is_counted_and_named(organisation: Organisation, auditor: StaffUser) -> None:
    missing = today() - dt.timedelta(days=3)
    garant = clean_garant(organisation, auditor, missing_nights=(missing,))

    result = checked(garant)["nightly_anonymisation"]

    assert not result.passed and result.findings == 1
    assert missing.isoformat() in result.detail


def test_tonight_and_later_nights_are_not_asked_for(garant: Garant) -> None:
    future = checks.nightly_anonymisation(today(), today() + dt.timedelta(days=30), today=today())

    assert future.passed and future.findings == 0
    assert checked(garant)["nightly_anonymisation"].passed


# --- c: an agreement before the first processing ---


def test_an_organisation_agreement_signed_after_its_first_processing_is_a_finding(
    organisation: Organisation, auditor: StaffUser
) -> None:
    start = today() - dt.timedelta(days=40)
    invited_week = monday_of(today()) - dt.timedelta(weeks=4)
    freeze_week(organisation, invited_week, {})
    append_organisation_agreement(organisation, signed_on=monday_of(today()) - dt.timedelta(weeks=2))

    result = checks.agreements_first(organisation.pk, start, today(), looks=[])

    assert not result.passed and result.findings == 1
    assert week_label(invited_week) in result.detail


def test_an_organisation_agreement_before_its_first_processing_passes(garant: Garant) -> None:
    start = today() - dt.timedelta(days=40)
    freeze_week(garant.organisation, monday_of(today()) - dt.timedelta(weeks=4), {})

    assert checks.agreements_first(garant.organisation.pk, start, today(), looks=[]).passed


def test_an_organisation_without_an_agreement_in_the_ledger_that_processed_is_a_finding(
    organisation: Organisation,
) -> None:
    freeze_week(organisation, monday_of(today()) - dt.timedelta(weeks=1), {})

    result = checks.agreements_first(organisation.pk, today() - dt.timedelta(days=30), today(), looks=[])

    assert result.findings == 1 and "without an agreement" in result.detail


def test_a_casemanager_looking_before_their_agreement_is_a_finding(
    organisation: Organisation, auditor: StaffUser
) -> None:
    garant = clean_garant(organisation, auditor, anna_signed_on=today() + dt.timedelta(days=1))
    look(garant.world.anna, garant)

    result = checked(garant)["agreements_first"]

    assert not result.passed and result.findings == 1
    assert f"Staff member {garant.world.anna.pk} looked in {week_label(today())}, before" in result.detail


def test_a_casemanager_without_an_agreement_in_the_ledger_is_a_finding(garant: Garant) -> None:
    stranger = make_staff("cm-unsigned", Role.CASEMANAGER)
    look(stranger, garant)

    result = checked(garant)["agreements_first"]

    assert result.findings == 1 and f"Staff member {stranger.pk} looked" in result.detail


# --- d: no report threshold lowered ---


def test_raising_the_threshold_passes(garant: Garant, employer: StaffUser) -> None:
    change = reports.raise_threshold(garant.organisation, 8, by=employer)
    append_threshold_change(garant.organisation, 5, 8, on=today(), source=str(change.pk))

    result = checked(garant)["threshold_never_lowered"]

    assert result.passed, result.detail


def test_a_lowered_threshold_written_into_the_ledger_is_a_finding(
    garant: Garant, employer: StaffUser
) -> None:
    change = reports.raise_threshold(garant.organisation, 8, by=employer)
    append_threshold_change(garant.organisation, 5, 8, on=today(), source=str(change.pk))
    append_threshold_change(garant.organisation, 8, 6, on=today(), source="lowered")

    result = checked(garant)["threshold_never_lowered"]

    assert not result.passed
    assert f"Lowered from 8 to 6 in {week_label(today())}" in result.detail


def test_a_live_threshold_the_ledger_does_not_explain_is_a_finding(
    garant: Garant, employer: StaffUser
) -> None:
    reports.raise_threshold(garant.organisation, 9, by=employer)
    # Changed last week: the feed has had its nights to take it up, and did not.
    ReportSettingChange.objects.update(
        changed_at=ReportSettingChange.objects.get().changed_at - dt.timedelta(days=7)
    )

    result = checked(garant)["threshold_never_lowered"]

    assert result.findings == 1 and "in force is 9" in result.detail


def test_a_change_of_today_may_wait_for_tonights_feed(garant: Garant, employer: StaffUser) -> None:
    reports.raise_threshold(garant.organisation, 9, by=employer)

    assert checked(garant)["threshold_never_lowered"].passed


# --- e: the ledger's integrity ---


def test_without_a_signed_head_the_ledger_check_fails(garant: Garant) -> None:
    result = checked(garant)["ledger_intact"]

    assert not result.passed and "No signed tree head" in result.detail


def test_with_a_signed_head_the_ledger_check_passes(garant: Garant) -> None:
    sign_head()

    assert checked(garant)["ledger_intact"].passed


def test_the_ledgers_own_verify_is_asked_when_it_has_one(
    garant: Garant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """notary.ledger.verify comes with the ledger's own work on #20; the check calls it when present."""
    from notary import ledger

    sign_head()
    monkeypatch.setattr(ledger, "verify", lambda: ["entry 3 was changed"], raising=False)

    result = checked(garant)["ledger_intact"]

    assert not result.passed and result.findings == 1 and "Entry 3 was changed" in result.detail


def test_consecutive_missing_nights_are_named_as_one_span(garant: Garant) -> None:
    start = today() - dt.timedelta(days=20)

    result = checks.nightly_anonymisation(start, today(), today=today())

    first_missing, last_missing = start.isoformat(), (today() - dt.timedelta(days=7)).isoformat()
    assert result.findings == 14
    assert result.detail == f"No summary in the ledger for the nights of {first_missing} to {last_missing}."
