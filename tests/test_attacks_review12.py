"""Review 12: what landed after review 11 (the link-step floor, the sealed delivery tally, rule 2).

Each test FAILS while the attack it describes works; each says who attacks (issue 14's threat model) and how.
"""

from __future__ import annotations

import ast
import hashlib
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from participants.models import Organisation
from preventicons import messaging, tasks
from preventicons.models import OutboundMessage
from scores import disclosure, reports
from tests.conftest import ALL_DATABASES
from tests.fakes.twilio import FakeTwilio
from tests.preventicons.test_logging import written  # noqa: F401 (a fixture)
from tests.test_attacks_review11 import real_and_decoy_account_links

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]


def _participant_reads(browser: Client, method: str, path: str, data: dict[str, Any]) -> int:
    """How many statements the request ran against the participant table."""
    with CaptureQueriesContext(connections["default"]) as queries:
        getattr(browser, method)(path, data)
    return sum('"participants_participant"' in query["sql"] for query in queries.captured_queries)


# --- the steps after the link's button and before its SMS code ----------------------------------------------


@pytest.mark.usefixtures("empty_cache")
def test_the_pages_after_a_links_button_do_the_same_work_for_a_real_link_and_a_decoy(
    organisation: Organisation,
) -> None:
    """The employer asks /me/link/ for two listed work addresses and walks each link in its mailbox: open,
    the button, and then the page the button leads to (/me/link/code/) and any account page (/me/, which sends
    a link step back to the code page). Review 11 floored the button and the code's POSTs, but those GETs read
    the link step's participant row for a real link (Anna, invited or taking part) and nothing for a decoy
    (Bert stopped): one primary-key read and a row's sealed columns opened, unfloored, on every reload, which
    the employer times as it timed review 11's steps. Both must do the same work: the row is read only where
    the code is checked, behind the floor."""
    reads: dict[tuple[str, str], int] = {}
    for kind, link in real_and_decoy_account_links(organisation).items():
        browser = Client()
        browser.get(link)
        assert browser.post("/me/link/open/").status_code == 302
        for step, path in (("the code page", "/me/link/code/"), ("an account page", "/me/")):
            reads[step, kind] = _participant_reads(browser, "get", path, {})
    assert reads == {
        ("the code page", "real"): 0,
        ("an account page", "real"): 0,
        ("the code page", "decoy"): 0,
        ("an account page", "decoy"): 0,
    }, reads


# --- the sender run's log line ------------------------------------------------------------------------------


def _lone_runs_logs(console: io.StringIO) -> dict[str, str]:
    """What the log says of two sender runs that each end one weekly SMS: a participant's, then a stand-in's.
    Kind -> the run's lines."""
    logs: dict[str, str] = {}
    for kind in ("taking-part", "stand-in"):
        messaging.queue_many(
            [messaging.Deferred(key=f"week:{kind}:sms", channel="sms", renderer=RENDERER, reference=kind)]
        )
        console.seek(0)
        console.truncate()
        messaging.send_due_messages()
        logs[kind] = console.getvalue()
    return logs


RENDERER = "tests.review12"


def _render(reference: str, channel: str) -> messaging.RenderedMessage | None:
    # Only "taking-part" has someone to send to; a stand-in (someone who stopped, pauses, never joined) not.
    if reference != "taking-part":
        return None
    return messaging.RenderedMessage(to="+31612345678", subject=None, body="Je week")


messaging.register_renderer(RENDERER, _render)


@pytest.mark.usefixtures("empty_cache")
def test_a_sender_runs_log_line_does_not_tell_how_the_message_it_ended_went(
    written: io.StringIO,  # noqa: F811 (the fixture imported above)
) -> None:
    """The operator reads the worker's log. Celery logs every task it ran, "Task
    preventicons.tasks.send_due_messages[<id>] succeeded in 0.0123s: 1", with the task's return value (how
    many messages the run sent) and its runtime (a provider call, or none). A run that ends one weekly message
    (a retry after an outage; the beat runs every 30 seconds, so a lone message due is common) thus logged
    whether it was sent, someone who takes part, or ended with nobody to send to, a stand-in: the very outcome
    the sealed DeliveryTally keeps from the operator, and the message's last pending version names its weekly
    link, whose row names the person. The line may say that the run ran, no more."""
    lines: dict[str, list[str]] = {}
    for kind in ("taking-part", "stand-in"):
        messaging.queue_many(
            [messaging.Deferred(key=f"week:{kind}:sms", channel="sms", renderer=RENDERER, reference=kind)]
        )
        written.seek(0)
        written.truncate()
        tasks.send_due_messages.apply()
        # The task's id, random and partly redacted, aside.
        output = re.sub(r"\[.*\]", "[id]", written.getvalue())
        lines[kind] = [line for line in output.splitlines() if line.startswith("Task ")]
    assert lines["stand-in"], "the task's own line is what the worker's log shows"
    assert lines["taking-part"] == lines["stand-in"], lines


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the configured handlers write, at the levels LOGGING sets (INFO by default), as installed."""
    buffer = io.StringIO()
    handlers = {handler for handler in logging.getLogger().handlers if hasattr(handler, "setStream")}
    handlers = {handler for handler in handlers if not type(handler).__module__.startswith("_pytest")}
    streams = {handler: handler.setStream(buffer) for handler in handlers}  # type: ignore[attr-defined]
    yield buffer
    for handler, stream in streams.items():
        handler.setStream(stream)  # type: ignore[attr-defined]


@pytest.mark.usefixtures("empty_cache")
def test_a_sender_run_logs_the_same_for_a_text_that_went_and_one_that_had_nobody_to_go_to(
    fake_twilio: FakeTwilio, console: io.StringIO
) -> None:
    """The operator reads the worker's log at its configured level (INFO). The Twilio SDK logs every API
    request and answer at INFO ("-- BEGIN Twilio API Request --", "POST Request: .../Messages.json",
    "Response Status Code: 201"): lines that only a text that really went out writes. A run that ends one
    weekly SMS (a retry after an outage, a lone message at a 30-second beat) thus logged whether it went to
    someone who takes part or ended with nobody to send to (a stand-in), and a weekly round's lines counted
    how many take part by SMS: what the sealed DeliveryTally and the stand-ins are there to hide."""
    logs = _lone_runs_logs(console)
    assert len(fake_twilio.messages) == 1
    assert logs["taking-part"] == logs["stand-in"], logs


@pytest.mark.usefixtures("empty_cache")
def test_a_message_that_failed_for_good_is_not_named_in_the_log(
    fake_twilio: FakeTwilio,
    written: io.StringIO,  # noqa: F811 (the fixture imported above)
) -> None:
    """The operator reads the worker's log and dumps the outbox. Only a real message meets the provider, so
    only a real one can fail for good (a refused mailbox, a number out of service), and that warning named it:
    "sms message 1a2b3c4d failed permanently", the first eight hex digits of its id, which its tombstone keeps
    and whose last pending version names its weekly link (reference), whose row names the participant. So the
    line told, of that person, that they take part, where every other end (sent, cancelled, deferred, failed
    after all attempts) is logged alike for a real message and a stand-in, or not at all. Now no line at all
    is written for it (see the next test): the day's sealed tally counts it, and the provider keeps its
    reason."""
    fake_twilio.fail_next(1, status=400, code=21211)
    messaging.queue_many(
        [
            messaging.Deferred(
                key="week:taking-part:sms", channel="sms", renderer=RENDERER, reference="taking-part"
            )
        ]
    )
    message = OutboundMessage.objects.get(key_hash=messaging.outbox_key_hash("week:taking-part:sms"))
    messaging.send_due_messages()
    log = written.getvalue()
    assert "failed permanently" not in log and "21211" not in log, log
    assert message.pk.hex[:8] not in log, log
    assert messaging.delivery_counts(day=timezone.localdate()) == {("sms", "failed"): 1}


@pytest.mark.usefixtures("empty_cache")
def test_a_lone_run_logs_the_same_whether_its_message_failed_for_good_or_had_nobody_to_go_to(
    fake_twilio: FakeTwilio, console: io.StringIO
) -> None:
    """Only a real message meets the provider, so only a real one fails for good, and a warning logged as it
    failed ('sms message failed permanently: twilio 400 code 21211'), where a stand-in's end logs nothing,
    told of a sender run that ended a lone weekly message (its tombstone between two DeliveryTally versions by
    xmin) that it was real: its last pending version names the weekly link, whose person takes part. The
    failure is counted in the sealed tally instead, and the provider keeps its reason."""
    fake_twilio.fail_next(1, status=400, code=21211)
    logs = _lone_runs_logs(console)
    assert fake_twilio.messages == []
    assert logs["taking-part"] == logs["stand-in"], logs


# --- the reports' cache across a change of the disclosure rules ---------------------------------------------


def _rules_fingerprint(source: str) -> str:
    """scores/disclosure.py's code, docstrings and comments aside: what decides the cells."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return hashlib.sha256(ast.unparse(tree).encode()).hexdigest()[:16]


# Each version of the rules' code, and the CACHE_FORMAT its cells were cached under. A change of the rules
# adds a line here and bumps the format.
RULES_CACHED_UNDER = {
    "3d03334ea2759c7d": 3,  # up to 249f3bf
    "cae09f9df5d5cab3": 4,  # fb07b8a: rule 2 asks for two hard weeks and two others
}


def test_a_deploy_that_changes_the_disclosure_rules_serves_no_cells_the_old_rules_decided() -> None:
    """The employer opens its reports the hour after fb07b8a is deployed. The decided cells, the comparisons
    and the organisations' figures are cached for 24 hours under keys that name CACHE_FORMAT, whose comment
    asks for a bump whenever a rule of scores.disclosure changes; fb07b8a tightened rule 2 (a department with
    no hard week, or one, shows its count only) and left the format at 3. So for up to a day the cached pages
    still showed a department whose every listed person answered with "0% hard weeks", telling it of each of
    them by name, and comparisons summed organisations the new rule leaves out. The rules' code is pinned
    with the format it is cached under, so a change of one without the other fails here."""
    source = Path(disclosure.__file__).read_text()
    fingerprint = _rules_fingerprint(source)
    assert fingerprint in RULES_CACHED_UNDER, f"disclosure rules changed ({fingerprint}): bump CACHE_FORMAT"
    assert RULES_CACHED_UNDER[fingerprint] == reports.CACHE_FORMAT
    assert len(set(RULES_CACHED_UNDER.values())) == len(RULES_CACHED_UNDER)
