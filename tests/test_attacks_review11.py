"""Review 11: first-order leaks to the employer (its role's pages, its mailboxes, its imports).

The employer knows its staff list, reads every mailbox it supplied, re-imports at will and types any address
into the account-link form (/me/link/). None of that may tell who takes part. These tests FAIL while an
answer it can read depends on what one person did.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from participants import account, invitations, retention
from participants.importing import import_address_list
from participants.invitations import held_by_someone_else, listed_hashes
from participants.models import AccountLink, Organisation, Participant, StaffUser, index_salt
from preventicons import messaging
from preventicons.crypto import blind_index_email, new_pseudonym
from preventicons.roles import Role
from scores.weekclose import close_week, monday_of, previous_week
from tests.conftest import ALL_DATABASES, login_verified, make_organisation, make_staff
from tests.participants.test_stop import make_active
from tests.scores import people as score_people
from tests.scores.people import add_score

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]

HEADER = "naam;e-mail;mobiel;afdeling"


def csv(*rows: str) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()


def _anna() -> Participant:
    return Participant.objects.get(email_index=blind_index_email("anna@werk.example"))


def listed_then_moved(
    organisation: Organisation, employer: StaffUser, first: bytes, moved: bytes, what: str
) -> None:
    """From nobody: the employer lists ``first``, Anna does ``what``, and the employer imports ``moved``."""
    Participant.objects.all().delete()
    import_address_list(organisation=organisation, data=first, full_list=True, by=employer)
    anna_does(what)
    import_address_list(organisation=organisation, data=moved, full_list=True, by=employer)


def anna_does(what: str) -> None:
    anna_does_to(_anna(), what)


def anna_does_to(anna: Participant, what: str) -> None:
    if what in ("active", "paused", "inactive"):
        # Joined and kept the work address the employer listed (the weekly message may go elsewhere).
        status = Participant.Status.INACTIVE if what == "inactive" else Participant.Status.ACTIVE
        Participant.objects.filter(pk=anna.pk).set_state(status=status, messages_paused=what == "paused")
    elif what == "stopped":
        account.stop_participation(participant=anna)
    elif what == "declined":
        Participant.objects.filter(pk=anna.pk).set_state(status=Participant.Status.DECLINED)
        retention.run_retention()  # the nightly run erases a decliner's contact data


WHATS = ("invited", "active", "paused", "inactive", "stopped", "declined")


def test_the_account_link_form_answers_an_old_work_address_alike_after_the_list_changed_it(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The employer lists Anna at anna@werk, then re-imports her (same mobile) at anna.nieuw@werk, and types
    her old work address into /me/link/. The old address was listed for everyone, so whether a link e-mail
    arrives in that mailbox (which the employer reads) must not depend on Anna having joined and kept it."""
    first = csv("Anna;anna@werk.example;0611111111;Care", "Bert;bert@werk.example;0622222222;IT")
    moved = csv("Anna;anna.nieuw@werk.example;0611111111;Care", "Bert;bert@werk.example;0622222222;IT")
    arrived = {}
    for what in WHATS:
        listed_then_moved(organisation, employer, first, moved, what)
        arrived[what] = account.send_account_links(request_id=str(uuid.uuid4()), email="anna@werk.example")
    assert len(set(arrived.values())) == 1, arrived


@pytest.mark.parametrize(
    ("moved_row", "probe"),
    [
        ("Anna;anna.nieuw@werk.example;0611111111;Care", {"email": "anna@werk.example"}),
        ("Anna;anna@werk.example;0633333333;Care", {"mobile": "+31611111111"}),
    ],
)
def test_a_colleague_is_refused_an_old_work_contact_alike_after_the_list_changed_it(
    organisation: Organisation, employer: StaffUser, moved_row: str, probe: dict[str, str]
) -> None:
    """Eve (the employer's stooge, listed too) enrols and corrects her details to Anna's old work address or
    number, which a re-import replaced. The refusal must not depend on Anna having joined and kept it: an
    accepted one would also send its code to the mailbox or phone the employer reads."""
    eve = "Eve;eve@werk.example;0644444444;IT"
    first = csv("Anna;anna@werk.example;0611111111;Care", eve)
    moved = csv(moved_row, eve)
    refused = {}
    for what in WHATS:
        listed_then_moved(organisation, employer, first, moved, what)
        eve_hash, _mobile = listed_hashes(
            organisation_id=organisation.pk, email="eve@werk.example", mobile=None
        )
        stooge = Participant.objects.get(listed_email_hash=eve_hash)
        refused[what] = held_by_someone_else(participant=stooge, **probe)
    assert len(set(refused.values())) == 1, refused


# --- every employer page across worlds that differ only in what one person did -----------------------

_CSRF = re.compile(r'(name="csrfmiddlewaretoken" value=|name="payload" value=|name="claim" value=)"[^"]*"')


def _employer_pages(client: Client, organisation: Organisation, employer_list: bytes) -> dict[str, object]:
    """What the employer role reads: reports (page, print, CSV), import preview and result, invitations."""
    pages: dict[str, object] = {}
    for level in ("week", "quarter", "year"):
        kwargs = {"organisation_id": organisation.pk, "level": level}
        for name in ("scores:report", "scores:report-print", "scores:report-csv"):
            response = client.get(reverse(name, kwargs=kwargs))
            pages[f"{name} {level}"] = (response.status_code, response.content.decode())
    for path in ("/staff/import/", "/staff/invitations/", "/attestations/", "/notary/feedback/", "/staff/"):
        response = client.get(path)
        pages[path] = (response.status_code, response.content.decode())
    upload = SimpleUploadedFile("list.csv", employer_list, content_type="text/csv")
    preview = client.post("/staff/import/", {"address_list": upload, "full_list": "on"})
    pages["preview"] = (preview.status_code, preview.content.decode())
    payload = re.search(r'name="payload" value="([^"]*)"', preview.content.decode())
    assert payload, preview.content.decode()[:2000]
    confirm = client.post("/staff/import/", {"step": "confirm", "payload": payload.group(1)})
    pages["confirm"] = (confirm.status_code, confirm.get("Location"))
    pages["result"] = client.get("/staff/import/").content.decode()
    sent = client.post("/staff/invitations/send/", {"next": "/staff/invitations/"}, follow=True)
    pages["send invitations"] = (sent.status_code, sent.content.decode())
    return pages


def _normalised(pages: dict[str, object], organisation: Organisation, employer: StaffUser) -> dict[str, str]:
    out = {}
    for name, page in pages.items():
        text = _CSRF.sub("", str(page)).replace(organisation.name, "ORG").replace(employer.username, "HR")
        text = text.replace(f"/{organisation.pk}/", "/PK/").replace(
            f"report-{organisation.pk}-", "report-PK-"
        )
        out[name] = re.sub(rf'(name="organisation" value=)"{organisation.pk}"', r'\1"PK"', text)
    return out


@pytest.mark.parametrize(
    "reimported",
    [(), ("Anna;anna@werk.example;0611111111;IT",), ("Anna;anna.nieuw@werk.example;0611111111;Care",)],
    ids=["same list", "anna moved to IT", "anna's address changed"],
)
@pytest.mark.parametrize("what", ["active", "paused", "inactive", "stopped", "declined"])
def test_no_employer_page_changes_with_what_one_person_did_who_did_not_answer(
    what: str, reimported: tuple[str, ...]
) -> None:
    """Two organisations alike but for Anna: invited in one, ``what`` in the other; she answers in neither.
    Ten colleagues (five in Care with her, five in IT) answer the closed week alike in both. Every employer
    page, export, import preview and result and "send invitations" must read the same, also when the
    employer's next list moves her to another department or address."""
    week = previous_week()
    rows = [f"C{n};c{n}@werk.example;06200000{n:02d};Care" for n in range(5)]
    rows += [f"I{n};i{n}@werk.example;06300000{n:02d};IT" for n in range(5)]
    employer_list = csv("Anna;anna@werk.example;0611111111;Care", *rows)
    reimported = reimported or ("Anna;anna@werk.example;0611111111;Care",)
    seen = {}
    for world in ("invited", what):
        organisation = make_organisation(f"Zorggroep {world}", "zorg")
        employer = make_staff(f"hr-{world}", Role.EMPLOYER, organisation)
        import_address_list(organisation=organisation, data=employer_list, full_list=True, by=employer)
        salt = index_salt(organisation.pk)
        for person in Participant.objects.filter(organisation=organisation):
            if person.email_index == blind_index_email("anna@werk.example", salt):
                anna = person
                continue
            Participant.objects.filter(pk=person.pk).set_state(
                status=Participant.Status.ACTIVE, pseudonym=new_pseudonym(), was_invited=True
            )
            person.refresh_from_db()
            name = person.name or ""
            add_score(person, week=week, value=1 + (int(name[1:]) + (name[0] == "I")) % 5)
        Participant.objects.filter(pk=anna.pk).set_state(was_invited=True)
        if world != "invited":
            Participant.objects.filter(pk=anna.pk).set_state(pseudonym=new_pseudonym())
            anna.refresh_from_db()
            anna_does_to(anna, world)
        close_week(organisation_id=organisation.pk, week=week)
        client = login_verified(Client(), employer)
        seen[world] = _normalised(
            _employer_pages(client, organisation, csv(*rows, *reimported)), organisation, employer
        )
    differing = {
        name: [
            line
            for line in difflib.unified_diff(
                seen["invited"][name].split("\\n"), seen[what][name].split("\\n"), lineterm=""
            )
            if line[:1] in "+-"
        ][:8]
        for name in seen["invited"]
        if seen["invited"][name] != seen[what][name]
    }
    assert not differing, differing


def test_an_address_the_list_gives_to_a_stooge_opens_the_stooges_account_whatever_its_old_holder_did(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The employer moves Anna from anna@werk to anna.nieuw@werk, then lists a stooge, Carl, at anna@werk with
    a phone it holds; Carl joins. It types anna@werk into /me/link/ and presses the link's button: a text on
    Carl's phone, or none, must not depend on whether Anna had joined and kept anna@werk as her own (the
    import then stores Carl's address without its index, and the link went to Anna's account)."""
    bert = "Bert;bert@werk.example;0622222222;IT"
    carl = "Carl;anna@werk.example;0655555555;IT"
    opens = {}
    for what in WHATS:
        Participant.objects.all().delete()
        import_address_list(
            organisation=organisation,
            data=csv("Anna;anna@werk.example;0611111111;Care", bert),
            full_list=True,
            by=employer,
        )
        anna_does(what)
        moved = "Anna;anna.nieuw@werk.example;0611111111;Care"
        import_address_list(organisation=organisation, data=csv(moved, bert), full_list=True, by=employer)
        import_address_list(
            organisation=organisation, data=csv(moved, bert, carl), full_list=True, by=employer
        )
        _email, carl_hash = listed_hashes(organisation_id=organisation.pk, email=None, mobile="+31655555555")
        stooge = Participant.objects.get(listed_mobile_hash=carl_hash)
        Participant.objects.filter(pk=stooge.pk).set_state(
            status=Participant.Status.ACTIVE, pseudonym=new_pseudonym()
        )
        AccountLink.objects.all().delete()
        assert account.send_account_links(request_id=str(uuid.uuid4()), email="anna@werk.example") == 1
        opens[what] = [link.participant_ref for link in AccountLink.objects.all()] == [str(stooge.pk)]
    assert len(set(opens.values())) == 1, opens


# --- the account link's steps, timed by whoever holds the link --------------------------------------------

_ACCOUNT_LINK = re.compile(r"/me/link/([A-Za-z0-9_-]{43})/")
_INVITATION_LINK = re.compile(r"/i/([A-Za-z0-9_-]{43})/")
FLOOR = 0.4


class FloorClock:
    """The clock EvenLinkStepsMiddleware reads, standing still while a view works: a request's time on it is
    what the floor added, so a step the floor covers answers at exactly FLOOR whatever its work took, and one
    it does not cover at 0. No wall clock is read: the tests below show which steps the floor covers for
    both kinds of link, and how much work each path does is what the floor hides (review 11 measured 1-15
    ms between them; the default floor is 400 ms)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def time_of(self, request: Callable[..., Any], *args: Any) -> float:
        """``request(*args)``'s time on this clock, which starts at 0 for it."""
        self.now = 0.0
        request(*args)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FloorClock:
    from preventicons import middleware

    settings.LINK_STEP_SECONDS = FLOOR
    fake = FloorClock()
    monkeypatch.setattr(middleware, "time", fake)
    return fake


def real_and_decoy_account_links(organisation: Organisation) -> dict[str, str]:
    """The links the employer reads in two work mailboxes after typing each address into /me/link/: Anna's
    real one (she holds her address) and Bert's decoy (he stopped). Kind -> the link's path."""
    make_active(organisation, name="Anna", email="anna@werk.example", mobile="+31611111111")
    bert = make_active(organisation, name="Bert", email="bert@werk.example", mobile="+31622222222")
    account.stop_participation(participant=bert)
    links = {}
    for kind, address in (("real", "anna@werk.example"), ("decoy", "bert@werk.example")):
        mail.outbox.clear()
        account.send_account_links(request_id=str(uuid.uuid4()), email=address)
        messaging.send_due_messages()
        found = _ACCOUNT_LINK.search(str(mail.outbox[-1].body))
        assert found
        links[kind] = f"/me/link/{found.group(1)}/"
    return links


@pytest.mark.usefixtures("empty_cache")
def test_a_link_from_the_account_link_form_answers_as_fast_for_a_real_link_as_for_a_decoy(
    organisation: Organisation, clock: FloorClock
) -> None:
    """The employer asks /me/link/ for two listed work addresses and walks each link it reads in the mailbox:
    opening it, the button that sends the SMS code, a wrong code, "send a new code". A real link (Anna holds
    her address: invited or taking part) used it up, wrote a code and queued a text; a decoy (Bert stopped)
    did nothing, and answered in half the time, which told the employer who stopped (or joined and moved
    away). Every step of both now answers at the floor."""
    times: dict[tuple[str, str], float] = {}
    for kind, link in real_and_decoy_account_links(organisation).items():
        browser = Client()
        for step, method, path, data in (
            ("open", "get", link, {}),
            ("the code page", "get", "/me/link/open/", {}),
            ("button", "post", "/me/link/open/", {}),
            ("wrong code", "post", "/me/link/code/", {"sms_code": "000000"}),
            ("new code", "post", "/me/link/code/resend/", {}),
        ):
            times[step, kind] = clock.time_of(getattr(browser, method), path, data)
    # The code page itself only shows a form (the same for both): no floor needed, none added.
    assert {step: time for (step, kind), time in times.items() if kind == "real"} == {
        step: time for (step, kind), time in times.items() if kind == "decoy"
    }, times
    assert {time for (step, _kind), time in times.items() if step != "the code page"} == {FLOOR}, times


@pytest.mark.usefixtures("empty_cache")
def test_an_invitation_link_answers_as_fast_for_someone_who_stopped(
    organisation: Organisation, employer: StaffUser, clock: FloorClock
) -> None:
    """The employer holds every listed person's invitation links (the work mailbox) and walks them up to the
    SMS code: open, "send me the code", a wrong code, and the link's "no". For someone who stopped, the code
    was a decoy stored nowhere and a guess checked nothing, so those steps answered faster, which told the
    employer who stopped (and, on a company phone it does not read, without the text)."""
    import_address_list(
        organisation=organisation,
        data=csv("Anna;anna@werk.example;0611111111;Care", "Bert;bert@werk.example;0622222222;IT"),
        full_list=True,
        by=employer,
    )
    invitations.send_invitations(organisation=organisation)
    invitations.send_due_invitations(now=invitations.first_slot(now=timezone.now()))
    messaging.send_due_messages()
    tokens = {}
    for message in mail.outbox:
        found = _INVITATION_LINK.search(str(message.body))
        assert found
        tokens[message.to[0]] = found.group(1)
    salt = index_salt(organisation.pk)
    bert = Participant.objects.get(email_index=blind_index_email("bert@werk.example", salt))
    Participant.objects.filter(pk=bert.pk).set_state(
        status=Participant.Status.ACTIVE, pseudonym=new_pseudonym()
    )
    account.stop_participation(participant=Participant.objects.get(pk=bert.pk))
    times: dict[tuple[str, str], float] = {}
    for kind, address in (("invited", "anna@werk.example"), ("stopped", "bert@werk.example")):
        browser = Client()
        for step, method, path, data in (
            ("open", "get", f"/i/{tokens[address]}/", {}),
            ("send the code", "post", "/enrol/", {}),
            ("wrong code", "post", "/enrol/open/", {"code": "000000"}),
            ("no", "get", f"/i/{tokens[address]}/decline/", {}),
        ):
            times[step, kind] = clock.time_of(getattr(browser, method), path, data)
    assert set(times.values()) == {FLOOR}, times


@pytest.mark.usefixtures("empty_cache")
def test_asking_for_help_on_a_weekly_link_answers_as_fast_for_someone_who_stopped(
    organisation: Organisation, clock: FloorClock
) -> None:
    """Anna chose her work address for the weekly message, so the employer holds this week's link. Asking
    for help on it queued a sealed request for a participant and checked nothing more for someone who stopped
    since (the page reads the same): the quicker answer told the employer that Anna stopped this week. A tap
    is not held (the Monday peak): it costs the same either way (bench/tap_timing.py)."""
    week = monday_of(timezone.localdate())
    anna, bert = score_people.make_participant(organisation), score_people.make_participant(organisation)
    tokens = {
        "active": score_people.make_link(anna, week=week)[1],
        "stopped": score_people.make_link(bert, week=week)[1],
    }
    account.stop_participation(participant=bert)
    browser = Client()
    times = {
        kind: clock.time_of(browser.post, f"/w/{token}/help/", {"consent": "yes", "channel": "phone"})
        for kind, token in tokens.items()
    }
    assert times == {"active": FLOOR, "stopped": FLOOR}
    # Both were answered as a help request is (the page reads the same; only the active one is queued).
    for token in tokens.values():
        answer = browser.post(f"/w/{token}/help/", {"consent": "yes", "channel": "phone"})
        assert answer.status_code == 200
    assert clock.time_of(browser.post, f"/w/{tokens['active']}/", {"value": "3"}) == 0


# --- colleagues who answer as the employer tells them -----------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason=(
        "Open (review 11): colleagues who answer as the employer tells them give away the one who does not. "
        "Care is Anna and four colluders (1, 2, 4, 5), IT seven others: the week shows the whole "
        "organisation's count and average (one decimal) and IT's; whole minus IT minus the colluders is "
        "Anna: the count says whether she answered (11 or 12), the average what (3.3 for a 3, 3.4 for a 4). "
        "The rules see figures only, never who colludes: closing it needs noise or coarser figures."
    ),
)
def test_four_colluding_colleagues_do_not_give_away_the_fifths_answer() -> None:
    from tests.scores.reporting import MONDAY, departments_of, freeze_week

    colluders = [1, 2, 4, 5]
    pages = {}
    for anna in (None, 3, 4):
        organisation = make_organisation(f"Zorggroep {anna}", "zorg")
        departments = departments_of(organisation)
        care = colluders + ([anna] if anna is not None else [])
        freeze_week(
            organisation, MONDAY, {departments["Care"]: care, departments["IT"]: [2, 3, 4, 4, 5, 3, 4]}
        )
        client = login_verified(Client(), make_staff(f"hr-{anna}", Role.EMPLOYER, organisation))
        kwargs = {"organisation_id": organisation.pk, "level": "week"}
        csv_text = client.get(reverse("scores:report-csv", kwargs=kwargs)).content.decode()
        pages[anna] = [line for line in csv_text.splitlines() if "Whole organisation" in line]
    assert pages[None] == pages[3] == pages[4], pages
