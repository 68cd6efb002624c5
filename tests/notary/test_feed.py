"""What feeds the ledger (notary.feed): trajectories from the casefiles, privacy facts from every app, key
rotations as they happen, and what retention leaves of a trajectory's reference."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from casefiles import accesslog, operations
from casefiles import retention as casefiles_retention
from casefiles.models import Dossier, Trajectory, TrajectorySession
from casefiles.trajectories import add_session, end_trajectory, start_trajectory
from notary import feed, ledger, references, signing
from notary.models import LedgerEntry, TrajectoryReference
from participants import account
from participants import retention as participants_retention
from participants.models import Organisation, Participant, StaffUser
from preventicons import keys
from preventicons.keyrotation import KeyRotationError, activate_key, add_key
from scores import reports
from scores.weekclose import close_week
from tests.casefiles.world import (
    active_participant,
    add_weeks,
    ask_for_help,
    close_stopped_dossiers,
    signed_casemanager,
    this_monday,
)
from tests.conftest import ALL_DATABASES, run_on_embedded_default

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]

Kind = LedgerEntry.Kind
WEEK = dt.timedelta(weeks=1)
DAY = dt.timedelta(days=1)
# What each kind's facts hold, and nothing else (notary/audit.py and notary/feed.py list them).
FACT_KEYS: dict[str, set[str]] = {
    Kind.TRAJECTORY_OPENED: {"kind"},
    Kind.SESSION_HELD: set(),
    Kind.TRAJECTORY_COMPLETED: {"outcome", "sessions_held"},
    Kind.ANONYMISATION_RUN: {
        "night",
        "declined_erased",
        "contract_ended_anonymised",
        "unlisted_anonymised",
        "inactive_anonymised",
        "codes_purged",
        "invitations_purged",
        "account_links_purged",
        "queued_requests_purged",
    },
    Kind.REPORT_SETTING_CHANGED: {"old", "new"},
    Kind.AGREEMENT_RECORDED: {"party", "casemanager_id", "signed_on"},
    Kind.KEY_ROTATED: {"purpose", "key_id", "on"},
    Kind.ACCESS_LOG_HEAD: {"night", "entries", "head"},
}


def entries(kind: str | None = None) -> list[LedgerEntry]:
    found = LedgerEntry.objects.order_by("sequence")
    return list(found.filter(kind=kind) if kind else found)


def snapshot() -> list[tuple[Any, ...]]:
    """Every ledger row as stored: what must never change once appended."""
    return list(
        LedgerEntry.objects.order_by("sequence").values_list(
            "sequence", "kind", "reference", "organisation_id", "week", "facts", "source", "leaf_hash", "seal"
        )
    )


def holds(entry: LedgerEntry) -> bool:
    """The entry still is what was appended: its leaf hash and its seal follow from its columns."""
    leaf = ledger.leaf_hash(ledger.canonical(entry)).hex()
    return signing.same(leaf, entry.leaf_hash) and signing.same(
        signing.seal_of(entry.sequence, leaf), entry.seal
    )


class Helped:
    """A participant who asked for help, with a coaching trajectory of two held sessions and one planned,
    started 12 weeks ago and ended 7 weeks ago: the outcome reads 4 weeks before and 4 weeks after."""

    def __init__(
        self,
        organisation: Organisation,
        casemanager: StaffUser,
        *,
        before: list[int | None],
        after: list[int | None],
        name: str = "Jan de Vries",
    ) -> None:
        monday = this_monday()
        self.start_week, self.end_week = monday - 12 * WEEK, monday - 7 * WEEK
        self.last_week_measured = self.end_week + 4 * WEEK
        self.participant = active_participant(
            organisation,
            name=name,
            email_address=f"{name.split()[0].lower()}@example.nl",
            mobile_number="+31612345678" if name == "Jan de Vries" else "+31687654321",
        )
        add_weeks(self.participant, before, last=self.start_week - WEEK)
        add_weeks(self.participant, after, last=self.last_week_measured)
        self.dossier = ask_for_help(self.participant)
        self.trajectory = start_trajectory(
            self.dossier, kind="coaching", started_on=self.start_week + DAY, user=casemanager
        )
        self.held_on = [self.start_week + WEEK + 2 * DAY, self.start_week + 3 * WEEK + 3 * DAY]
        for held_on in self.held_on:
            add_session(self.trajectory, planned_on=held_on, held_on=held_on, user=casemanager)
        add_session(self.trajectory, planned_on=self.end_week, held_on=None, user=casemanager)
        end_trajectory(self.trajectory, ended_on=self.end_week + 2 * DAY, user=casemanager)

    @property
    def reference(self) -> str:
        return references.references_for([self.trajectory.pk])[self.trajectory.pk]


@pytest.fixture
def anna(organisation: Organisation) -> StaffUser:
    return signed_casemanager("cm-anna", organisation)


def close(organisation: Organisation, week: dt.date) -> None:
    close_week(organisation_id=organisation.pk, week=week, vacuum=False)


def completed() -> list[LedgerEntry]:
    return entries(Kind.TRAJECTORY_COMPLETED)


# --- trajectories ------------------------------------------------------------------------------------------


def test_a_trajectory_opened_and_its_held_sessions_are_appended_once_by_reference_and_week(
    organisation: Organisation, anna: StaffUser
) -> None:
    helped = Helped(organisation, anna, before=[2, 2, 2, 2], after=[4, 4, 4, 4])

    result = feed.record_new_facts()

    assert (result.counts[Kind.TRAJECTORY_OPENED], result.counts[Kind.SESSION_HELD]) == (1, 2)
    (opened,) = entries(Kind.TRAJECTORY_OPENED)
    assert opened.reference == helped.reference and references.trajectory_id_for(opened.reference) == (
        helped.trajectory.pk
    )
    assert (opened.organisation_id, opened.week, opened.facts) == (
        organisation.pk,
        helped.start_week,
        {"kind": "coaching"},
    )
    sessions = entries(Kind.SESSION_HELD)
    assert sorted(entry.week for entry in sessions) == [
        helped.start_week + WEEK,
        helped.start_week + 3 * WEEK,
    ]
    assert {(entry.reference, entry.organisation_id) for entry in sessions} == {
        (helped.reference, organisation.pk)
    }
    assert all(entry.facts == {} for entry in sessions)
    # Opened comes before the sessions in the ledger, whatever the random order within each kind.
    assert opened.sequence < min(entry.sequence for entry in sessions)


def test_a_second_run_appends_nothing(
    organisation: Organisation, anna: StaffUser, employer: StaffUser
) -> None:
    Helped(organisation, anna, before=[2, 2, 2, 2], after=[4, 4, 4, 4])
    reports.raise_threshold(organisation, 7, by=employer)
    participants_retention.run_retention(today=timezone.localdate() - DAY)
    first = feed.record_new_facts()
    before = snapshot()

    second = feed.record_new_facts()

    assert first.total > 0
    assert second.total == 0 and set(second.counts) == set(first.counts)
    assert snapshot() == before
    assert TrajectoryReference.objects.count() == 1


def test_the_outcome_waits_until_the_last_week_measured_is_closed_then_improved(
    organisation: Organisation, anna: StaffUser
) -> None:
    helped = Helped(organisation, anna, before=[2, 2, 2, 2], after=[4, 4, 4, 4])
    feed.record_new_facts()
    assert completed() == []
    # A week inside the window closed: answers may still join the last one.
    close(organisation, helped.last_week_measured - WEEK)
    feed.record_new_facts()
    assert completed() == []

    close(organisation, helped.last_week_measured)
    result = feed.record_new_facts()

    assert result.counts[Kind.TRAJECTORY_COMPLETED] == 1
    (entry,) = completed()
    assert (entry.reference, entry.organisation_id, entry.week) == (
        helped.reference,
        organisation.pk,
        helped.end_week,
    )
    assert entry.facts == {"outcome": "improved", "sessions_held": 2}
    assert feed.record_new_facts().total == 0


def test_a_drop_is_recorded_as_not_improved(organisation: Organisation, anna: StaffUser) -> None:
    helped = Helped(organisation, anna, before=[4, 4, 4, 4], after=[3, 2, 3, 2])
    close(organisation, helped.last_week_measured)

    feed.record_new_facts()

    assert [entry.facts for entry in completed()] == [{"outcome": "not_improved", "sessions_held": 2}]


def test_too_few_answers_after_the_end_is_recorded_as_not_measurable(
    organisation: Organisation, anna: StaffUser
) -> None:
    helped = Helped(organisation, anna, before=[2, 2, 2, 2], after=[4, None, None, None])
    close(organisation, helped.last_week_measured)

    feed.record_new_facts()

    assert [entry.facts for entry in completed()] == [{"outcome": "not_measurable", "sessions_held": 2}]


def test_a_dossier_that_no_longer_reaches_the_scores_is_not_measurable_when_anyones_outcome_is_final(
    organisation: Organisation, anna: StaffUser
) -> None:
    helped = Helped(organisation, anna, before=[2, 2, 2, 2], after=[4, 4, None, None])
    # The dossier closes, its P a random one that reaches no score (casefiles.operations.close_dossier),
    # in the first request batch after the stop's day: past midnight, before the notary's night run.
    account.stop_participation(participant=helped.participant)
    close_stopped_dossiers()
    # The night after the stop: nothing yet, or the entry's arrival would tell who stopped.
    feed.record_new_facts(today=helped.last_week_measured + 6 * DAY)
    assert completed() == []
    # The last week measured has ended but is not closed: nobody's outcome is final yet, nor this one.
    feed.record_new_facts(today=helped.last_week_measured + WEEK)
    assert completed() == []

    # The night the week close made every outcome of that week final.
    close(organisation, helped.last_week_measured)
    feed.record_new_facts(today=helped.last_week_measured + WEEK)

    (entry,) = completed()
    assert entry.facts == {"outcome": "not_measurable", "sessions_held": 2}
    assert entry.week == helped.end_week
    assert entry.reference == helped.reference


def test_an_open_trajectory_is_not_completed(organisation: Organisation, anna: StaffUser) -> None:
    participant = active_participant(organisation)
    dossier = ask_for_help(participant)
    start_trajectory(dossier, kind="intake", started_on=timezone.localdate(), user=anna)

    result = feed.record_new_facts()

    assert (result.counts[Kind.TRAJECTORY_OPENED], result.counts[Kind.TRAJECTORY_COMPLETED]) == (1, 0)
    assert entries(Kind.TRAJECTORY_OPENED)[0].facts == {"kind": "intake"}


# --- privacy facts ---------------------------------------------------------------------------------------


def test_each_nightly_summary_is_appended_once_its_night_has_passed(organisation: Organisation) -> None:
    today = timezone.localdate()
    participants_retention.run_retention(today=today - DAY)
    participants_retention.run_retention(today=today)

    feed.record_new_facts(today=today)

    (entry,) = entries(Kind.ANONYMISATION_RUN)
    yesterday = today - DAY
    assert (entry.reference, entry.organisation_id, entry.week) == (
        "",
        None,
        yesterday - dt.timedelta(days=yesterday.weekday()),
    )
    assert entry.facts["night"] == yesterday.isoformat()
    assert set(entry.facts) == FACT_KEYS[Kind.ANONYMISATION_RUN]
    assert all(isinstance(entry.facts[name], int) for name in FACT_KEYS[Kind.ANONYMISATION_RUN] - {"night"})
    # Today's row may still grow tonight: it goes in the next day.
    assert feed.record_new_facts(today=today + DAY).counts[Kind.ANONYMISATION_RUN] == 1
    assert [entry.facts["night"] for entry in entries(Kind.ANONYMISATION_RUN)] == [
        yesterday.isoformat(),
        today.isoformat(),
    ]


def test_a_raised_report_threshold_is_appended_with_its_old_and_new_value(
    organisation: Organisation, employer: StaffUser
) -> None:
    reports.raise_threshold(organisation, 7, by=employer)
    reports.raise_threshold(organisation, 9, by=employer)

    feed.record_new_facts()

    changes = entries(Kind.REPORT_SETTING_CHANGED)
    monday = this_monday()
    assert [(entry.organisation_id, entry.week, entry.facts) for entry in changes] == [
        (organisation.pk, monday, {"old": 5, "new": 7}),
        (organisation.pk, monday, {"old": 7, "new": 9}),
    ]
    assert employer.username not in json.dumps([entry.facts for entry in changes])


def test_each_processing_agreement_is_appended_with_its_party_and_day(
    organisation: Organisation, anna: StaffUser
) -> None:
    feed.record_new_facts()

    agreements = {entry.facts["party"]: entry for entry in entries(Kind.AGREEMENT_RECORDED)}
    assert set(agreements) == {"organisation", "casemanager"}
    ours, theirs = agreements["organisation"], agreements["casemanager"]
    assert (ours.organisation_id, ours.week) == (organisation.pk, dt.date(2026, 1, 5))
    assert ours.facts == {"party": "organisation", "casemanager_id": None, "signed_on": "2026-01-05"}
    assert theirs.organisation_id is None
    assert theirs.facts == {"party": "casemanager", "casemanager_id": anna.pk, "signed_on": "2026-01-05"}


def test_the_access_log_head_is_anchored_once_a_night(organisation: Organisation, anna: StaffUser) -> None:
    Helped(organisation, anna, before=[2, 2], after=[4, 4])  # logs each change of the trajectory
    today = timezone.localdate()

    feed.record_new_facts(today=today)
    accesslog.record("view_dossier", user=anna, dossier_number=Dossier.objects.get().number)
    feed.record_new_facts(today=today)  # the same night: not again
    feed.record_new_facts(today=today + DAY)

    first, second = entries(Kind.ACCESS_LOG_HEAD)
    assert first.facts["night"] == today.isoformat() and second.facts["night"] == (today + DAY).isoformat()
    assert second.facts["entries"] == first.facts["entries"] + 1 > 1
    assert second.facts["head"] == accesslog.head() != first.facts["head"]
    assert accesslog.verify_chain() is None
    assert (first.reference, first.organisation_id, first.week) == ("", None, this_monday())


# --- key rotation ----------------------------------------------------------------------------------------


@pytest.fixture
def key_file(tmp_path: Path) -> Iterator[Path]:
    """The keys in force, moved to a key file the rotation may edit; the inline test keys come back after."""
    path = tmp_path / "keys.json"
    keys.write_key_document(path, keys.read_key_document())
    try:
        with override_settings(PREVENTICONS_KEY_FILE=str(path), PREVENTICONS_KEYS=""):
            keys.reset_key_cache()
            yield path
    finally:
        keys.reset_key_cache()


def test_activating_a_key_appends_its_rotation_once(key_file: Path) -> None:
    new_id = add_key(purpose="field")
    assert entries(Kind.KEY_ROTATED) == []  # added, not yet sealing anything

    assert activate_key(purpose="field", key_id=new_id) is True
    assert activate_key(purpose="field", key_id=new_id) is False

    (entry,) = entries(Kind.KEY_ROTATED)
    today = timezone.localdate()
    assert (entry.reference, entry.organisation_id, entry.week) == ("", None, this_monday())
    assert entry.facts == {"purpose": "field", "key_id": new_id, "on": today.isoformat()}
    assert feed.record_new_facts().counts.get(Kind.KEY_ROTATED, 0) == 0


def test_a_rotation_the_ledger_cannot_record_is_not_carried_out(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_id = add_key(purpose="field")
    before = key_file.read_bytes()

    def refuse(**kwargs: Any) -> None:
        raise RuntimeError("the casefiles store is down")

    monkeypatch.setattr(feed, "key_rotated", refuse)
    with pytest.raises(RuntimeError):
        activate_key(purpose="field", key_id=new_id)

    assert key_file.read_bytes() == before
    assert keys.get_key_set().keyring("field").active != new_id
    monkeypatch.undo()
    with override_settings(PREVENTICONS_KEY_FILE=str(key_file), PREVENTICONS_KEYS=""):
        assert activate_key(purpose="field", key_id=new_id) is True  # the operator repeats it
    assert [entry.facts["key_id"] for entry in entries(Kind.KEY_ROTATED)] == [new_id]


def test_an_unknown_key_is_refused_and_recorded_nowhere(key_file: Path) -> None:
    with pytest.raises(KeyRotationError):
        activate_key(purpose="field", key_id="fld-nope")
    assert entries(Kind.KEY_ROTATED) == []


# --- retention -------------------------------------------------------------------------------------------


def test_retention_forgets_the_reference_and_leaves_the_ledger_as_it_was(
    organisation: Organisation, anna: StaffUser, settings: Any
) -> None:
    settings.DOSSIER_UNLINK_AFTER_CLOSE_DAYS = 10
    helped = Helped(organisation, anna, before=[2, 2, 2, 2], after=[4, 4, None, None])
    # Closed by the casemanager: still linked, and the outcome still waits for its window.
    operations.close_with_note(helped.dossier, text="afgerond", user=anna)
    feed.record_new_facts()
    reference = helped.reference
    assert completed() == []
    kept = snapshot()
    today = timezone.localdate()

    done = casefiles_retention.run_retention(today=casefiles_retention.first_night(today, days=10))

    assert done.dossiers_unlinked == 1
    assert references.trajectory_id_for(reference) is None
    assert TrajectoryReference.objects.count() == 0
    assert snapshot() == kept
    assert all(holds(entry) for entry in entries())
    # The trajectory's exact days go too (matched against the ledger's weeks they would find its reference
    # again); the ledger gets nothing new about it, and no new reference.
    assert not Trajectory.objects.filter(pk=helped.trajectory.pk).exists()
    assert not TrajectorySession.objects.filter(trajectory_id=helped.trajectory.pk).exists()
    close(organisation, helped.last_week_measured)
    later = feed.record_new_facts(today=casefiles_retention.first_night(today, days=10) + DAY)
    assert later.total == later.counts[Kind.ACCESS_LOG_HEAD] == 1
    assert TrajectoryReference.objects.count() == 0
    assert not LedgerEntry.objects.exclude(reference__in=["", reference]).exists()
    assert snapshot()[: len(kept)] == kept


def test_a_forgotten_trajectory_gets_no_new_reference_even_if_the_term_is_lengthened(
    organisation: Organisation, anna: StaffUser, settings: Any
) -> None:
    settings.DOSSIER_UNLINK_AFTER_CLOSE_DAYS = 10
    helped = Helped(organisation, anna, before=[2, 2], after=[4, 4])
    operations.close_with_note(helped.dossier, text="afgerond", user=anna)
    feed.record_new_facts()
    today = timezone.localdate()
    casefiles_retention.run_retention(today=casefiles_retention.first_night(today, days=10))
    kept = snapshot()

    # The term lengthened afterwards: the dossier is no longer past it, but its reference is gone for good.
    settings.DOSSIER_UNLINK_AFTER_CLOSE_DAYS = 730
    result = feed.record_new_facts(today=casefiles_retention.first_night(today, days=10) + DAY)

    assert result.total == result.counts[Kind.ACCESS_LOG_HEAD]
    assert TrajectoryReference.objects.count() == 0
    assert snapshot()[: len(kept)] == kept


def test_retention_unlinks_a_stopped_participants_dossier_at_the_term_and_forgets_its_references(
    organisation: Organisation, anna: StaffUser, settings: Any
) -> None:
    settings.DOSSIER_UNLINK_AFTER_CLOSE_DAYS = 10
    helped = Helped(organisation, anna, before=[2, 2], after=[4, 4])
    # Closed and leading to nobody, but not unlinked: a NULL link on the day of the close would tell a stop.
    account.stop_participation(participant=helped.participant)
    close_stopped_dossiers()
    close(organisation, helped.last_week_measured)  # its outcome final, as anyone's (not measurable)
    feed.record_new_facts()
    reference = helped.reference
    today = timezone.localdate()

    assert (
        casefiles_retention.run_retention(
            today=casefiles_retention.first_night(today, days=10) - DAY
        ).dossiers_unlinked
        == 0
    )
    assert references.trajectory_id_for(reference) == helped.trajectory.pk
    assert (
        casefiles_retention.run_retention(
            today=casefiles_retention.first_night(today, days=10)
        ).dossiers_unlinked
        == 1
    )

    assert references.trajectory_id_for(reference) is None
    assert {entry.kind for entry in entries() if entry.reference == reference} == {
        Kind.TRAJECTORY_OPENED,
        Kind.SESSION_HELD,
        Kind.TRAJECTORY_COMPLETED,
    }


def test_a_trajectory_first_seen_after_its_dossiers_term_gets_no_reference(
    organisation: Organisation, anna: StaffUser, settings: Any
) -> None:
    settings.DOSSIER_UNLINK_AFTER_CLOSE_DAYS = 10
    helped = Helped(organisation, anna, before=[2, 2], after=[4, 4])
    operations.close_with_note(helped.dossier, text="afgerond", user=anna)

    result = feed.record_new_facts(today=casefiles_retention.first_night(timezone.localdate(), days=10))

    assert result.counts[Kind.TRAJECTORY_OPENED] == result.counts[Kind.SESSION_HELD] == 0
    assert not LedgerEntry.objects.exclude(reference="").exists()
    assert TrajectoryReference.objects.count() == 0


# --- what no entry holds, and a failed run -----------------------------------------------------------------


def test_no_entry_holds_a_dossier_number_a_name_a_contact_detail_or_a_score(
    organisation: Organisation, anna: StaffUser, employer: StaffUser, key_file: Path
) -> None:
    jan = Helped(organisation, anna, before=[2, 2, 2, 2], after=[4, 4, 4, 4])
    piet = Helped(organisation, anna, before=[3, 3, 3, 3], after=[1, 1, 1, 1], name="Piet Jansen")
    close(organisation, jan.last_week_measured)
    reports.raise_threshold(organisation, 7, by=employer)
    participants_retention.run_retention(today=timezone.localdate() - DAY)
    activate_key(purpose="field", key_id=add_key(purpose="field"))
    feed.record_new_facts()
    account.stop_participation(participant=piet.participant)
    close_stopped_dossiers()
    feed.record_new_facts(today=timezone.localdate() + DAY)

    found = entries()
    assert {entry.kind for entry in found} == set(FACT_KEYS)
    forbidden = [anna.username, employer.username, "Director of"]
    for helped in (jan, piet):
        participant = Participant.objects.get(pk=helped.participant.pk)
        forbidden += [
            helped.dossier.number,
            "Jan de Vries",
            "Piet Jansen",
            "jan@example.nl",
            "piet@example.nl",
        ]
        forbidden += ["+31612345678", "+31687654321", "612345678", "687654321"]
        if participant.pseudonym:
            forbidden.append(participant.pseudonym)
    for entry in found:
        assert set(entry.facts) == FACT_KEYS[entry.kind], entry.kind
        text = json.dumps([entry.reference, entry.facts])
        assert not [word for word in forbidden if word in text], (entry.kind, text)
        # No averages, no weekly values: numbers only where the kind counts something.
        assert not any(isinstance(value, float) for value in entry.facts.values())
        if entry.kind in (Kind.TRAJECTORY_OPENED, Kind.SESSION_HELD, Kind.TRAJECTORY_COMPLETED):
            assert entry.reference.startswith("TR-") and entry.organisation_id == organisation.pk
            assert entry.week.weekday() == 0
    assert sorted(entry.facts["outcome"] for entry in completed()) == ["improved", "not_improved"]


def test_a_run_that_fails_halfway_appends_nothing_and_makes_no_reference(
    organisation: Organisation, anna: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    Helped(organisation, anna, before=[2, 2], after=[4, 4])

    def unreachable() -> list[object]:
        raise RuntimeError("the identity store went away")

    # After the trajectory facts were appended, before the privacy facts: the whole run rolls back.
    monkeypatch.setattr(feed, "threshold_changes", unreachable)
    with pytest.raises(RuntimeError):
        feed.record_new_facts()

    assert LedgerEntry.objects.count() == 0
    assert TrajectoryReference.objects.count() == 0
    monkeypatch.undo()
    assert feed.record_new_facts().counts[Kind.TRAJECTORY_OPENED] == 1


def test_a_dossier_without_an_organisation_is_left_out(anna: StaffUser) -> None:
    dossier = Dossier.objects.create(number="D-NOORGANI", opened_on=timezone.localdate())
    start_trajectory(dossier, kind="coaching", started_on=timezone.localdate(), user=anna)

    assert feed.record_new_facts().counts[Kind.TRAJECTORY_OPENED] == 0
    assert TrajectoryReference.objects.count() == 0


# --- the nightly job, and the command ------------------------------------------------------------------


def test_the_nightly_job_runs_after_both_retention_runs(settings: Any) -> None:
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    ledger_at = schedule["notary.tasks.record_ledger"]
    for earlier in ("participants.tasks.run_retention", "casefiles.tasks.run_retention"):
        assert (min(schedule[earlier].hour), min(schedule[earlier].minute)) < (
            min(ledger_at.hour),
            min(ledger_at.minute),
        )


def test_the_task_and_the_command_append_once_and_print_the_counts(
    organisation: Organisation, anna: StaffUser, capsys: pytest.CaptureFixture[str]
) -> None:
    from django.core.management import call_command

    from notary.tasks import record_ledger

    Helped(organisation, anna, before=[2, 2], after=[4, 4])
    counts = record_ledger.apply(throw=True).get()
    assert counts[Kind.TRAJECTORY_OPENED] == 1 and counts[Kind.SESSION_HELD] == 2

    call_command("record_ledger")

    printed = capsys.readouterr().out
    assert "trajectory_opened: 0" in printed and "appended: 0" in printed


def test_the_embedded_sqlite_default_feeds_the_ledger_and_forgets_on_retention(tmp_path: Path) -> None:
    printed = run_on_embedded_default(str(Path(__file__).with_name("sqlite_feed.py")), var_dir=tmp_path)
    seen = json.loads(printed.strip().splitlines()[-1])

    assert seen == {
        "vendor": "sqlite",
        "first": {
            "trajectory_opened": 1,
            "session_held": 1,
            "trajectory_completed": 1,
            "anonymisation_run": 1,
            "report_setting_changed": 1,
            "agreement_recorded": 1,
            "access_log_head": 1,
        },
        "second": 0,
        "command": "appended: 0",
        "key_rotated": 1,
        "forgotten": True,
        "entries_kept": True,
        "after_retention": 1,
    }
