"""Submitting the weekly smiley: one score a week, link pages that reveal nothing, Redis down is no excuse."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import IntegrityError, connections, transaction
from django.test import Client

from participants.models import ConsentRecord, Organisation, Participant
from scores import rounds, submission, wellbeing
from scores.models import Score
from scores.rounds import render_weekly_message
from scores.sealing import week_pseudonym
from scores.views import TAPPED_MARK_MAX_AGE
from tests.conftest import ALL_DATABASES
from tests.scores.people import (
    LINK_HOLDER_STATES,
    add_score,
    make_link,
    make_participant,
    person_in_state,
    recorded_values,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WEEK = dt.date(2026, 11, 16)
TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=AMSTERDAM)
NEXT_MONDAY = dt.datetime(2026, 11, 23, 0, 0, tzinfo=AMSTERDAM)
# The CSRF token, the thanks URL's mark, and the mark the thanks page's language links keep (leanpages).
VARYING = re.compile(
    r'(?<=name="csrfmiddlewaretoken" value=")[^"]+'
    r'|(?<=/thanks/)\?tapped=[^"&]+'
    r'|(?<=href="\?)tapped=[^"&]+&amp;'
)


pytestmark = pytest.mark.usefixtures("empty_cache")


def _page(response: Any) -> str:
    """The page's HTML without what varies per response rather than per content (see VARYING)."""
    return VARYING.sub("", response.content.decode())


@pytest.fixture
def link_token(organisation: Organisation) -> tuple[Participant, str]:
    participant = make_participant(organisation)
    _link, token = make_link(participant, week=WEEK)
    return participant, token


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_page_shows_five_labelled_smileys_in_one_form(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    _participant, token = link_token

    response = client.get(f"/w/{token}/", HTTP_ACCEPT_LANGUAGE="en")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<form") == 1  # the smileys; the language switch is a link here (leanpages)
    smiley_form = html[html.index('<form method="post" class="week-form">') :].split("</form>", 1)[0]
    assert len(re.findall(r'<button type="submit" name="value" value="[1-5]"', smiley_form)) == 5
    assert "csrfmiddlewaretoken" not in smiley_form  # the link's token is the authority, not a cookie
    for label in ("Very bad", "Bad", "So-so", "Good", "Very good"):
        assert f"<span>{label}</span>" in html
    assert "<script" not in html
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_a_submission_records_one_score_for_the_links_week(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    participant, token = link_token

    response = client.post(f"/w/{token}/", {"value": "4"})

    assert response.status_code == 303  # Post/Redirect/Get: reloading the thanks cannot post again
    assert response["Location"].startswith(f"/w/{token}/thanks/?tapped=")
    thanks = client.get(response["Location"])
    assert thanks.status_code == 200
    assert 'id="thanks"' in thanks.content.decode()
    score = Score.objects.get()
    assert (score.week, score.value, score.organisation_id, score.department, score.pseudonym) == (
        WEEK,
        4,
        participant.organisation_id,
        str(participant.department_id),
        week_pseudonym(participant.pseudonym or "", WEEK),
    )
    # Sealed in the row: the column holds ciphertext, never the department's id.
    raw = str(Score.objects.values_list("department", flat=True).get())
    assert raw.startswith("v1.") and str(participant.department_id) not in raw.split(".")


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_a_second_submission_keeps_the_first_and_thanks_alike(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    _participant, token = link_token
    first = client.post(f"/w/{token}/", {"value": "4"})

    second = client.post(f"/w/{token}/", {"value": "5"})

    assert first.status_code == second.status_code == 303
    # The same redirect for both (each carries the value just tapped, sealed): whoever holds the link cannot
    # tell from the answer whether the week was already answered.
    assert VARYING.sub("", first["Location"]) == VARYING.sub("", second["Location"]) == f"/w/{token}/thanks/"
    assert _page(client.get(first["Location"])) == _page(client.get(second["Location"]))
    assert recorded_values() == [4]
    # The link keeps working all week: the page still opens, and still shows the smileys.
    assert 'class="week-form"' in _page(client.get(f"/w/{token}/"))


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_a_submission_needs_no_cookie(link_token: tuple[Participant, str]) -> None:
    _participant, token = link_token
    # A browser or in-app view that refuses cookies, with Django's CSRF check enforced as in production.
    cookieless = Client(enforce_csrf_checks=True)

    response = cookieless.post(f"/w/{token}/", {"value": "3"})

    assert response.status_code == 303
    assert Score.objects.get().value == 3


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_reloading_the_thanks_records_nothing_more(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    _participant, token = link_token
    thanks = client.post(f"/w/{token}/", {"value": "2"}, follow=True)

    again = client.get(thanks.redirect_chain[-1][0])

    assert again.status_code == 200
    assert recorded_values() == [2]


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submissions_with_one_link_record_one_score(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    week = dt.date.today() - dt.timedelta(days=dt.date.today().weekday())
    _link, token = make_link(participant, week=week)
    barrier = threading.Barrier(2)
    outcomes: list[int] = []
    errors: list[BaseException] = []

    def tap(value: int) -> None:
        try:
            barrier.wait(timeout=10)
            response = Client().post(f"/w/{token}/", {"value": str(value)})
            outcomes.append(response.status_code)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tap, args=(value,)) for value in (1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert outcomes == [303, 303]
    assert Score.objects.count() == 1


@pytest.mark.django_db
def test_last_weeks_link_after_the_week_closed_explains_itself_and_records_nothing(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    _participant, token = link_token

    unknown = "A" * 43
    with time_machine.travel(NEXT_MONDAY, tick=False):
        answers = {
            path: (client.get(path.format(token)), Client().get(path.format(unknown)))
            for path in ("/w/{}/", "/w/{}/thanks/", "/w/{}/help/")
        }
        answers["tap"] = (
            client.post(f"/w/{token}/", {"value": "3"}),
            Client().post(f"/w/{unknown}/", {"value": "3"}),
        )
        answers["help"] = (
            client.post(f"/w/{token}/help/", {"consent": "yes", "channel": "phone"}),
            Client().post(f"/w/{unknown}/help/", {"consent": "yes", "channel": "phone"}),
        )

    # An earlier week's token answers byte for byte like one we never made (apart from the page's own path
    # and the CSRF mask of the language switch): an old message tells nothing.
    for name, (old, never) in answers.items():
        assert old.status_code == never.status_code == 404, name
        assert _page(old).replace(token, "T") == _page(never).replace(unknown, "T"), name
        assert dict(old.items()) == dict(never.items()), name
    assert "/me/link/" in answers["tap"][0].content.decode()
    assert not Score.objects.exists()


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-1], lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: t + "x"]
)
def test_a_tampered_or_truncated_link_explains_itself_and_records_nothing(
    client: Client, link_token: tuple[Participant, str], mangle: object
) -> None:
    _participant, token = link_token

    response = client.post(f"/w/{mangle(token)}/", {"value": "3"})  # type: ignore[operator]

    assert response.status_code == 404
    assert 'id="link-problem"' in response.content.decode()
    assert not Score.objects.exists()


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_a_stopped_participants_tap_is_thanked_and_recorded_nowhere(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    participant, token = link_token
    Participant.objects.filter(pk=participant.pk).set_state(status=Participant.Status.STOPPED, pseudonym=None)

    response = client.post(f"/w/{token}/", {"value": "3"})

    assert response.status_code == 303
    assert VARYING.sub("", response["Location"]) == f"/w/{token}/thanks/"
    assert 'id="thanks"' in client.get(response["Location"]).content.decode()
    assert not Score.objects.exists()


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
@pytest.mark.parametrize("value", ["0", "6", "", "three", "2.5"])
def test_a_value_outside_one_to_five_is_refused(
    client: Client, link_token: tuple[Participant, str], value: str
) -> None:
    _participant, token = link_token

    response = client.post(f"/w/{token}/", {"value": value})

    assert response.status_code == 400
    assert not Score.objects.exists()


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_unknown_links_are_rate_limited_per_client_but_known_ones_are_not_counted(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    _participant, token = link_token
    for _ in range(5):
        assert client.get(f"/w/{token}/").status_code == 200
    for _ in range(django_settings.UNKNOWN_LINKS_PER_HOUR):
        assert client.get("/w/" + "x" * 43 + "/").status_code == 404

    assert client.get("/w/" + "y" * 43 + "/").status_code == 429
    assert client.post("/w/" + "y" * 43 + "/", {"value": "3"}).status_code == 429
    assert client.get("/w/" + "y" * 43 + "/thanks/").status_code == 429
    assert Client(REMOTE_ADDR="192.0.2.7").get("/w/" + "y" * 43 + "/").status_code == 404
    # Only unknown links are refused: a colleague behind the same office address still takes part.
    assert client.get(f"/w/{token}/").status_code == 200
    assert client.post(f"/w/{token}/", {"value": "3"}).status_code == 303
    assert Score.objects.get().value == 3


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_a_submission_while_redis_is_down_is_still_recorded(
    client: Client, link_token: tuple[Participant, str], settings: object
) -> None:
    _participant, token = link_token
    settings.CACHES = {  # type: ignore[attr-defined]
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }

    # The limiter fails closed (preventicons.ratelimit): a link we never made is refused, not looked up...
    assert client.get("/w/" + "x" * 43 + "/").status_code == 429
    # ...while a link of the open week never asks the limiter, and records.
    response = client.post(f"/w/{token}/", {"value": "1"}, follow=True)

    assert response.status_code == 200
    assert 'id="thanks"' in response.content.decode()
    assert Score.objects.get().value == 1


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_operation_refuses_a_closed_week(link_token: tuple[Participant, str]) -> None:
    _participant, token = link_token

    with time_machine.travel(NEXT_MONDAY, tick=False), pytest.raises(submission.SubmissionRefused) as refused:
        submission.submit_score(token=token, value=3)

    assert refused.value.state == submission.LinkState.EXPIRED
    assert not Score.objects.exists()


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_thanks_offers_contact_to_the_tap_that_recorded_a_hard_week(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    _participant, token = link_token

    low = client.post(f"/w/{token}/", {"value": "1"}, follow=True).content.decode()

    assert 'id="help-offer"' in low
    assert f'href="/w/{token}/help/"' in low
    assert "/me/link/" in low and "/w/stop/" in low


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_thanks_after_a_good_week_has_only_the_quiet_link_to_contact(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    _participant, token = link_token

    good = client.post(f"/w/{token}/", {"value": "5"}, follow=True).content.decode()

    assert 'id="help-offer"' not in good
    assert f'href="/w/{token}/help/"' in good  # the same link everyone has


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_someone_else_holding_the_link_cannot_see_how_the_week_went(
    client: Client, link_token: tuple[Participant, str], organisation: Organisation
) -> None:
    # The participant taps "very bad"; whoever else opens the link or its thanks page (the employer's IT
    # reading the mailbox, a mail scanner, a forwarded message) sees what anybody would.
    _participant, token = link_token
    recorded = client.post(f"/w/{token}/", {"value": "1"})
    other = make_participant(organisation)
    _other_link, other_token = make_link(other, week=WEEK)
    stranger = Client()

    plain_thanks = _page(stranger.get(f"/w/{token}/thanks/"))
    retap = _page(stranger.post(f"/w/{token}/", {"value": "4"}, follow=True))
    moved_mark = recorded["Location"].replace(token, other_token)
    on_another_link = _page(stranger.get(moved_mark))
    page = _page(stranger.get(f"/w/{token}/"))

    assert 'id="help-offer"' not in plain_thanks
    assert 'id="help-offer"' not in retap
    assert 'id="help-offer"' not in on_another_link
    assert plain_thanks == retap
    assert 'class="week-form"' in page and "seems hard" not in page


@pytest.mark.django_db
def test_the_mark_of_a_recording_tap_expires(client: Client, link_token: tuple[Participant, str]) -> None:
    _participant, token = link_token
    with time_machine.travel(TUESDAY, tick=False):
        recorded = client.post(f"/w/{token}/", {"value": "1"})
        assert 'id="help-offer"' in client.get(recorded["Location"]).content.decode()

    later = TUESDAY + dt.timedelta(seconds=TAPPED_MARK_MAX_AGE + 1)
    with time_machine.travel(later, tick=False):
        assert 'id="help-offer"' not in client.get(recorded["Location"]).content.decode()


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_a_tampered_mark_offers_nothing(client: Client, link_token: tuple[Participant, str]) -> None:
    _participant, token = link_token
    recorded = client.post(f"/w/{token}/", {"value": "1"})
    location = recorded["Location"]

    tampered = client.get(location[:-2] + ("AA" if not location.endswith("AA") else "BB"))
    forged = client.get(f"/w/{token}/thanks/?tapped=1")

    assert tampered.status_code == forged.status_code == 200
    assert 'id="help-offer"' not in tampered.content.decode()
    assert 'id="help-offer"' not in forged.content.decode()


@pytest.mark.django_db
def test_a_tap_just_before_the_week_closed_is_still_thanked(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    _participant, token = link_token
    with time_machine.travel(NEXT_MONDAY - dt.timedelta(seconds=1), tick=False):
        recorded = client.post(f"/w/{token}/", {"value": "1"})

    with time_machine.travel(NEXT_MONDAY + dt.timedelta(seconds=1), tick=False):
        thanks = client.get(recorded["Location"])
        unmarked = client.get(f"/w/{token}/thanks/")

    assert thanks.status_code == 200
    assert 'id="help-offer"' in thanks.content.decode()
    # Without the mark, a closed week's thanks page answers like an unknown link, as its smiley page does.
    assert unmarked.status_code == 404 and 'id="link-problem"' in unmarked.content.decode()


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_thanks_page_of_a_stopped_link_reads_like_an_active_ones(
    client: Client, link_token: tuple[Participant, str]
) -> None:
    participant, token = link_token

    unknown = client.get("/w/" + "x" * 43 + "/thanks/")
    active = client.get(f"/w/{token}/thanks/")
    Participant.objects.filter(pk=participant.pk).set_state(status=Participant.Status.STOPPED, pseudonym=None)
    stopped = client.get(f"/w/{token}/thanks/")

    assert unknown.status_code == 404 and 'id="link-problem"' in unknown.content.decode()
    assert stopped.status_code == active.status_code == 200
    assert _page(stopped) == _page(active)


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_smiley_page_reads_the_same_after_a_hard_and_a_good_week(
    client: Client, organisation: Organisation
) -> None:
    # A mail scanner fetches and keeps this page; its content must not depend on any score.
    last_week = WEEK - dt.timedelta(weeks=1)
    pages = []
    for value in (1, 5):
        participant = make_participant(organisation)
        add_score(participant, week=last_week, value=value)
        _link, token = make_link(participant, week=WEEK)
        page = _page(client.get(f"/w/{token}/"))
        assert f'href="/w/{token}/help/"' in page  # everyone is offered contact, quietly
        pages.append(page.replace(token, "TOKEN"))

    assert pages[0] == pages[1]


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_weekly_message_reads_the_same_after_a_hard_and_a_good_week(organisation: Organisation) -> None:
    # The message may land in a mailbox the employer's IT can read: it must not depend on any score.
    last_week = WEEK - dt.timedelta(weeks=1)
    bodies = []
    for value in (1, 5):
        participant = make_participant(organisation)
        add_score(participant, week=last_week, value=value)
        link, _token = make_link(participant, week=WEEK)
        for channel, chosen in (("email", "work_email"), ("sms", "sms")):
            Participant.objects.filter(pk=participant.pk).set_state(weekly_channel=chosen)
            rendered = render_weekly_message(str(link.pk), channel)
            assert rendered is not None
            bodies.append((channel, rendered.body.replace(rounds.link_token(link.pk), "TOKEN")))

    assert "/help/" not in "".join(body for _channel, body in bodies)
    # Everyone's e-mail offers contact alike; the link leads to it.
    assert "talk to someone" in bodies[0][1]

    assert bodies[0] == bodies[2] and bodies[1] == bodies[3]


# --- every link page reads the same whatever the person did -------------------------------------------


def _walk(token: str) -> list[tuple[int, str, str]]:
    """Every page a weekly link opens, as a link holder sees them, with the token and nonces normalised."""
    visitor = Client()

    def seen(response: Any) -> tuple[int, str, str]:
        location = VARYING.sub("", response.get("Location", "")).replace(token, "TOKEN")
        return response.status_code, location, _page(response).replace(token, "TOKEN")

    tap = visitor.post(f"/w/{token}/", {"value": "3"})
    return [
        seen(visitor.get(f"/w/{token}/")),
        seen(tap),
        seen(visitor.get(tap["Location"])),
        seen(visitor.get(f"/w/{token}/thanks/")),
        seen(visitor.post(f"/w/{token}/", {"value": "3"})),
        seen(visitor.post(f"/w/{token}/", {"value": "9"})),
        seen(visitor.get(f"/w/{token}/help/")),
        seen(visitor.post(f"/w/{token}/help/", {"consent": "yes"})),
        seen(visitor.post(f"/w/{token}/help/", {"consent": "yes", "channel": "phone"})),
    ]


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(TUESDAY, tick=False)
@pytest.mark.parametrize("answered", [False, True], ids=["unanswered", "answered"])
@pytest.mark.parametrize("status", LINK_HOLDER_STATES)
def test_every_weekly_link_page_reads_the_same_whatever_the_person_did(
    organisation: Organisation, status: str, answered: bool
) -> None:
    # The employer reads the mailbox and opens the link, taps, asks for help: every answer must be the one
    # an active participant with an unanswered week gets, so it learns nothing about this person.
    reference = make_participant(organisation)
    _reference_link, reference_token = make_link(reference, week=WEEK)
    person = person_in_state(organisation, status, answered_week=WEEK if answered else None)
    _link, token = make_link(person, week=WEEK)
    scores_before = Score.objects.count()

    assert _walk(token) == _walk(reference_token)

    # Recorded only where the person takes part: the reference's tap, and this person's if active. (Someone
    # unlisted is still active until the anonymisation: their request for help still counts.)
    takes_part = status in ("active", "paused")
    assert Score.objects.count() - scores_before == 1 + (takes_part and not answered)
    may_ask = status in ("active", "paused", "unlisted")
    # Requests are queued and taken up by the next batch (scores.wellbeing), not written beside the tap.
    wellbeing.take_up_help_requests()
    assert len(ConsentRecord.objects.opened(ConsentRecord.Kind.CONTACT)) == 1 + may_ask


# --- the stored score (operation level) -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("value", [0, 6, -1, 2.5, True, "7"])
def test_the_range_check_left_the_database_for_the_code(organisation: Organisation, value: Any) -> None:
    # The column holds ciphertext, so the database can no longer check 1..5: the code refuses on every path.
    pseudonym = make_participant(organisation).pseudonym or ""
    with pytest.raises(ValueError, match="1 to 5"):
        submission.record_score(
            pseudonym=pseudonym, week=WEEK, value=value, organisation_id=organisation.pk, department_id=None
        )
    with pytest.raises(ValueError, match="1 to 5"), transaction.atomic():
        Score(organisation=organisation, week=WEEK, pseudonym="x" * 64, value=value).save()
    assert not Score.objects.exists()


@pytest.mark.django_db
def test_the_database_refuses_a_score_value_in_clear(organisation: Organisation) -> None:
    with pytest.raises(IntegrityError), transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO scores_score (id, week, value, organisation_id, department, pseudonym) "
            "VALUES (gen_random_uuid(), %s, '3', %s, NULL, %s)",
            [WEEK, organisation.pk, "x" * 64],
        )


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_thanks_offers_help_only_from_the_value_just_tapped(
    client: Client, organisation: Organisation
) -> None:
    # Last week was a 5: tapping a 3 now (a drop of two) must not show the offer, or whoever taps a 3 on
    # someone's link learns how their last week went. The drop reaches them on their account instead.
    participant = make_participant(organisation)
    add_score(participant, week=WEEK - dt.timedelta(weeks=1), value=5)
    _link, token = make_link(participant, week=WEEK)

    after_three = client.post(f"/w/{token}/", {"value": "3"}, follow=True).content.decode()
    after_one = client.post(f"/w/{token}/", {"value": "1"}, follow=True).content.decode()

    assert 'id="help-offer"' not in after_three
    # A repeated tap offers help from its own value too (only the first value is kept as the score).
    assert 'id="help-offer"' in after_one
    assert [score.value for score in Score.objects.filter(week=WEEK)] == [3]


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_mark_shows_no_value_and_opens_on_no_other_link(
    client: Client, link_token: tuple[Participant, str], organisation: Organisation
) -> None:
    _participant, token = link_token
    _other_link, other_token = make_link(make_participant(organisation), week=WEEK)
    low = client.post(f"/w/{token}/", {"value": "1"})["Location"]
    high = client.post(f"/w/{token}/", {"value": "5"})["Location"]

    # Sealed and of one length: a proxy log of the thanks URL tells neither value nor whether it was low.
    marks = [location.split("?tapped=", 1)[1] for location in (low, high)]
    assert len(marks[0]) == len(marks[1])
    assert all(re.fullmatch(r"v1\.[\w-]+\.[\w-]{40,}", mark) for mark in marks)
    moved = client.get(low.replace(token, other_token))
    assert moved.status_code == 200 and 'id="help-offer"' not in moved.content.decode()


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_a_submission_stores_a_per_week_pseudonym_and_a_sealed_value_bound_to_it(
    link_token: tuple[Participant, str],
) -> None:
    participant, token = link_token

    submission.submit_score(token=token, value=4)

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pseudonym, value FROM scores_score")
        ((stored_pseudonym, stored_value),) = cursor.fetchall()
    assert stored_pseudonym == week_pseudonym(participant.pseudonym or "", WEEK) != participant.pseudonym
    assert stored_pseudonym != week_pseudonym(participant.pseudonym or "", WEEK + dt.timedelta(days=7))
    assert stored_value.startswith("v1.") and "4" not in stored_value.split(".")[0]
