"""The participant's sign-off: offered on the account page behind both factors, queued sealed, taken up by the
batch into the ledger and feedback; bad input changes nothing, and no message goes to any mailbox."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from casefiles.models import Dossier, Trajectory
from notary import references, signoffs, tasks
from notary.models import Feedback, LedgerEntry, PendingFeedback, QueuedSignOff
from participants import account, requestqueue
from participants.models import Organisation, Participant, StaffUser
from preventicons import messaging
from preventicons.dbrouter import CASEFILES
from preventicons.gateways import MemorySmsGateway
from scores import wellbeing
from scores.weekclose import monday_of
from tests.casefiles.world import signed_casemanager
from tests.conftest import ALL_DATABASES, run_on_embedded_default
from tests.notary.signoffworld import (
    choice_of,
    ended_trajectory,
    participant_in,
    pending_feedback,
    sign_off,
)
from tests.participants.test_stop import delivered_codes, open_account
from tests.test_pages import foreign_urls, parse

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("english", "empty_cache"),
]

PAGE = "/me/sign-off/"


@pytest.fixture
def anna(organisation: Organisation) -> StaffUser:
    return signed_casemanager("cm-anna", organisation)


@pytest.fixture
def jan(organisation: Organisation) -> Participant:
    return participant_in(organisation, name="Jan de Vries", email="jan@example.nl")


@pytest.fixture
def jans(jan: Participant, anna: StaffUser) -> tuple[Dossier, Trajectory]:
    return ended_trajectory(jan, anna)


@pytest.fixture
def jan_client(client: Client, jan: Participant, jans: Any) -> Client:
    open_account(client, "jan@example.nl")
    return client


def nothing_written() -> bool:
    return (
        not QueuedSignOff.objects.exists()
        and not Feedback.objects.exists()
        and not PendingFeedback.objects.exists()
        and not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SIGNED_OFF).exists()
    )


def post(client: Client, **fields: str) -> Any:
    return client.post(PAGE, fields)


def raw_queue_text() -> str:
    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("SELECT id::text, sealed, queued_on::text FROM notary_queuedsignoff")
        return "\n".join(" ".join(row) for row in cursor.fetchall())


# --- the whole path ---------------------------------------------------------------------------------------


def test_the_whole_path_from_the_account_offer_to_the_ledger_and_the_feedback(
    jan_client: Client, jan: Participant, jans: tuple[Dossier, Trajectory]
) -> None:
    dossier, trajectory = jans
    reference = references.reference_for(trajectory.pk)
    sent_mail, sent_sms = len(mail.outbox), len(MemorySmsGateway.outbox)

    account_page = jan_client.get("/me/").content.decode()
    assert "Did your help take place?" in account_page and f'href="{PAGE}"' in account_page

    page = jan_client.get(PAGE)
    html = page.content.decode()
    assert page.status_code == 200
    week = monday_of(timezone.localdate()).isocalendar()
    assert f"Coaching, ended in week {week.week} of {week.year}" in html
    assert reference not in html and dossier.number not in html and str(trajectory.pk) not in html

    response = post(
        jan_client,
        choice=choice_of(jan),
        took_place="yes",
        rating="4",
        remark="Fijne gesprekken, goed geholpen.",
    )
    assert response.status_code == 302 and response["Location"] == PAGE
    after = jan_client.get(PAGE).content.decode()
    assert "Noted, thank you" in after and "There is nothing to sign off" in after
    # Queued, sealed, and nothing else: no ledger entry, no feedback next to the person's session.
    assert QueuedSignOff.objects.count() == 1
    assert not Feedback.objects.exists()
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SIGNED_OFF).exists()
    assert "Did your help take place?" not in jan_client.get("/me/").content.decode()

    done = tasks.take_up_sign_offs()

    assert done == 1
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.SIGNED_OFF)
    assert entry.reference == reference
    assert entry.organisation_id == jan.organisation_id
    assert entry.week == monday_of(timezone.localdate())
    assert entry.facts == {"took_place": True}
    # The feedback waits sealed until enough sign-offs are pending to be written mixed (notary.feedback).
    assert not Feedback.objects.exists()
    (pending,) = pending_feedback()
    assert (pending["rating"], pending["remark"], pending["organisation"]) == (
        4,
        "Fijne gesprekken, goed geholpen.",
        jan.organisation_id,
    )
    assert not QueuedSignOff.objects.exists()
    # Nothing went to any mailbox or phone: the employer reads the mailboxes it supplied.
    assert (len(mail.outbox), len(MemorySmsGateway.outbox)) == (sent_mail, sent_sms)


def test_the_queue_row_holds_no_plaintext(jan: Participant, jans: tuple[Dossier, Trajectory]) -> None:
    reference = references.reference_for(jans[1].pk)

    sign_off(jan, rating="2", remark="Uitstekende begeleiding")

    dump = raw_queue_text()
    for plain in (reference, "Uitstekende", "took_place", "rating", str(jan.organisation_id) + ",", "true"):
        assert plain not in dump


def test_a_long_remark_and_none_seal_to_the_same_length(
    jan: Participant, jans: Any, anna: StaffUser, organisation: Organisation
) -> None:
    piet = participant_in(organisation, name="Piet Bakker")
    ended_trajectory(piet, anna)
    sign_off(jan, took_place="no")
    sign_off(piet, rating="5", remark="é" * signoffs.MAX_REMARK_LENGTH)

    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("SELECT DISTINCT length(sealed) FROM notary_queuedsignoff")
        lengths = cursor.fetchall()
    assert len(lengths) == 1


def test_did_not_take_place_without_rating_records_the_fact_and_no_feedback(
    jan: Participant, jans: Any
) -> None:
    sign_off(jan, took_place="no")

    signoffs.take_up()

    assert LedgerEntry.objects.get(kind=LedgerEntry.Kind.SIGNED_OFF).facts == {"took_place": False}
    assert not Feedback.objects.exists()
    # A pending row all the same, without a rating: that a sign-off carried feedback shows nowhere.
    assert [pending["rating"] for pending in pending_feedback()] == [None]


# --- who may -------------------------------------------------------------------------------------------


def test_without_both_factors_the_page_redirects_and_shows_nothing(
    client: Client, jan: Participant, jans: Any
) -> None:
    assert client.get(PAGE)["Location"] == "/me/link/"
    # The e-mailed link alone (one factor): on to the code step.
    client.post("/me/link/", {"email": "jan@example.nl"})
    messaging.send_due_messages()
    link = re.search(r"/me/link/(\S+)/", str(mail.outbox[-1].body))
    assert link
    client.get(f"/me/link/{link.group(1)}/")
    client.post("/me/link/open/")

    assert client.get(PAGE)["Location"] == "/me/link/code/"
    assert client.post(PAGE, {"choice": "x", "took_place": "yes"})["Location"] == "/me/link/code/"
    assert nothing_written()


def test_a_stopped_participant_can_sign_off_nothing(jan: Participant, jans: Any) -> None:
    choice = choice_of(jan)
    account.request_stop_codes(participant=jan)
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_stop(participant=jan, email_code=email_code, sms_code=sms_code).done
    wellbeing.take_up_help_requests()
    jan.refresh_from_db()

    with pytest.raises(signoffs.SignOffRefused, match="only while you take part"):
        signoffs.queue_sign_off(participant=jan, choice=choice, took_place="yes")
    assert signoffs.open_sign_offs(participant=jan) == []
    assert nothing_written()


def test_a_stop_in_another_tab_closes_the_page(jan_client: Client, jan: Participant) -> None:
    choice = choice_of(jan)
    account.request_stop_codes(participant=jan)
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_stop(participant=jan, email_code=email_code, sms_code=sms_code).done
    wellbeing.take_up_help_requests()

    response = post(jan_client, choice=choice, took_place="yes")

    assert response.status_code == 302 and response["Location"] == "/me/link/"
    assert nothing_written()


# --- bad input changes nothing -----------------------------------------------------------------------------


@pytest.mark.parametrize("rating", ["0", "6", "x", "-1", "4.5", "٤"])
def test_a_rating_off_the_scale_is_refused(jan_client: Client, jan: Participant, rating: str) -> None:
    response = post(jan_client, choice=choice_of(jan), took_place="yes", rating=rating)

    assert response.status_code == 400
    assert "Choose a rating from 1 to 5, or none." in response.content.decode()
    assert nothing_written()


def test_took_place_must_be_answered(jan_client: Client, jan: Participant) -> None:
    response = post(jan_client, choice=choice_of(jan), took_place="maybe", rating="3")

    assert response.status_code == 400
    assert "Say whether the trajectory took place." in response.content.decode()
    assert nothing_written()


@pytest.mark.parametrize("choice", ["0" * 32, "", "é" * 32, "x" * 5000])
def test_an_unknown_trajectory_is_refused(jan_client: Client, choice: str) -> None:
    response = post(jan_client, choice=choice, took_place="yes")

    assert response.status_code == 400
    assert "cannot be signed off" in response.content.decode()
    assert nothing_written()


def test_someone_elses_trajectory_is_refused(
    jan_client: Client, organisation: Organisation, anna: StaffUser
) -> None:
    piet = participant_in(organisation, name="Piet Bakker")
    ended_trajectory(piet, anna)

    response = post(jan_client, choice=choice_of(piet), took_place="yes", rating="1")

    assert response.status_code == 400
    assert "cannot be signed off" in response.content.decode()
    assert nothing_written()


@pytest.mark.parametrize(
    ("remark", "part"),
    [
        ("Jan de Vries is erg geholpen", "Jan de Vries"),
        ("Mail mij op jan.prive@example.com", "jan.prive@example.com"),
        ("Bel 06-12345678 voor meer", "06-12345678"),
    ],
)
def test_a_remark_that_names_someone_or_holds_contact_details_is_refused(
    jan_client: Client, jan: Participant, remark: str, part: str
) -> None:
    response = post(jan_client, choice=choice_of(jan), took_place="yes", rating="5", remark=remark)

    html = response.content.decode()
    assert response.status_code == 400
    assert f"“{part}”" in html
    assert "Leave it out" in html or "This is your name" in html
    # What they wrote stays in the form to rewrite it.
    assert remark in html
    assert nothing_written()


def test_a_remark_needs_a_rating(jan_client: Client, jan: Participant) -> None:
    response = post(jan_client, choice=choice_of(jan), took_place="yes", remark="Prima")

    assert response.status_code == 400
    assert "Give a rating with your remark" in response.content.decode()
    assert nothing_written()


def test_a_remark_too_long_is_refused(jan_client: Client, jan: Participant) -> None:
    response = post(
        jan_client,
        choice=choice_of(jan),
        took_place="yes",
        rating="3",
        remark="a" * (signoffs.MAX_REMARK_LENGTH + 1),
    )

    assert response.status_code == 400
    assert nothing_written()


def test_a_second_sign_off_of_the_same_trajectory_is_refused_queued_and_recorded(
    jan_client: Client, jan: Participant
) -> None:
    choice = choice_of(jan)
    assert post(jan_client, choice=choice, took_place="yes", rating="4").status_code == 302

    again = post(jan_client, choice=choice, took_place="no", rating="1")
    assert again.status_code == 400 and "Each trajectory is signed off once" in again.content.decode()
    assert QueuedSignOff.objects.count() == 1

    signoffs.take_up()
    once_more = post(jan_client, choice=choice, took_place="no")
    assert once_more.status_code == 400
    assert not QueuedSignOff.objects.exists()
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SIGNED_OFF).count() == 1
    assert [pending["rating"] for pending in pending_feedback()] == [4]


def test_two_tabs_queueing_one_trajectory_twice_record_it_once(jan: Participant, jans: Any) -> None:
    choice = choice_of(jan)
    sign_off(jan, rating="5", remark="Heel goed")
    # The second tab's sign-off, queued as if both had passed their checks at the same moment.
    signoffs._queue(
        {
            "reference": references.reference_for(jans[1].pk),
            "organisation": jan.organisation_id,
            "took_place": False,
            "rating": 1,
            "remark": None,
        }
    )
    assert choice and QueuedSignOff.objects.count() == 2

    done = signoffs.take_up()

    assert (done.signed_off, done.dropped) == (1, 1)
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SIGNED_OFF).count() == 1
    assert len(pending_feedback()) == 1
    assert not QueuedSignOff.objects.exists()


# --- what is offered -------------------------------------------------------------------------------------


def test_a_trajectory_ended_longer_ago_than_the_window_is_not_offered(
    jan: Participant, anna: StaffUser
) -> None:
    long_ago = timezone.localdate() - dt.timedelta(weeks=settings.SIGN_OFF_WEEKS + 1)
    ended_trajectory(jan, anna, ended_on=long_ago)
    earlier = signoffs.open_sign_offs(participant=jan, today=long_ago + dt.timedelta(days=1))
    assert len(earlier) == 1

    assert signoffs.open_sign_offs(participant=jan) == []
    with pytest.raises(signoffs.SignOffRefused):
        signoffs.queue_sign_off(participant=jan, choice=earlier[0].choice, took_place="yes")
    assert nothing_written()


def test_a_trajectory_still_running_or_unknown_to_the_ledger_is_not_offered(
    jan: Participant, anna: StaffUser
) -> None:
    dossier, _trajectory = ended_trajectory(jan, anna, with_reference=False)
    from casefiles import trajectories

    trajectories.start_trajectory(dossier, kind="counselling", started_on=timezone.localdate(), user=anna)

    assert signoffs.open_sign_offs(participant=jan) == []
    assert signoffs.offer_sign_off(jan.pseudonym or "") is None
    # Looking made no reference: nothing is written in the second the participant looks.
    assert references.references_for([_trajectory.pk]) == {}


def test_a_closed_dossier_s_trajectory_is_still_offered(jan: Participant, jans: Any, anna: StaffUser) -> None:
    from casefiles import operations

    operations.close_with_note(jans[0], text="Afgerond.", user=anna)

    assert len(signoffs.open_sign_offs(participant=jan)) == 1


# --- the batch ----------------------------------------------------------------------------------------------


def test_a_batch_that_fails_loses_nothing_and_a_retry_records_once(jan: Participant, jans: Any) -> None:
    sign_off(jan, rating="3", remark="Redelijk")

    with pytest.raises(RuntimeError), transaction.atomic(using=CASEFILES):
        signoffs.take_up()
        raise RuntimeError("the worker died before the commit")

    assert QueuedSignOff.objects.count() == 1 and nothing_written() is False
    assert not LedgerEntry.objects.exists() and not Feedback.objects.exists()
    assert signoffs.take_up().signed_off == 1
    assert signoffs.take_up().signed_off == 0
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SIGNED_OFF).count() == 1
    assert len(pending_feedback()) == 1


def test_the_batch_runs_hourly_from_the_beat() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["take-up-sign-offs"]

    assert entry["task"] == "notary.tasks.take_up_sign_offs"
    assert tasks.take_up_sign_offs.name == entry["task"]


# --- the page itself ---------------------------------------------------------------------------------------


def test_the_page_is_one_h1_with_every_field_labelled_and_no_inline_code(
    jan_client: Client, jan: Participant, anna: StaffUser
) -> None:
    from casefiles import trajectories

    # A second trajectory of the same dossier, ended a week before the first: two forms on one page.
    dossier = Dossier.objects.get(pk=Trajectory.objects.get().dossier_id)
    earlier = trajectories.start_trajectory(
        dossier, kind="intake", started_on=timezone.localdate() - dt.timedelta(days=60), user=anna
    )
    trajectories.end_trajectory(earlier, ended_on=timezone.localdate() - dt.timedelta(days=7), user=anna)
    references.reference_for(earlier.pk)

    html = jan_client.get(PAGE).content.decode()

    page = parse(html)
    assert page.h1_count == 1 and page.inline_scripts == 0 and page.event_handlers == []
    assert html.count('name="choice"') == 2 and "Intake, ended in week" in html
    for attributes in page.inputs:
        assert attributes.get("id") in page.label_targets, attributes
    assert foreign_urls(page) == []


@pytest.mark.integration
def test_on_the_embedded_sqlite_default_the_batch_runs_and_releases(tmp_path: Path) -> None:
    printed = run_on_embedded_default(str(Path(__file__).with_name("sqlite_sign_off.py")), var_dir=tmp_path)
    seen = json.loads(printed.strip().splitlines()[-1])

    assert seen == {"vendor": "sqlite", "first": 5, "again": 0, "entries": 5, "feedback": 5, "releases": 1}
