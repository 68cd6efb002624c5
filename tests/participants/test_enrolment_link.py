"""The invitation link as its finder sees it: before the SMS code, one page for everyone, as an attack.

Whoever opens a link from a mailbox the employer supplied (the IT department, a mail scanner, a forwarded
message) must not learn what the person did. For a link of someone invited, enrolled, paused, declined,
stopped, taken off the list, inactive, for an expired link and for a token we never sent, every response up
to the SMS code must be the same byte for byte, apart from the CSRF token.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

from participants import account, invitations
from participants.models import Organisation, Participant
from preventicons import messaging
from preventicons.crypto import blind_index_email, new_token
from preventicons.gateways import MemorySmsGateway
from tests.conftest import ALL_DATABASES
from tests.participants.people import make_participant

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("empty_cache", "english"),
]

START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # Monday 10:00 in Amsterdam
LINK = re.compile(r"/i/([A-Za-z0-9_-]{43})/")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
STATES = ("invited", "active", "paused", "declined", "stopped", "unlisted", "inactive", "expired", "unknown")


def normalised(response: Any) -> tuple[int, str, str]:
    body = CSRF.sub('name="csrfmiddlewaretoken" value=""', response.content.decode())
    return response.status_code, response.get("Location", ""), body


@pytest.fixture
def links(organisation: Organisation) -> dict[str, str]:
    """A link per state, each sent by the real schedule, then the person did what the state says."""
    people = {
        state: make_participant(organisation, email=f"{state}@example.nl", mobile=f"+3161200000{number}")
        for number, state in enumerate(STATES)
    }
    with time_machine.travel(START, tick=False):
        invitations.send_invitations(organisation=organisation)
        invitations.send_due_invitations()
        messaging.send_due_messages()
    tokens = {}
    for message in mail.outbox:
        match = LINK.search(str(message.body))
        assert match
        tokens[message.to[0].split("@")[0]] = match.group(1)
    Participant.objects.filter(pk=people["active"].pk).set_state(status="active")
    Participant.objects.filter(pk=people["paused"].pk).set_state(status="active", messages_paused=True)
    Participant.objects.filter(pk=people["inactive"].pk).set_state(status="inactive")
    Participant.objects.filter(pk=people["declined"].pk).set_state(status="declined")
    Participant.objects.filter(pk=people["unlisted"].pk).update(is_listed=False)
    Participant.objects.filter(pk=people["stopped"].pk).set_state(status="active")
    account.stop_participation(participant=Participant.objects.get(pk=people["stopped"].pk))
    tokens["unknown"] = new_token()
    return tokens


def walk(token: str, *, decline: bool = False) -> list[tuple[int, str, str]]:
    """Everything a link's finder can do without the phone: open, look, ask for a code, guess one."""
    client = Client()
    seen = [normalised(client.get(f"/i/{token}/decline/" if decline else f"/i/{token}/"))]
    seen.append(normalised(client.get(reverse("participants:enrol"))))
    seen.append(normalised(client.post(reverse("participants:enrol"))))
    seen.append(normalised(client.get(reverse("participants:enrol-open"))))
    seen.append(normalised(client.post(reverse("participants:enrol-open"), {"code": "000000"})))
    seen.append(normalised(client.post(reverse("participants:enrol"), follow=True)))  # too soon again
    for name in ("enrol-next", "enrol-consent", "enrol-details", "enrol-codes", "enrol-decline"):
        seen.append(normalised(client.get(reverse(f"participants:{name}"))))
    seen.append(normalised(client.post(reverse("participants:enrol-decline"))))
    seen.append(normalised(client.post(reverse("participants:enrol-new-link"))))
    return seen


def _first_difference(seen: list[tuple[int, str, str]], reference: list[tuple[int, str, str]]) -> str:
    for step, (one, other) in enumerate(zip(seen, reference, strict=True)):
        if one != other:
            lines = difflib.unified_diff(other[2].splitlines(), one[2].splitlines(), lineterm="", n=0)
            return f"step {step}: {one[:2]} != {other[:2]}\n" + "\n".join(lines)
    return ""


@pytest.mark.parametrize("decline", [False, True], ids=["join link", "decline link"])
def test_every_page_before_the_sms_code_is_the_same_whatever_the_person_did(
    links: dict[str, str], decline: bool
) -> None:
    with time_machine.travel(START + dt.timedelta(days=1), tick=False):
        fresh_walk = walk(links["invited"], decline=decline)
    with time_machine.travel(START + dt.timedelta(days=1, hours=2), tick=False):
        walks = {state: walk(token, decline=decline) for state, token in links.items() if state != "expired"}
    with time_machine.travel(START + dt.timedelta(days=20), tick=False):  # now every link has expired
        expired_walk = walk(links["expired"], decline=decline)

    reference = walks.pop("invited")
    assert reference[1][0] == 200 and "we first send a code by text message" in reference[1][2]
    for state, seen in walks.items():
        assert seen == reference, (state, _first_difference(seen, reference))
    assert expired_walk == reference, _first_difference(expired_walk, reference)
    assert fresh_walk == reference, _first_difference(fresh_walk, reference)


def test_declining_without_the_sms_code_changes_nothing(links: dict[str, str]) -> None:
    client = Client()
    client.get(f"/i/{links['invited']}/decline/")

    for _ in range(3):
        client.post(reverse("participants:enrol-decline"))
        client.post(reverse("participants:enrol-open"), {"code": "123456"})
        client.post(reverse("participants:enrol-decline"))

    invited = Participant.objects.get(email_index=blind_index_email("invited@example.nl"))
    assert invited.status == "invited"
    assert Participant.objects.with_status("declined").count() == 1  # only the one the setup made


def test_the_sms_code_goes_only_to_the_number_on_file(links: dict[str, str]) -> None:
    sent_before = len(MemorySmsGateway.outbox)
    client = Client()
    client.get(f"/i/{links['invited']}/")

    client.post(reverse("participants:enrol"), {"mobile": "+31699999999"})
    messaging.send_due_messages()

    assert [sms["to"] for sms in MemorySmsGateway.outbox[sent_before:]] == ["+31612000000"]
