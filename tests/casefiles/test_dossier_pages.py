"""The casemanager's pages (issue 18): the dashboard, the dossier, contact, notes, trajectories, closing.

Against real PostgreSQL (the three stores), through the real help-request flow and Django's test client
with a verified two-factor login. Enumeration is tried as an adversary would: every way of not owning a
dossier must answer like every other, in status, body and the queries run (the structural half of "in the
same time": wall-clock is never asserted).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from casefiles import notes as casenotes
from casefiles import numbers
from casefiles.models import (
    AccessLogEntry,
    Deputy,
    Dossier,
    ProgressNote,
    QueuedNote,
    Trajectory,
    TrajectorySession,
)
from participants import casemanagers
from participants.account import stop_participation
from participants.models import Organisation, Participant
from preventicons.dbrouter import ALIASES, CASEFILES, NOTES
from tests.casefiles.world import (
    World,
    active_participant,
    add_weeks,
    ask_for_help,
    build_world,
    close_stopped_dossiers,
    signed_casemanager,
)
from tests.conftest import ALL_DATABASES, login_verified

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]


@pytest.fixture
def world(organisation: Organisation) -> World:
    return build_world(organisation)


def as_user(client: Client, user: object) -> Client:
    return login_verified(client, user)  # type: ignore[arg-type]


def dossier_url(number: str, name: str = "casefiles:dossier") -> str:
    return reverse(name, kwargs={"number": number})


def actions_logged(number: str = "") -> list[str]:
    rows = AccessLogEntry.objects.order_by("sequence")
    if number:
        rows = rows.filter(dossier_number=number)
    return list(rows.values_list("action", flat=True))


# --- the dashboard ------------------------------------------------------------------------------------


def test_the_dashboard_lists_a_new_help_request_with_its_first_contact_due(
    world: World, client: Client
) -> None:
    response = as_user(client, world.anna).get(reverse("casefiles:dashboard"))

    assert response.status_code == 200
    page = response.content.decode()
    assert world.dossier.number in page
    assert "new help request" in page and "due by" in page
    # The last weeks went 4 -> 2: a sharp drop.
    assert "sharp drop" in page
    assert "Jan" not in page and "example.nl" not in page
    # Listed once, under its most urgent reason (the new request), its drop as a marker in that row.
    assert page.count(f">{world.dossier.number}</a>") == 1
    assert "new help request, sharp drop" in page
    assert actions_logged() == [AccessLogEntry.Action.VIEW_DASHBOARD]


def test_a_colleague_linked_to_the_same_organisation_sees_none_of_it(world: World, client: Client) -> None:
    page = as_user(client, world.bert).get(reverse("casefiles:dashboard")).content.decode()

    assert world.dossier.number not in page
    assert "You have no dossiers yet" in page


def test_search_by_number_opens_the_dossier_and_a_miss_says_so_without_keeping_the_string(
    world: World, client: Client
) -> None:
    as_user(client, world.anna)
    typed = world.dossier.number.lower().replace("-", " ")
    hit = client.get(reverse("casefiles:dashboard"), {"number": typed})
    assert hit.status_code == 302 and hit["Location"] == dossier_url(world.dossier.number)

    miss = client.get(reverse("casefiles:dashboard"), {"number": "D-ZZZZZZZZZ"})
    assert "None of your dossiers has this number" in miss.content.decode()
    searches = AccessLogEntry.objects.filter(action=AccessLogEntry.Action.SEARCH).order_by("sequence")
    assert [entry.dossier_number for entry in searches] == [world.dossier.number, ""]


def test_the_colleagues_search_for_anothers_number_misses(world: World, client: Client) -> None:
    as_user(client, world.bert)
    miss = client.get(reverse("casefiles:dashboard"), {"number": world.dossier.number})

    assert miss.status_code == 200
    assert "None of your dossiers has this number" in miss.content.decode()


# --- enumeration: every refusal alike ----------------------------------------------------------------------


def _neighbour(number: str) -> str:
    """One character of the random part changed, the check character kept: what a typo gives."""
    body = number[2:]
    changed = numbers.ALPHABET[(numbers.ALPHABET.index(body[0]) + 1) % len(numbers.ALPHABET)]
    return "D-" + changed + body[1:]


def _flipped_check(number: str) -> str:
    check = number[-1]
    return number[:-1] + numbers.ALPHABET[(numbers.ALPHABET.index(check) + 1) % len(numbers.ALPHABET)]


def _probe(client: Client, number: str) -> tuple[int, bytes, list[int]]:
    """Status, body and the number of queries per store of one GET of the dossier page."""
    contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in ALIASES}
    for context in contexts.values():
        context.__enter__()
    try:
        response = client.get(dossier_url(number))
    finally:
        for context in contexts.values():
            context.__exit__(None, None, None)
    # The CSRF token differs per response; nothing else may.
    body = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", response.content)
    return response.status_code, body, [len(contexts[alias].captured_queries) for alias in ALIASES]


def test_every_way_of_not_owning_a_dossier_answers_the_same_404(
    world: World, client: Client, other_organisation: Organisation
) -> None:
    organisation = world.organisation
    # Another casemanager's dossier, in another organisation.
    carla = signed_casemanager("cm-carla", other_organisation)
    foreign = ask_for_help(active_participant(other_organisation))
    assert foreign.casemanager_id == carla.pk
    # Anna's own dossiers of a participant who stopped, and of one who became inactive.
    stopper = active_participant(organisation)
    stopped = ask_for_help(stopper)
    stop_participation(participant=stopper)
    inactive_one = active_participant(organisation)
    unavailable = ask_for_help(inactive_one)
    inactive_one.status = Participant.Status.INACTIVE
    inactive_one.save(update_fields=["status"])
    as_user(client, world.anna)

    probes = {
        "another casemanager's": foreign.number,
        "a stopped participant's": Dossier.objects.get(pk=stopped.pk).number,
        "an inactive participant's": unavailable.number,
        "a random number": numbers.new_number(),
        "a neighbouring number": _neighbour(world.dossier.number),
        "a flipped check character": _flipped_check(world.dossier.number),
        "no number at all": "D-AAAA",
    }
    answers = {what: _probe(client, number) for what, number in probes.items()}

    statuses = {what: answer[0] for what, answer in answers.items()}
    assert set(statuses.values()) == {404}, statuses
    assert len({answer[1] for answer in answers.values()}) == 1
    assert len({tuple(answer[2]) for answer in answers.values()}) == 1, {w: a[2] for w, a in answers.items()}
    assert _probe(client, world.dossier.number)[0] == 200
    # A refused probe is no look: only the one real look is logged against a number.
    assert actions_logged(world.dossier.number) == [AccessLogEntry.Action.VIEW_DOSSIER]


def test_a_colleague_of_the_same_organisation_gets_the_same_404_on_every_dossier_url(
    world: World, client: Client
) -> None:
    as_user(client, world.bert)
    number = world.dossier.number
    trajectory = Trajectory.objects.create(
        dossier=world.dossier, kind="coaching", started_on=dt.date(2026, 1, 5)
    )
    session = TrajectorySession.objects.create(trajectory=trajectory, planned_on=dt.date(2026, 1, 12))
    gets = [dossier_url(number)]
    posts = [
        dossier_url(number, "casefiles:reveal-contact"),
        dossier_url(number, "casefiles:add-note"),
        dossier_url(number, "casefiles:close"),
        dossier_url(number, "casefiles:start-trajectory"),
        reverse("casefiles:add-session", kwargs={"number": number, "trajectory_id": trajectory.pk}),
        reverse("casefiles:end-trajectory", kwargs={"number": number, "trajectory_id": trajectory.pk}),
        reverse("casefiles:session-held", kwargs={"number": number, "session_id": session.pk}),
    ]
    for url in gets:
        assert client.get(url).status_code == 404
    for url in posts:
        assert client.post(url, {"note-kind": "intake", "note-text": "x"}).status_code == 404
    assert not AccessLogEntry.objects.filter(dossier_number=number).exists()
    assert not ProgressNote.objects.exists() and not QueuedNote.objects.exists()


# --- the dossier: scores, contact ----------------------------------------------------------------------


def test_the_dossier_shows_the_scores_as_a_chart_and_a_table_and_logs_the_look(
    world: World, client: Client
) -> None:
    response = as_user(client, world.anna).get(dossier_url(world.dossier.number))

    page = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in page and 'role="img"' in page
    assert page.count("<circle") == 5  # the five answered weeks
    assert "Jan" not in page and "example.nl" not in page  # no contact before it is asked for
    assert response["Referrer-Policy"] == "strict-origin"
    assert actions_logged(world.dossier.number) == [AccessLogEntry.Action.VIEW_DOSSIER]


def test_contact_details_show_only_on_the_explicit_action_and_every_reveal_is_logged(
    world: World, client: Client
) -> None:
    as_user(client, world.anna)
    assert client.get(dossier_url(world.dossier.number, "casefiles:reveal-contact")).status_code == 405

    response = client.post(dossier_url(world.dossier.number, "casefiles:reveal-contact"))

    page = response.content.decode()
    # E-mail was asked for, but the only address is the one the employer listed: the mobile instead.
    assert "Jan de Vries" in page and "jan.devries@example.nl" not in page
    assert (world.participant.mobile or "") in page
    assert "no-store" in response["Cache-Control"]
    client.post(dossier_url(world.dossier.number, "casefiles:reveal-contact"))
    assert actions_logged(world.dossier.number) == [AccessLogEntry.Action.REVEAL_CONTACT] * 2


def test_an_email_request_reveals_the_participants_private_address(
    organisation: Organisation, client: Client
) -> None:
    anna = signed_casemanager("cm-anna", organisation)
    participant = active_participant(organisation, name="Kim Bos", private_email="kim@thuis.example.nl")
    dossier = ask_for_help(participant, channel="email")

    page = (
        as_user(client, anna).post(dossier_url(dossier.number, "casefiles:reveal-contact")).content.decode()
    )

    assert "kim@thuis.example.nl" in page and (participant.mobile or "") not in page


def test_a_phone_request_reveals_the_mobile_number_only(organisation: Organisation, client: Client) -> None:
    anna = signed_casemanager("cm-anna", organisation)
    participant = active_participant(organisation, name="Fatima Bakker", mobile_number="+31612345678")
    dossier = ask_for_help(participant, channel="phone")

    page = (
        as_user(client, anna).post(dossier_url(dossier.number, "casefiles:reveal-contact")).content.decode()
    )

    assert "+31612345678" in page and "@" not in page.split("Contact", 1)[1].split("Weekly scores")[0]


def test_no_contact_data_is_stored_in_the_casefiles_store(world: World) -> None:
    with connections["casefiles"].cursor() as cursor:
        cursor.execute("SELECT * FROM casefiles_dossier")
        dumped = repr(cursor.fetchall())
    for secret in ("Jan", "Vries", "jan.devries", "example.nl", str(world.participant.pk), "email"):
        assert secret not in dumped


# --- notes ----------------------------------------------------------------------------------------------


def post_note(client: Client, number: str, text: str, kind: str = "intake") -> object:
    return client.post(dossier_url(number, "casefiles:add-note"), {"note-kind": kind, "note-text": text})


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("Mailde naar jan.devries@example.nl over de afspraak.", "jan.devries@example.nl"),
        ("Bereikbaar op 06-12345678 na vijven.", "06-12345678"),
        ("Zijn BSN is 111222333, dat heb ik niet genoteerd.", "111222333"),
        ("Gesprek gehad met Jan over de werkdruk.", "Jan"),
        ("Gesprek met de heer De Vries ging goed.", "De Vries"),
        ("Rekening NL91ABNA0417164300 genoemd.", "NL91ABNA0417164300"),
        ("Woont op 1234 AB 12, dichtbij het werk.", "1234 AB 12"),
    ],
)
def test_a_note_that_identifies_someone_is_refused_with_the_part_and_nothing_is_written(
    world: World, client: Client, text: str, part: str
) -> None:
    response = post_note(as_user(client, world.anna), world.dossier.number, text)

    assert response.status_code == 400  # type: ignore[attr-defined]
    page = response.content.decode()  # type: ignore[attr-defined]
    assert f"“{part}”" in page
    assert not ProgressNote.objects.exists() and not QueuedNote.objects.exists()
    # No note was added, but the page showed the dossier again: logged as a look.
    assert actions_logged() == [AccessLogEntry.Action.VIEW_DOSSIER]


@pytest.mark.parametrize(
    "text",
    [
        "Nummer 123456789 op de brief voldoet niet aan de elfproef.",
        "Afspraak op 12-03-2026 om 10.30 uur.",
        "We spraken over de berg werk die er ligt.",
        "Januari was zwaar, zegt de deelnemer.",
    ],
)
def test_a_note_that_only_looks_identifying_is_accepted(world: World, client: Client, text: str) -> None:
    response = post_note(as_user(client, world.anna), world.dossier.number, text)

    assert response.status_code == 302  # type: ignore[attr-defined]
    assert [note.text for note in casenotes.notes_of(world.dossier)] == [text]


def test_a_note_with_markup_is_shown_inert_and_the_notes_store_holds_no_number_or_text(
    world: World, client: Client
) -> None:
    as_user(client, world.anna)
    text = '<script>alert(1)</script><img src=x onerror="alert(2)"> werkdruk besproken'
    assert post_note(client, world.dossier.number, text).status_code == 302  # type: ignore[attr-defined]

    page = client.get(dossier_url(world.dossier.number)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "<img src=x" not in page
    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("SELECT * FROM casefiles_queuednote")
        queued = repr(cursor.fetchall())
    casenotes.take_up_queued_notes(force=True)
    with connections[NOTES].cursor() as cursor:
        cursor.execute("SELECT * FROM casefiles_progressnote")
        dumped = repr(cursor.fetchall()) + queued
    # Ciphertext bodies are random base64 (a queued note is padded to 20 KB): "Jan" turns up in one by chance
    # about one run in twelve. What must not be readable is everything outside them.
    dumped = re.sub(r"v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", "<sealed>", dumped)
    # Nor the kind or the day: beside the access log's entry for the note they would name its dossier.
    day = timezone.localdate()
    for secret in (world.dossier.number, world.dossier.number[2:], "werkdruk", "script", "Jan", "intake"):
        assert secret not in dumped
    assert "datetime.date" not in dumped and day.isoformat() not in dumped
    # The first note is the first contact: the dossier no longer waits for one.
    world.dossier.refresh_from_db()
    assert world.dossier.awaiting_contact_since is None


def test_notes_keep_the_order_they_were_written_in(world: World, client: Client) -> None:
    as_user(client, world.anna)
    for text in ("eerste gesprek", "tweede gesprek", "derde gesprek"):
        post_note(client, world.dossier.number, text, kind="session")

    page = client.get(dossier_url(world.dossier.number)).content.decode()
    assert page.index("eerste") < page.index("tweede") < page.index("derde")


def test_the_latest_note_day_of_each_dossier_is_opened_from_the_sealed_notes(world: World) -> None:
    """What the dashboard asks to tell a quiet dossier: the latest day, not the latest note's day."""
    other = ask_for_help(active_participant(world.organisation, name="Els Bakker"))
    today = timezone.localdate()
    days = {world.dossier: [today - dt.timedelta(days=3), today - dt.timedelta(days=40)], other: [today]}
    for dossier, written_on in days.items():
        for day in written_on:
            queued = casenotes.add_note(dossier, kind="session", text="Gesprek.", user=world.anna)
            casenotes.take_up_queued_notes(force=True)
            note = ProgressNote.objects.get(pk=queued.id)
            note.written_on = day
            note.save(update_fields=["written_on"])

    latest = casenotes.last_note_days([world.dossier, other])

    assert latest == {world.dossier.number: today - dt.timedelta(days=3), other.number: today}
    assert [note.written_on for note in casenotes.notes_of(world.dossier)] == days[world.dossier]


# --- trajectories ---------------------------------------------------------------------------------------


def test_a_trajectory_with_sessions_and_an_end_shows_its_measured_outcome(
    organisation: Organisation, client: Client
) -> None:
    anna = signed_casemanager("cm-anna", organisation)
    participant = active_participant(organisation)
    monday = timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday())
    # Four weeks of 2 before the start (10 weeks ago), four weeks of 4 after the end (5 weeks ago).
    add_weeks(
        participant,
        [2, 2, 2, 2, None, None, None, None, None, 4, 4, 4, 4],
        last=monday - dt.timedelta(days=7),
    )
    dossier = ask_for_help(participant)
    start = monday - dt.timedelta(weeks=9)
    end = monday - dt.timedelta(weeks=5)
    as_user(client, anna)
    url = dossier_url(dossier.number, "casefiles:start-trajectory")

    future = client.post(url, {"trajectory-kind": "coaching", "trajectory-started_on": "2999-01-01"})
    assert future.status_code == 400 and not Trajectory.objects.exists()
    unknown = client.post(url, {"trajectory-kind": "astrology", "trajectory-started_on": start.isoformat()})
    assert unknown.status_code == 400 and not Trajectory.objects.exists()
    assert (
        client.post(
            url, {"trajectory-kind": "coaching", "trajectory-started_on": start.isoformat()}
        ).status_code
        == 302
    )
    trajectory = Trajectory.objects.get()
    prefix = f"session-{trajectory.pk}"
    session_url = reverse(
        "casefiles:add-session", kwargs={"number": dossier.number, "trajectory_id": trajectory.pk}
    )
    client.post(session_url, {f"{prefix}-planned_on": (start + dt.timedelta(days=7)).isoformat()})
    session = TrajectorySession.objects.get()
    # Not held yet: the page offers marking it held, with the session's own form.
    assert f'name="held-{session.pk}-held_on"' in client.get(dossier_url(dossier.number)).content.decode()
    held_url = reverse("casefiles:session-held", kwargs={"number": dossier.number, "session_id": session.pk})
    held = {f"held-{session.pk}-held_on": (start + dt.timedelta(days=8)).isoformat()}
    assert client.post(held_url, held).status_code == 302
    assert client.post(held_url, held).status_code == 302  # a double click changes nothing more
    end_url = reverse(
        "casefiles:end-trajectory", kwargs={"number": dossier.number, "trajectory_id": trajectory.pk}
    )
    before_start = client.post(
        end_url, {f"end-{trajectory.pk}-ended_on": (start - dt.timedelta(days=1)).isoformat()}
    )
    assert before_start.status_code == 400
    assert client.post(end_url, {f"end-{trajectory.pk}-ended_on": end.isoformat()}).status_code == 302

    page = client.get(dossier_url(dossier.number)).content.decode()
    assert "Improved" in page and "1 of 1 session held" in page
    changes = [a for a in actions_logged(dossier.number) if a == AccessLogEntry.Action.CHANGE_TRAJECTORY]
    assert len(changes) == 4  # started, session added, held (once), ended


# --- closing --------------------------------------------------------------------------------------------


def test_a_closed_dossier_is_read_only(world: World, client: Client) -> None:
    as_user(client, world.anna)
    close_url = dossier_url(world.dossier.number, "casefiles:close")
    refused = client.post(close_url, {"close-text": "Afgesloten met Jan."})
    assert refused.status_code == 400 and Dossier.objects.get(pk=world.dossier.pk).is_open

    assert client.post(close_url, {"close-text": "Traject afgerond, deelnemer tevreden."}).status_code == 302

    closed = Dossier.objects.get(pk=world.dossier.pk)
    assert not closed.is_open and closed.closed_on == timezone.localdate()
    page = client.get(dossier_url(world.dossier.number)).content.decode()
    assert "read only" in page and "Add a note" not in page
    assert post_note(client, world.dossier.number, "nog iets").status_code == 400  # type: ignore[attr-defined]
    assert [note.kind for note in casenotes.notes_of(world.dossier)] == ["closing"]
    assert AccessLogEntry.Action.CLOSE in actions_logged(world.dossier.number)


# --- deputies --------------------------------------------------------------------------------------------


def test_a_deputy_opens_the_dossier_during_the_absence_only_and_the_regular_casemanager_sees_it(
    world: World, client: Client
) -> None:
    today = timezone.localdate()
    number = world.dossier.number
    absence = Deputy.objects.create(
        casemanager_id=world.anna.pk,
        deputy_id=world.bert.pk,
        starts_on=today - dt.timedelta(days=1),
        ends_on=today,
    )
    as_user(client, world.bert)
    assert number in client.get(reverse("casefiles:dashboard")).content.decode()
    assert client.get(dossier_url(number)).status_code == 200
    assert actions_logged(number) == [AccessLogEntry.Action.DEPUTY_VIEW]

    Deputy.objects.filter(pk=absence.pk).update(ends_on=today - dt.timedelta(days=1))
    assert client.get(dossier_url(number)).status_code == 404
    Deputy.objects.filter(pk=absence.pk).update(
        starts_on=today + dt.timedelta(days=1), ends_on=today + dt.timedelta(days=3)
    )
    assert client.get(dossier_url(number)).status_code == 404

    client.logout()
    page = as_user(client, world.anna).get(dossier_url(number)).content.decode()
    looks = page.split("Looks and acts by others", 1)[1]
    assert "cm-bert" in looks and "viewed as deputy" in looks


# --- assignment ----------------------------------------------------------------------------------------


def test_a_new_dossier_goes_to_the_linked_casemanager_with_the_fewest_open_dossiers(
    world: World,
) -> None:
    # Anna has one open dossier, Bert none: the next goes to Bert, the one after to either.
    second = ask_for_help(active_participant(world.organisation))
    assert second.casemanager_id == world.bert.pk
    third = ask_for_help(active_participant(world.organisation))
    assert third.casemanager_id in {world.anna.pk, world.bert.pk}


def test_a_dossier_waits_until_a_casemanager_is_linked_and_the_hourly_job_gives_it_out(
    organisation: Organisation,
) -> None:
    from casefiles.tasks import assign_waiting_dossiers

    dossier = ask_for_help(active_participant(organisation))
    assert dossier.casemanager_id is None
    assert assign_waiting_dossiers() == 0

    anna = signed_casemanager("cm-anna", organisation)

    assert assign_waiting_dossiers() == 1
    assert assign_waiting_dossiers() == 0
    assert Dossier.objects.get(pk=dossier.pk).casemanager_id == anna.pk


def test_a_dossier_a_stop_closed_while_it_waited_is_given_out_silently_and_shown_to_nobody(
    organisation: Organisation, client: Client, mailoutbox: list[object]
) -> None:
    """Given out like the others (left without a casemanager, it would mark a stop in a dump), but news to
    nobody: no e-mail, not on the dashboard, not to be opened, and no load in the least busy count."""
    from casefiles import assignment
    from preventicons import messaging

    jan, piet = (active_participant(organisation, name=name) for name in ("Jan de Vries", "Piet Jansen"))
    stopped = [ask_for_help(jan), ask_for_help(piet)]
    stop_participation(participant=jan)
    stop_participation(participant=piet)
    close_stopped_dossiers()
    anna = signed_casemanager("cm-anna", organisation)
    anna.email = "anna@arbodienst.example"
    anna.save(update_fields=["email"])

    assert assignment.assign_waiting_dossiers() == 2
    assert assignment.assign_waiting_dossiers() == 0
    for dossier in Dossier.objects.filter(pk__in=[d.pk for d in stopped]):
        assert dossier.casemanager_id == anna.pk and not dossier.is_open
    messaging.send_due_messages(limit=10)
    assert [m for m in mailoutbox if "anna@arbodienst.example" in m.to] == []  # type: ignore[attr-defined]
    page = as_user(client, anna)
    dashboard = page.get(reverse("casefiles:dashboard")).content.decode()
    for dossier in stopped:
        assert dossier.number not in dashboard
        assert page.get(dossier_url(dossier.number)).status_code == 404
    # Anna holds two closed dossiers, Bert one open: the next goes to Anna.
    bert = signed_casemanager("cm-bert", organisation)
    given = ask_for_help(active_participant(organisation))
    Dossier.objects.filter(pk=given.pk).update(casemanager_id=bert.pk)
    assert assignment.least_busy_casemanager(organisation.pk) == anna.pk


def test_a_casemanager_unlinked_from_the_organisation_can_no_longer_open_its_dossiers(
    world: World, client: Client
) -> None:
    casemanagers.unlink_casemanager(organisation=world.organisation, casemanager=world.anna)

    assert as_user(client, world.anna).get(dossier_url(world.dossier.number)).status_code == 404


def test_only_the_help_request_of_an_active_participant_opens_a_dossier(organisation: Organisation) -> None:
    signed_casemanager("cm-anna", organisation)
    participant: Participant = active_participant(organisation)
    add_weeks(participant, [3])

    dossier = ask_for_help(participant)

    assert dossier.organisation_id == organisation.pk
    assert dossier.participant_ref == str(participant.pk)
    assert dossier.awaiting_contact_since == timezone.localdate()
    assert numbers.is_valid_body(dossier.number[2:])


# --- the participant asks for another casemanager ---------------------------------------------------------


def test_the_participant_asks_for_another_casemanager_from_the_account_and_the_batch_hands_it_over(
    world: World, client: Client
) -> None:
    from participants.session import bind_participant_session
    from scores import wellbeing

    session = client.session
    bind_participant_session(session, world.participant)
    session.save()
    account = client.get(reverse("participants:account")).content.decode()
    assert "Ask for another casemanager" in account

    assert client.post(reverse("participants:account-casemanager")).status_code == 400  # not the button
    response = client.post(reverse("participants:account-casemanager"), {"another": "1"})
    assert response.status_code == 302
    client.post(reverse("participants:account-casemanager"), {"another": "1"})  # a double click: one request
    # Nothing changes at the click: the batch takes it up with everyone else's requests.
    assert Dossier.objects.get(pk=world.dossier.pk).casemanager_id == world.anna.pk

    assert wellbeing.take_up_help_requests().casemanager_changes == 1
    assert Dossier.objects.get(pk=world.dossier.pk).casemanager_id == world.bert.pk
    entry = AccessLogEntry.objects.get(action=AccessLogEntry.Action.REASSIGN)
    assert (entry.staff_user_id, entry.dossier_number) == (0, world.dossier.number)
    assert wellbeing.take_up_help_requests().casemanager_changes == 0


def test_without_another_casemanager_the_dossier_stays(organisation: Organisation) -> None:
    from participants import requestqueue
    from scores import wellbeing

    anna = signed_casemanager("cm-anna", organisation)
    participant = active_participant(organisation)
    dossier = ask_for_help(participant)
    requestqueue.queue_casemanager_change(participant=participant)

    wellbeing.take_up_help_requests()

    assert Dossier.objects.get(pk=dossier.pk).casemanager_id == anna.pk
    assert not AccessLogEntry.objects.filter(action=AccessLogEntry.Action.REASSIGN).exists()


def test_someone_who_never_asked_for_contact_is_not_offered_another_casemanager(
    organisation: Organisation, client: Client
) -> None:
    from participants.session import bind_participant_session

    session = client.session
    bind_participant_session(session, active_participant(organisation))
    session.save()

    assert "Ask for another casemanager" not in client.get(reverse("participants:account")).content.decode()


def test_the_admin_reassigns_a_dossier_to_a_casemanager_serving_its_organisation_only(
    world: World, client: Client, platform_admin: object, other_organisation: Organisation
) -> None:
    outsider = signed_casemanager("cm-carla", other_organisation)
    as_user(client, platform_admin)
    url = reverse("admin:casefiles_dossier_change", args=[world.dossier.pk])
    page = client.get(url).content.decode()
    assert world.dossier.number in page or "cm-bert" in page

    refused = client.post(url, {"casemanager": str(outsider.pk)})
    assert refused.status_code == 200 and "does not serve the dossier" in refused.content.decode()
    assert Dossier.objects.get(pk=world.dossier.pk).casemanager_id == world.anna.pk

    client.post(url, {"casemanager": str(world.bert.pk)})
    assert Dossier.objects.get(pk=world.dossier.pk).casemanager_id == world.bert.pk
    entry = AccessLogEntry.objects.get(action=AccessLogEntry.Action.REASSIGN)
    assert entry.staff_username == "admin" and entry.dossier_number == world.dossier.number
    assert entry.detail == f"from staff member {world.anna.pk} to staff member {world.bert.pk}"


def test_the_admin_lists_open_or_closed_dossiers_though_the_state_is_sealed(
    world: World, client: Client, platform_admin: object, organisation: Organisation
) -> None:
    from casefiles import operations

    closed = ask_for_help(active_participant(organisation, name="Els Bakker"))
    operations.close_with_note(closed, text="Afgerond.", user=world.anna)
    as_user(client, platform_admin)
    url = reverse("admin:casefiles_dossier_changelist")

    def listed(**filters: str) -> set[str]:
        response = client.get(url, filters)
        assert response.status_code == 200
        return {number for number in (world.dossier.number, closed.number) if number in response.text}

    assert listed() == {world.dossier.number, closed.number}
    assert listed(open="1") == {world.dossier.number}
    assert listed(open="0") == {closed.number}


# --- retention ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True], ids=["queued", "written"])
def test_retention_deletes_notes_by_kind_and_unlinks_closed_dossiers_after_their_periods(
    world: World, settings: object, batch_first: bool
) -> None:
    from casefiles import notes as casenotes
    from casefiles import operations
    from casefiles.retention import first_night, run_retention

    settings.NOTE_RETENTION_DAYS = {"intake": 10, "session": 100, "evaluation": 100, "closing": 100}  # type: ignore[attr-defined]
    settings.DOSSIER_UNLINK_AFTER_CLOSE_DAYS = 100  # type: ignore[attr-defined]
    casenotes.add_note(world.dossier, kind="intake", text="intake", user=world.anna)
    casenotes.add_note(world.dossier, kind="session", text="sessie", user=world.anna)
    today = timezone.localdate()
    # An open dossier keeps everything, however old.
    assert run_retention(today=today + dt.timedelta(days=1000)).notes_deleted == 0

    operations.close_with_note(world.dossier, text="afgerond", user=world.anna)
    if batch_first:  # the notes in the notes store; else still queued, which retention deletes alike
        casenotes.take_up_queued_notes(force=True)

    # Carried out a month at a time: on the first night of the month its closing month is past the term.
    intake_night = first_night(today, days=10)
    assert run_retention(today=intake_night - dt.timedelta(days=1)).notes_deleted == 0
    assert run_retention(today=intake_night).notes_deleted == 1  # the intake note
    assert run_retention(today=intake_night + dt.timedelta(days=3)).notes_deleted == 0
    assert run_retention(today=first_night(today, days=100) - dt.timedelta(days=1)).dossiers_unlinked == 0
    later = run_retention(today=first_night(today, days=100))
    assert (later.notes_deleted, later.dossiers_unlinked) == (2, 1)
    unlinked = Dossier.objects.get(pk=world.dossier.pk)
    assert (
        unlinked.pseudonym is None and unlinked.participant_ref is None and unlinked.pseudonym_index is None
    )
    assert run_retention(today=today + dt.timedelta(days=400)).dossiers_unlinked == 0


def test_every_note_kind_has_a_retention_period() -> None:
    from django.conf import settings

    assert set(settings.NOTE_RETENTION_DAYS) == set(ProgressNote.Kind.values)


def test_the_platform_admin_finds_every_look_at_one_dossier_in_the_access_log(
    world: World, client: Client, platform_admin: object
) -> None:
    as_user(client, world.anna).get(dossier_url(world.dossier.number))
    client.post(dossier_url(world.dossier.number, "casefiles:reveal-contact"))
    client.logout()
    as_user(client, platform_admin)
    url = reverse("admin:casefiles_accesslogentry_changelist")

    found = client.get(url, {"q": world.dossier.number}).content.decode()
    prefix = client.get(url, {"q": world.dossier.number[:5]}).content.decode()

    assert found.count("cm-anna") == 2
    assert "cm-anna" not in prefix  # exact numbers only: no "does a number start with ..." oracle


def test_the_platform_admin_sets_a_deputy_for_an_absence_and_refuses_a_period_out_of_order(
    world: World, client: Client, platform_admin: object
) -> None:
    as_user(client, platform_admin)
    url = reverse("admin:casefiles_deputy_add")
    today = timezone.localdate()
    period = {"casemanager_id": world.anna.pk, "deputy_id": world.bert.pk}

    backwards = client.post(
        url, {**period, "starts_on": today.isoformat(), "ends_on": (today - dt.timedelta(days=1)).isoformat()}
    )
    themselves = client.post(
        url,
        {**period, "deputy_id": world.anna.pk, "starts_on": today.isoformat(), "ends_on": today.isoformat()},
    )
    assert backwards.status_code == themselves.status_code == 200 and not Deputy.objects.exists()

    client.post(url, {**period, "starts_on": today.isoformat(), "ends_on": today.isoformat()})

    assert Deputy.objects.get().deputy_id == world.bert.pk
    client.logout()
    assert as_user(client, world.bert).get(dossier_url(world.dossier.number)).status_code == 200


def test_the_casemanager_is_told_by_e_mail_once_naming_no_one_and_no_dossier(
    organisation: Organisation, mailoutbox: list[object]
) -> None:
    from preventicons import messaging

    anna = signed_casemanager("cm-anna", organisation)
    anna.email = "anna@arbodienst.example"
    anna.save(update_fields=["email"])
    participant = active_participant(organisation, name="Jan de Vries")
    dossier = ask_for_help(participant)
    ask_for_help(participant)  # asked again the same day: the same request, told once
    messaging.send_due_messages(limit=10)

    sent = [m for m in mailoutbox if "anna@arbodienst.example" in m.to]  # type: ignore[attr-defined]
    assert len(sent) == 1
    text = sent[0].subject + sent[0].body  # type: ignore[attr-defined]
    assert "/dossiers/" in text
    for secret in (dossier.number, "Jan", "Vries", participant.email or "-"):
        assert secret not in text
