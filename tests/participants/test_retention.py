"""The nightly anonymisation and retention run: each rule at its edge, counts only, and a second run idle."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import connections, models
from django.utils import timezone

from casefiles.models import Dossier
from participants import retention
from participants.invitations import departed_hashes, known_departed, listed_hashes
from participants.models import (
    AccountLink,
    AnonymisationRun,
    ConsentRecord,
    Invitation,
    Organisation,
    Participant,
    QueuedRequest,
    VerificationCode,
)
from participants.participation import ParticipationState
from participants.references import hour_index
from preventicons import crypto, messaging
from preventicons.dbrouter import ALIASES
from preventicons.fields import EncryptedTextField
from tests.casefiles.world import close_stopped_dossiers
from tests.conftest import ALL_DATABASES, run_on_embedded_default
from tests.scores.people import add_score, make_participant

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

NIGHT = dt.datetime(2026, 11, 18, 2, 30, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 18)


@pytest.fixture(autouse=True)
def night() -> Any:
    with time_machine.travel(NIGHT, tick=False):
        yield


def days_ago(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


def is_anonymised(participant: Participant) -> bool:
    participant.refresh_from_db()
    # Look-alikes in every column, never NULL (participants.models): what they open to tells.
    row = Participant.objects.filter(pk=participant.pk).values(
        "name", "email", "mobile", "email_index", "mobile_index", "pseudonym", "department"
    )[0]
    assert all(value is not None for value in row.values())
    destroyed = (participant.name, participant.email, participant.mobile, participant.pseudonym) == (
        None,
    ) * 4
    assert destroyed == (participant.status == Participant.Status.STOPPED)
    return destroyed


def set_last_response(participant: Participant, last_response: dt.date | None) -> None:
    """Seal a participation state as the week close would (the column holds ciphertext only)."""
    participant.participation = ParticipationState(last_response_week=last_response).sealed_text()
    participant.save(update_fields=["participation"])


def inactive(organisation: Organisation, *, last_response: dt.date | None) -> Participant:
    participant = make_participant(organisation)
    Participant.objects.filter(pk=participant.pk).set_state(status=Participant.Status.INACTIVE)
    set_last_response(participant, last_response)
    return participant


# --- who is anonymised, each rule at its edge -----------------------------------------------------------


def test_the_contact_data_of_people_who_declined_is_destroyed_at_once(organisation: Organisation) -> None:
    declined = make_participant(organisation, status=Participant.Status.DECLINED)
    invited = make_participant(organisation, status=Participant.Status.INVITED)
    indexes = {declined.email_index, declined.mobile_index}

    counts = retention.run_retention()

    assert is_anonymised(declined) and not is_anonymised(invited)
    assert counts.declined_erased == 1
    # Not kept elsewhere either: their address and number no longer name any row.
    assert not Participant.objects.filter(email_index__in=indexes).exists()
    assert not Participant.objects.filter(mobile_index__in=indexes).exists()


@pytest.mark.parametrize(("unlisted_days_ago", "anonymised"), [(29, False), (30, True), (31, True)])
def test_people_no_longer_listed_are_anonymised_after_the_grace_period(
    organisation: Organisation, unlisted_days_ago: int, anonymised: bool
) -> None:
    participant = make_participant(organisation)
    Participant.objects.filter(pk=participant.pk).update(
        is_listed=False, unlisted_on=days_ago(unlisted_days_ago)
    )
    listed = make_participant(organisation)

    counts = retention.run_retention()

    assert is_anonymised(participant) is anonymised and not is_anonymised(listed)
    assert counts.unlisted_anonymised == int(anonymised)


@pytest.mark.parametrize(("silent_days", "anonymised"), [(364, False), (365, True)])
def test_inactive_people_are_anonymised_after_the_configured_period(
    organisation: Organisation, silent_days: int, anonymised: bool
) -> None:
    participant = inactive(organisation, last_response=days_ago(silent_days))
    active = make_participant(organisation)
    set_last_response(active, days_ago(700))

    counts = retention.run_retention()

    assert is_anonymised(participant) is anonymised and not is_anonymised(active)
    assert counts.inactive_anonymised == int(anonymised)


@pytest.mark.parametrize(("consented_days_ago", "anonymised"), [(364, False), (365, True)])
def test_inactive_people_who_never_responded_count_from_their_last_consent(
    organisation: Organisation, consented_days_ago: int, anonymised: bool
) -> None:
    participant = inactive(organisation, last_response=None)
    ConsentRecord.objects.add(
        participant.pk,
        kind="given",
        text_version="v1",
        recorded_at=days_ago(consented_days_ago),
    )

    retention.run_retention()

    assert is_anonymised(participant) is anonymised


def test_inactive_people_with_neither_a_response_nor_a_consent_on_record_are_anonymised(
    organisation: Organisation,
) -> None:
    # No sign of life at all counts as long ago: such a row would otherwise be kept for ever.
    participant = inactive(organisation, last_response=None)
    assert not ConsentRecord.objects.exists()

    counts = retention.run_retention()

    assert is_anonymised(participant) and counts.inactive_anonymised == 1


def test_the_inactivity_period_is_a_setting(organisation: Organisation, settings: Any) -> None:
    participant = inactive(organisation, last_response=days_ago(40))
    settings.ANONYMISE_INACTIVE_AFTER_DAYS = 40

    retention.run_retention()

    assert is_anonymised(participant)


@pytest.mark.parametrize(("ended_days_ago", "anonymised"), [(30, False), (31, True)])
def test_everyone_of_an_organisation_whose_contract_ended_is_anonymised_after_the_grace_period(
    organisation: Organisation, other_organisation: Organisation, ended_days_ago: int, anonymised: bool
) -> None:
    # contract_end is the contract's last day: 30 days of grace run from the day after it.
    Organisation.objects.filter(pk=organisation.pk).update(contract_end=days_ago(ended_days_ago))
    Organisation.objects.filter(pk=other_organisation.pk).update(contract_end=days_ago(-100))
    people = [
        make_participant(organisation),
        make_participant(organisation, status=Participant.Status.INVITED),
        inactive(organisation, last_response=days_ago(10)),
    ]
    elsewhere = make_participant(other_organisation)

    counts = retention.run_retention()

    assert [is_anonymised(person) for person in people] == [anonymised] * 3
    assert not is_anonymised(elsewhere)
    assert counts.contract_ended_anonymised == 3 * int(anonymised)


def test_anonymising_closes_the_dossier_so_it_leads_to_nobody_and_keeps_the_scores_counted(
    organisation: Organisation,
) -> None:
    from scores.models import Score

    participant = make_participant(organisation)
    Participant.objects.filter(pk=participant.pk).update(is_listed=False, unlisted_on=days_ago(30))
    dossier = Dossier(
        number="D-RETAIN01", pseudonym_index=crypto.casefiles_index(participant.pseudonym or "")
    )
    dossier.pseudonym = participant.pseudonym
    dossier.opened_on = days_ago(60)
    dossier.save()
    add_score(participant, week=dt.date(2026, 11, 9), value=3)
    score_before = Score.objects.values().get()
    pseudonym = participant.pseudonym or ""

    retention.run_retention()
    # As a stop does, the night only queued the close; the first request batch of the next day carries it out.
    dossier.refresh_from_db()
    assert dossier.is_open and dossier.pseudonym_index == crypto.casefiles_index(pseudonym)
    close_stopped_dossiers()

    dossier.refresh_from_db()
    # As a stop leaves it: random look-alikes over its link (retention unlinks it at the term), so it reads
    # as a casemanager's close, and neither the old P nor anything in the row leads to the participant.
    assert not dossier.is_open and dossier.pseudonym not in (None, pseudonym)
    assert dossier.pseudonym_index not in (None, crypto.casefiles_index(pseudonym))
    # The score is untouched and still counted; its per-week pseudonym came from P, which is destroyed.
    assert Score.objects.values().get() == score_before
    assert Participant.objects.get(pk=participant.pk).pseudonym is None


# --- what is purged ----------------------------------------------------------------------------------


def code(participant: Participant, *, minutes_ago: int) -> VerificationCode:
    created = NIGHT - dt.timedelta(minutes=minutes_ago)
    return VerificationCode.objects.create(
        participant_ref=str(participant.pk),
        participant_index=hour_index(participant.pk, created),
        purpose="enrol",
        channel="email",
        code_hash="0" * 64,
        created_at=created,
        expires_at=created + dt.timedelta(minutes=10),
    )


def test_codes_go_once_their_hour_is_over(organisation: Organisation) -> None:
    participant = make_participant(organisation, status=Participant.Status.INVITED)
    # Still counted by the hourly limits (participants.verification): kept although expired.
    recent = code(participant, minutes_ago=59)
    old = code(participant, minutes_ago=61)

    counts = retention.run_retention()

    assert set(VerificationCode.objects.values_list("pk", flat=True)) == {recent.pk}
    assert counts.codes_purged == 1 and not VerificationCode.objects.filter(pk=old.pk).exists()


def test_account_links_go_once_expired(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    live = AccountLink.objects.create(
        participant_ref=str(participant.pk), token_hash="a" * 64, expires_at=NIGHT + dt.timedelta(minutes=1)
    )
    AccountLink.objects.create(participant_ref=str(participant.pk), token_hash="b" * 64, expires_at=NIGHT)

    counts = retention.run_retention()

    assert list(AccountLink.objects.values_list("pk", flat=True)) == [live.pk]
    assert counts.account_links_purged == 1


def invitation(participant: Participant, *, expired_days_ago: int, token: str) -> Invitation:
    return Invitation.objects.create(
        participant=participant,
        token_hash=token * 64,
        expires_at=NIGHT - dt.timedelta(days=expired_days_ago),
    )


def test_expired_invitations_go_after_the_keep_period_an_invited_persons_newest_too(
    organisation: Organisation,
) -> None:
    """Past the keep period no link texts its code, so none can ask for a new one: all go alike (review 5)."""
    enrolled = make_participant(organisation)
    kept_a_while = invitation(enrolled, expired_days_ago=29, token="a")
    invitation(enrolled, expired_days_ago=30, token="b")
    waiting = make_participant(organisation, status=Participant.Status.INVITED)
    invitation(waiting, expired_days_ago=60, token="c")
    invitation(waiting, expired_days_ago=45, token="d")

    counts = retention.run_retention()

    assert set(Invitation.objects.values_list("pk", flat=True)) == {kept_a_while.pk}
    assert counts.invitations_purged == 3


@pytest.mark.parametrize(("queued_days_ago", "purged"), [(6, False), (7, True)])
def test_help_requests_no_batch_took_up_go_after_the_bound(
    organisation: Organisation, queued_days_ago: int, purged: bool
) -> None:
    queued = QueuedRequest(queued_on=days_ago(queued_days_ago))
    queued.request = json.dumps({"participant": "x", "channel": "phone", "consent_version": "v"})
    queued.save()

    counts = retention.run_retention()

    assert QueuedRequest.objects.exists() is not purged
    assert counts.queued_requests_purged == int(purged)


# --- the summary, and a second run -----------------------------------------------------------------------


def due_for_everything(organisation: Organisation) -> None:
    make_participant(organisation, status=Participant.Status.DECLINED)
    unlisted = make_participant(organisation)
    Participant.objects.filter(pk=unlisted.pk).update(is_listed=False, unlisted_on=days_ago(40))
    inactive(organisation, last_response=days_ago(400))
    code(make_participant(organisation, status=Participant.Status.INVITED), minutes_ago=120)
    AccountLink.objects.create(
        participant_ref=str(make_participant(organisation).pk), token_hash="e" * 64, expires_at=NIGHT
    )
    queued = QueuedRequest(queued_on=days_ago(10))
    queued.request = "{}"
    queued.save()


def test_the_summary_holds_the_day_and_counts_only(organisation: Organisation) -> None:
    due_for_everything(organisation)

    retention.run_retention()

    fields = AnonymisationRun._meta.get_fields()
    # No relation, no id of anyone, no text: a date and numbers, for the notary's ledger later.
    assert all(
        isinstance(field, models.DateField | models.PositiveIntegerField | models.BigAutoField)
        for field in fields
    )
    (summary,) = AnonymisationRun.objects.values(*(f.name for f in fields if f.name != "id"))
    assert summary == {
        "run_on": TODAY,
        "declined_erased": 1,
        "contract_ended_anonymised": 0,
        "unlisted_anonymised": 1,
        "inactive_anonymised": 1,
        "codes_purged": 1,
        "invitations_purged": 0,
        "account_links_purged": 1,
        "queued_requests_purged": 1,
    }


def every_row() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of every store, as a dump would list them."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for alias in ALIASES:
        connection = connections[alias]
        with connection.cursor() as cursor:
            for table in connection.introspection.table_names():
                cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
                rows[f"{alias}.{table}"] = sorted(map(repr, cursor.fetchall()))  # type: ignore[arg-type]
    return rows


def test_a_second_run_the_same_night_changes_nothing(organisation: Organisation) -> None:
    due_for_everything(organisation)
    retention.run_retention()
    before = every_row()

    counts = retention.run_retention()

    assert not counts.any()
    assert every_row() == before
    # Not even the summary's row is written again (a new row version would show in xmin and ctid).
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT ctid::text, xmin::text FROM participants_anonymisationrun")
        versions = cursor.fetchall()
    retention.run_retention()
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT ctid::text, xmin::text FROM participants_anonymisationrun")
        assert cursor.fetchall() == versions


def test_a_later_run_the_same_day_adds_what_it_did(organisation: Organisation) -> None:
    retention.run_retention()
    make_participant(organisation, status=Participant.Status.DECLINED)

    retention.run_retention()

    assert AnonymisationRun.objects.get(run_on=TODAY).declined_erased == 1
    # Added to, not overwritten: a third run erasing one more makes it two.
    make_participant(organisation, status=Participant.Status.DECLINED)
    retention.run_retention()
    assert AnonymisationRun.objects.get(run_on=TODAY).declined_erased == 2


def test_the_nightly_task_runs_the_retention(organisation: Organisation) -> None:
    from participants.tasks import run_retention

    declined = make_participant(organisation, status=Participant.Status.DECLINED)

    run_retention.delay()

    assert is_anonymised(declined)
    assert AnonymisationRun.objects.filter(run_on=timezone.localdate()).exists()


# --- the embedded default -------------------------------------------------------------------------------

SQLITE_SCRIPT = """
import datetime as dt, django
django.setup()
from participants import retention
from participants.invitations import departed_hashes, known_departed
from participants.models import AnonymisationRun, Organisation, Participant
from scores import wellbeing
from casefiles.models import Dossier
from preventicons import crypto
organisation = Organisation.objects.create(name="Embedded", sector="zorg")
declined = Participant.objects.create(organisation=organisation, status="declined", name="A", email="a@x.nl")
active = Participant(organisation=organisation, status="active", name="B", pseudonym=crypto.new_pseudonym())
active.save()
Participant.objects.filter(pk=active.pk).update(is_listed=False, unlisted_on=dt.date(2000, 1, 1))
asker = Participant(organisation=organisation, status="active", name="C", pseudonym=crypto.new_pseudonym())
asker.save()
wellbeing.request_help(participant=asker, channel="email", consent_text_version="v")
batch = wellbeing.take_up_help_requests()
first = retention.run_retention()
second = retention.run_retention()
print(batch.taken_up, Dossier.objects.count(), first.declined_erased, first.unlisted_anonymised,
      second.any(), AnonymisationRun.objects.count(),
      sum(p.name is None and p.email is None for p in Participant.objects.all().with_status("stopped")))
"""


@pytest.mark.integration
def test_the_help_batch_and_the_nightly_run_work_on_the_embedded_sqlite_default(tmp_path: Path) -> None:
    for alias in ALIASES:
        run_on_embedded_default(
            "manage.py", "migrate", f"--database={alias}", "--no-input", "-v0", var_dir=tmp_path
        )
    printed = run_on_embedded_default("-c", SQLITE_SCRIPT, var_dir=tmp_path)

    assert printed.split() == ["1", "1", "1", "1", "False", "1", "2"]


# --- the same shredding as a stop -------------------------------------------------------------------------


def set_up_like_jan(participant: Participant) -> None:
    """Everything a stop has to deal with: a dossier, a score, consents, codes, links, pending messages."""
    from preventicons import messaging

    ConsentRecord.objects.add(
        participant.pk,
        kind="given",
        text_version="v0",
        recorded_at=days_ago(90),
    )
    ConsentRecord.objects.add(
        participant.pk,
        kind="given",
        text_version="v1",
        recorded_at=days_ago(9),
    )
    code(participant, minutes_ago=5)
    Invitation.objects.create(
        participant=participant,
        token_hash=crypto.hash_token(crypto.new_token()),
        expires_at=NIGHT - dt.timedelta(days=1),
    )
    AccountLink.objects.create(
        participant_ref=str(participant.pk),
        token_hash=participant.pk.hex * 2,
        expires_at=NIGHT + dt.timedelta(minutes=9),
    )
    messaging.queue_email(key=f"weekly:{participant.pk}:x", to="jan@example.nl", subject="s", body="b")
    dossier = Dossier(number=f"D-{participant.pk.hex[:8].upper()}", opened_on=days_ago(3))
    dossier.pseudonym_index = crypto.casefiles_index(participant.pseudonym or "")
    dossier.pseudonym = participant.pseudonym
    dossier.save()
    add_score(participant, week=dt.date(2026, 11, 9), value=2)


def _dossier_left(number: str, pseudonym: str) -> dict[str, Any]:
    """The dossier as a stop leaves it, in terms two different rows can share: open or closed, the day it
    closed, and whether P, the participant reference and the index are there, and still theirs."""
    dossier = Dossier.objects.get(number=number)
    return {
        "is_open": dossier.is_open,
        "closed_on": dossier.closed_on,
        "link": [value is not None for value in (dossier.pseudonym, dossier.pseudonym_index)],
        "theirs": dossier.pseudonym == pseudonym
        or dossier.pseudonym_index == crypto.casefiles_index(pseudonym),
    }


def what_is_left(participant: Participant, pseudonym: str) -> dict[str, Any]:
    from preventicons.models import OutboundMessage
    from scores.models import Score

    row: dict[str, Any] = dict(Participant.objects.filter(pk=participant.pk).values()[0])
    # What a dump reads of each value: a ciphertext its length, a hash that it is one (look-alikes differ
    # from row to row by chance, not by what they say); the sealed values opened besides.
    row = {
        name: ("sealed", len(value))
        if isinstance(value, str) and value.startswith("v1.")
        else "hash"
        if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value)
        else value
        for name, value in row.items()
    }
    fresh = Participant.objects.get(pk=participant.pk)
    for field in Participant._meta.concrete_fields:
        if isinstance(field, EncryptedTextField):
            row[f"{field.name} opened"] = getattr(fresh, field.name)
    return {
        "participant": {name: value for name, value in row.items() if name != "id"},
        "consents": sorted(
            (r.kind, r.text_version, r.recorded_at) for r in ConsentRecord.objects.of(participant.pk)
        ),
        "codes": VerificationCode.objects.naming([participant.pk]).count(),
        "invitations": participant.invitations.count(),
        "account_links": AccountLink.objects.naming([participant.pk]).count(),
        # Pending messages about them carry their subject's keyed tag (preventicons.messaging).
        "pending": OutboundMessage.objects.filter(
            cancel_tag=messaging._cancel_tag(str(participant.pk)), status=OutboundMessage.Status.PENDING
        ).count(),
        "dossier": _dossier_left(f"D-{participant.pk.hex[:8].upper()}", pseudonym),
        # Their score stays, counted, untouched; nothing holds their P any more.
        "scores": Score.objects.count(),
    }


def test_anonymising_leaves_a_participant_exactly_as_their_own_stop_would(organisation: Organisation) -> None:
    from participants import account

    # Twins, one stopped by themselves and one anonymised by the nightly run; should stopping gain a step,
    # this fails until the nightly run takes the same step.
    stopping, anonymised = make_participant(organisation), make_participant(organisation)
    for twin in (stopping, anonymised):
        set_last_response(twin, days_ago(14))
    for twin in (stopping, anonymised):
        set_up_like_jan(twin)

    pseudonyms = {twin.pk: twin.pseudonym or "" for twin in (stopping, anonymised)}
    contacts = {twin.pk: (twin.email, twin.mobile) for twin in (stopping, anonymised)}

    def remembered(twin: Participant) -> dict[str, bool]:
        # Which of their contact details the organisation still recognises, by keyed hash only: the listed
        # hashes stay on the row (Participant.shredded), where a re-import and the account-link form find
        # them as anyone's; no departed record is written any more (review 4: it named the stopper).
        email, mobile = contacts[twin.pk]
        listed_email, listed_mobile = listed_hashes(
            organisation_id=organisation.pk, email=email, mobile=mobile
        )
        row = Participant.objects.get(pk=twin.pk)
        hashes = departed_hashes(organisation_id=organisation.pk, email=email, mobile=mobile)
        return {
            "email": row.listed_email_hash == listed_email,
            "mobile": row.listed_mobile_hash == listed_mobile,
            "departed record": bool(known_departed(organisation_id=organisation.pk, hashes=hashes)),
        }

    account.stop_participation(participant=stopping)
    assert retention.anonymise_participants(participant_ids=[anonymised.pk, stopping.pk]) == 1
    # Both dossiers close in the first request batch of the next day, together.
    assert close_stopped_dossiers().stop_closes == 2
    stopped_by_themselves = what_is_left(stopping, pseudonyms[stopping.pk])
    stopped_by_themselves["departed"] = remembered(stopping)
    anonymised_at_night = what_is_left(anonymised, pseudonyms[anonymised.pk])
    anonymised_at_night["departed"] = remembered(anonymised)

    assert anonymised_at_night == stopped_by_themselves
    assert stopped_by_themselves["departed"] == {"email": True, "mobile": True, "departed record": False}
    assert stopped_by_themselves["participant"]["status opened"] == Participant.Status.STOPPED
    assert stopped_by_themselves["consents"][-1] == ("withdrawn", "v1", TODAY)
    assert stopped_by_themselves["dossier"] == {
        "is_open": False,
        "closed_on": TODAY,
        "link": [True, True],
        "theirs": False,
    }


# --- existing consents lose their time of day ------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_the_migration_truncates_existing_consents_to_their_amsterdam_day(organisation: Organisation) -> None:
    from django.db.migrations.executor import MigrationExecutor

    participant = make_participant(organisation)
    before = [("participants", "0008_w3_account_code_purpose")]
    after = [("participants", "0009_w5_dated_consents_help_queue_retention")]
    executor = MigrationExecutor(connections["default"])
    executor.migrate(before)
    try:
        with connections["default"].cursor() as cursor:
            # 23:30 UTC on the 17th is half past midnight on the 18th in Amsterdam.
            cursor.execute(
                "INSERT INTO participants_consentrecord "
                "(id, participant_id, kind, text_version, recorded_at) VALUES (%s, %s, 'given', 'v1', %s)",
                [uuid.uuid4(), participant.pk, dt.datetime(2026, 11, 17, 23, 30, tzinfo=dt.UTC)],
            )
    finally:
        executor = MigrationExecutor(connections["default"])
        executor.loader.build_graph()
        executor.migrate(after)

    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT recorded_at::text FROM participants_consentrecord")
            assert cursor.fetchall() == [("2026-11-18",)]
    finally:
        # Back to the latest schema, with every migration that came after this one, for the tests that follow.
        executor = MigrationExecutor(connections["default"])
        executor.migrate(executor.loader.graph.leaf_nodes())


# --- whom the night anonymised is remembered as departed ---------------------------------------------------


def test_a_re_import_does_not_invite_again_someone_the_night_anonymised(
    organisation: Organisation, employer: Any
) -> None:
    from participants.importing import import_address_list

    # Anonymised for inactivity: without the departed hash the employer's re-import would create them anew
    # and "send invitations" would reach exactly this person, telling the employer they had dropped out.
    person = inactive(organisation, last_response=days_ago(400))
    email, mobile = person.email, person.mobile
    assert email and mobile
    retention.run_retention(today=TODAY)
    assert is_anonymised(person)
    data = f"naam;e-mail;mobiel;afdeling\r\nJan de Vries;{email};{mobile};Care\r\n".encode()

    result = import_address_list(organisation=organisation, data=data, full_list=False, by=employer)

    assert (result.created, result.unchanged) == (0, 1)
    assert not Participant.objects.exclude(pk=person.pk).exists()
