"""Signals for help from a participant's own scores, and asking for contact (consent, one dossier)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from casefiles.models import Dossier
from participants.models import ConsentRecord, Organisation, Participant, QueuedRequest
from preventicons import crypto
from scores import wellbeing
from scores.submission import record_score
from tests.conftest import ALL_DATABASES
from tests.scores.people import make_link, make_participant

WEEK = dt.date(2026, 11, 16)


def record(organisation: Organisation, *, week: dt.date, value: int, pseudonym: str) -> None:
    """A score under pseudonym P, stored as a submission stores it (sealed, per-week pseudonym)."""
    record_score(
        pseudonym=pseudonym, week=week, value=value, organisation_id=organisation.pk, department_id=None
    )


def week(back: int) -> dt.date:
    return WEEK - dt.timedelta(days=7 * back)


# Scores oldest first, ending with WEEK; None is a week without a score.
CASES = [
    ("very bad this week", [1], True),
    ("bad this week", [2], True),
    ("so-so this week, nothing before", [3], False),
    ("good and steady", [4, 4, 4], False),
    ("a fall of two points", [5, 3], True),
    ("a fall of one point", [4, 3], False),
    ("a rise", [3, 5], False),
    ("three falling weeks", [5, 4, 3], True),
    ("two falling weeks only", [4, 4, 3], False),
    ("falling, but a gap breaks the run", [5, 4, None, 3], False),
    ("a fall of two over a gap is not a fall between weeks", [5, None, 3], False),
    ("no score this week", [1, 1, None], False),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_should_offer_help(organisation: Organisation, values: list[int | None], expected: bool) -> None:
    pseudonym = crypto.new_pseudonym()
    for back, value in enumerate(reversed(values)):
        if value is not None:
            record(organisation, week=week(back), value=value, pseudonym=pseudonym)
    # Someone else's bad week changes nothing for this pseudonym.
    record(organisation, week=WEEK, value=1, pseudonym=crypto.new_pseudonym())

    assert wellbeing.should_offer_help(pseudonym=pseudonym, week=WEEK) is expected


@pytest.mark.django_db
def test_later_scores_do_not_count_for_an_earlier_week(organisation: Organisation) -> None:
    pseudonym = crypto.new_pseudonym()
    record(organisation, week=week(1), value=4, pseudonym=pseudonym)
    record(organisation, week=WEEK, value=1, pseudonym=pseudonym)

    assert wellbeing.should_offer_help(pseudonym=pseudonym, week=week(1)) is False


@pytest.mark.django_db
def test_the_thresholds_are_settings(organisation: Organisation, settings: object) -> None:
    pseudonym = crypto.new_pseudonym()
    record(organisation, week=WEEK, value=3, pseudonym=pseudonym)
    assert not wellbeing.should_offer_help(pseudonym=pseudonym, week=WEEK)

    settings.HELP_SCORE_THRESHOLD = 3  # type: ignore[attr-defined]

    assert wellbeing.should_offer_help(pseudonym=pseudonym, week=WEEK)


@pytest.mark.django_db
# --- asking for contact ----------------------------------------------------------------------------


def ask(participant: Participant, channel: str = "phone") -> wellbeing.HelpRequested:
    return wellbeing.request_help(
        participant=participant, channel=channel, consent_text_version=wellbeing.CONTACT_CONSENT_VERSION
    )


def batch() -> wellbeing.HelpBatch:
    """The help-request batch, as beat runs it every HELP_REQUEST_BATCH_MINUTES."""
    return wellbeing.take_up_help_requests()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_asking_for_help_only_queues_the_request_sealed(organisation: Organisation) -> None:
    participant = make_participant(organisation)

    ask(participant)

    # Nothing but the sealed queue row: the consent and the dossier wait for the batch.
    assert not ConsentRecord.objects.exists() and not Dossier.objects.exists()
    ((request, queued_on),) = QueuedRequest.objects.values_list("request", "queued_on")
    assert isinstance(queued_on, dt.date) and not isinstance(queued_on, dt.datetime)
    for readable in (str(participant.pk), participant.pk.hex, participant.pseudonym or "-", "phone"):
        assert readable not in request


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_batch_records_contact_consent_and_opens_a_dossier(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    ask(participant)

    assert batch() == wellbeing.HelpBatch(taken_up=1, dropped=0)

    consent = ConsentRecord.objects.of(participant.pk).get()
    assert (consent.kind, consent.text_version) == (
        ConsentRecord.Kind.CONTACT,
        wellbeing.CONTACT_CONSENT_VERSION,
    )
    dossier = Dossier.objects.get()
    assert re.fullmatch(r"D-[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{9}", dossier.number)
    assert dossier.pseudonym_index == crypto.casefiles_index(participant.pseudonym or "")
    assert dossier.pseudonym == participant.pseudonym  # opens under the casefiles key
    assert dossier.is_open
    assert dossier.contact_channel == "phone"
    # Only sealed: P and the channel are nowhere in clear in the casefiles row.
    raw_pseudonym, raw_channel = Dossier.objects.values_list("pseudonym", "contact_channel").get()
    assert participant.pseudonym and raw_pseudonym and participant.pseudonym not in raw_pseudonym
    assert raw_channel and "phone" not in raw_channel
    assert not QueuedRequest.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_asking_twice_opens_exactly_one_dossier(organisation: Organisation) -> None:
    participant = make_participant(organisation)

    ask(participant)
    ask(participant, channel="email")
    batch()

    assert Dossier.objects.count() == 1
    # Which of two requests in one batch came last is kept nowhere (no time of day), so either may win.
    assert Dossier.objects.get().contact_channel in {"phone", "email"}
    # The same consent on the same day is one dated record, however often they asked.
    assert len(ConsentRecord.objects.of(participant.pk).opened(ConsentRecord.Kind.CONTACT)) == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_later_batch_keeps_the_channel_asked_for_last(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    ask(participant)
    batch()

    ask(participant, channel="email")
    batch()

    assert Dossier.objects.get().contact_channel == "email"


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_asking_again_in_a_later_batch_reopens_a_closed_dossier(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    ask(participant)
    batch()
    closed = Dossier.objects.get()
    closed.is_open, closed.closed_on = False, timezone.localdate()
    closed.save()

    ask(participant)
    batch()

    assert Dossier.objects.get().is_open


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_two_participants_get_two_dossiers(organisation: Organisation) -> None:
    ask(make_participant(organisation))
    ask(make_participant(organisation))
    batch()

    assert Dossier.objects.values("number").distinct().count() == 2


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_an_unknown_channel_is_refused_and_changes_nothing(organisation: Organisation) -> None:
    participant = make_participant(organisation)

    with pytest.raises(wellbeing.HelpRefused):
        ask(participant, channel="carrier-pigeon")

    assert not QueuedRequest.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_participant_who_is_not_active_cannot_ask(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    Participant.objects.filter(pk=participant.pk).set_state(status=Participant.Status.INACTIVE)

    with pytest.raises(wellbeing.HelpRefused):
        ask(participant)

    assert not QueuedRequest.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_request_of_someone_who_stopped_before_the_batch_records_nothing(
    organisation: Organisation,
) -> None:
    from participants import account

    participant = make_participant(organisation)
    ask(participant)
    account.stop_participation(participant=participant)

    assert batch() == wellbeing.HelpBatch(taken_up=0, dropped=1)

    assert not bool(ConsentRecord.objects.opened(ConsentRecord.Kind.CONTACT))
    # Left: the stop's close, held for the first batch of the next day (it finds no dossier to close).
    assert not Dossier.objects.exists() and QueuedRequest.objects.count() == 1
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    assert wellbeing.take_up_help_requests(today=tomorrow) == wellbeing.HelpBatch(
        taken_up=0, dropped=0, stop_closes=1
    )
    assert not Dossier.objects.exists() and not QueuedRequest.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_failing_dossier_side_records_no_consent_and_keeps_the_request(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from casefiles import numbers

    participant = make_participant(organisation)
    ask(participant)
    # Every number drawn is taken: the casefiles side gives up, and the whole batch must roll back with it.
    taken = Dossier(number="D-AAAAAAAAX", opened_on=WEEK)
    taken.save()
    monkeypatch.setattr(numbers, "new_number", lambda: "D-AAAAAAAAX")

    with pytest.raises(RuntimeError):
        batch()

    assert not ConsentRecord.objects.exists()
    assert Dossier.objects.count() == 1
    assert QueuedRequest.objects.count() == 1  # waits for the next batch
    monkeypatch.undo()

    batch()

    assert Dossier.objects.count() == 2 and not QueuedRequest.objects.exists()


# --- the help page ----------------------------------------------------------------------------------

TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def help_page(organisation: Organisation) -> tuple[Participant, str]:
    participant = make_participant(organisation)
    _link, token = make_link(participant, week=WEEK)
    return participant, f"/w/{token}/help/"


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(TUESDAY, tick=False)
def test_the_help_page_explains_and_asks_for_consent_and_a_channel(
    client: Client, help_page: tuple[Participant, str]
) -> None:
    _participant, path = help_page

    response = client.get(path)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Your employer is not told" in html and "casemanager" in html
    assert 'name="consent"' in html and html.count('name="channel"') == 2
    assert reverse("scores:help", kwargs={"token": path.split("/")[2]}) == path
    assert not ConsentRecord.objects.exists() and not Dossier.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(TUESDAY, tick=False)
def test_posting_consent_and_a_channel_records_the_request(
    client: Client, help_page: tuple[Participant, str]
) -> None:
    participant, path = help_page

    response = client.post(path, {"consent": "yes", "channel": "email"})
    again = client.post(path, {"consent": "yes", "channel": "email"})

    assert response.status_code == again.status_code == 200
    # The page still promises contact; the batch makes it so.
    assert 'id="help-requested"' in response.content.decode()
    assert "A casemanager will write to you by e-mail." in response.content.decode()
    assert QueuedRequest.objects.count() == 2 and not Dossier.objects.exists()
    batch()
    assert len(ConsentRecord.objects.of(participant.pk).opened(ConsentRecord.Kind.CONTACT)) == 1
    assert Dossier.objects.count() == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(TUESDAY, tick=False)
def test_asking_for_contact_needs_no_cookie(help_page: tuple[Participant, str]) -> None:
    _participant, path = help_page
    # A browser or in-app view that refuses cookies, with Django's CSRF check enforced as in production.
    cookieless = Client(enforce_csrf_checks=True)

    response = cookieless.post(path, {"consent": "yes", "channel": "phone"})

    assert response.status_code == 200 and 'id="help-requested"' in response.content.decode()
    assert QueuedRequest.objects.count() == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(TUESDAY, tick=False)
@pytest.mark.parametrize(
    "data", [{"channel": "phone"}, {"consent": "yes"}, {"consent": "yes", "channel": "fax"}], ids=str
)
def test_without_consent_or_a_channel_nothing_is_recorded(
    client: Client, help_page: tuple[Participant, str], data: dict[str, str]
) -> None:
    _participant, path = help_page

    response = client.post(path, data)

    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert not QueuedRequest.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(TUESDAY, tick=False)
def test_an_unknown_link_opens_no_help_page_and_an_inactive_person_s_request_records_nothing(
    client: Client, organisation: Organisation, help_page: tuple[Participant, str]
) -> None:
    participant, path = help_page

    assert client.post(f"/w/{'A' * 43}/help/", {"consent": "yes", "channel": "phone"}).status_code == 404
    Participant.objects.filter(pk=participant.pk).set_state(status=Participant.Status.INACTIVE)
    # Answered as accepted, so the link holder learns nothing about their status; nothing is recorded.
    response = client.post(path, {"consent": "yes", "channel": "phone"})
    assert response.status_code == 200 and 'id="help-requested"' in response.content.decode()
    assert not QueuedRequest.objects.exists()
    assert not ConsentRecord.objects.exists() and not Dossier.objects.exists()
