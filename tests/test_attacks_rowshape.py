"""Adversary (operator: dumps of the identity database over weeks, no key file): a participant row's shape.

The status and the pause are sealed, but the rest of the row still told what its person did. Which columns
were NULL, and how long each ciphertext was, told a dump who never enrolled (the sealed pseudonym,
participation and weekly channel were NULL until enrolment), who chose a private address for the weekly
messages (that column set, and ``weekly_channel`` in clear), and who stopped or was anonymised (contact data,
blind indexes, listed hashes and department became NULL). Closed: every sealed column holds a ciphertext of
one length in every row ("none" sealed as empty text, padded: preventicons.fields ``none_sealed`` and
``pad_to``), every keyed hash column 64 hex characters (a random look-alike where there is none:
ContactHashField), the weekly channel is sealed, and a stop leaves look-alikes of the same length and the
department as it was.

Each person is brought into their state through the real operations (the import, the invitation link and its
SMS code, consent, enrolment with a private address proven by its code, the pause, the week close, the stop,
the decline and the night's anonymisation); then the table is read as the operator reads it.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from participants import account, enrolment, invitations, retention, verification
from participants.importing import import_address_list
from participants.models import Invitation, Organisation, Participant, StaffUser
from preventicons import messaging
from preventicons.crypto import blind_index_email, blind_index_phone
from preventicons.gateways import MemorySmsGateway
from scores import weekclose
from tests.conftest import ALL_DATABASES
from tests.participants.people import decline_through_the_batch, enrol_through_the_batch

pytestmark = [pytest.mark.usefixtures("english", "empty_cache")]

# A Monday, 10:00 in Amsterdam: within the invitation hours, so an invitation goes out at once.
START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
LINK = re.compile(r"/i/([A-Za-z0-9_-]{43})/")
CODE = re.compile(r"\b(\d{6})\b")
# One person per state, all in one department of the employer's list.
STATES = ("silent", "declined", "active", "paused", "inactive", "stopped", "anonymised")
# Columns whose values the employer sets or knows itself, the same for everyone here: which organisation
# and department the list names, whether it still lists them (and since when), whether it sent the
# invitations, and two preferences nobody writes. The id is random per row.
EMPLOYER_KNOWN = {"organisation_id", "department_id", "is_listed", "unlisted_on", "was_invited"}
_HEX64 = re.compile(r"[0-9a-f]{64}")
TABLE = "participants_participant"


def _address(state: str) -> str:
    return f"{state[:6]}@example.nl"


def _mobile(index: int) -> str:
    return f"+3161234560{index}"


def _deliver() -> None:
    invitations.send_due_invitations()
    messaging.send_due_messages()


def _token_of(state: str) -> str:
    mailed = [message for message in mail.outbox if _address(state) in message.to]
    assert mailed, state
    match = LINK.search(str(mailed[-1].body))
    assert match
    return match.group(1)


def _open_link(state: str) -> Invitation:
    """Open the invitation as its holder does: the SMS code to the number on file, entered."""
    invitation = enrolment.find_invitation(token=_token_of(state))
    assert invitation is not None and enrolment.request_link_code(invitation=invitation)
    messaging.send_due_messages()
    code = CODE.search(MemorySmsGateway.outbox[-1]["body"])
    assert code and enrolment.verify_link_code(invitation=invitation, code=code.group(1))
    return invitation


def _enrol(state: str, *, private_email: str | None = None) -> Participant:
    """Consent and enrolment through the operations; with ``private_email`` proven by its own code."""
    invitation = _open_link(state)
    participant = invitation.invitee
    enrolment.record_consent(participant=participant)
    if private_email is None:
        return enrol_through_the_batch(invitation, weekly_channel="sms")
    enrolment.start_verification(
        participant=participant,
        name=participant.name or "",
        weekly_channel="private_email",
        private_email=private_email,
    )
    messaging.send_due_messages()
    code = CODE.search(str(mail.outbox[-1].body))
    assert code
    assert verification.verify_code(
        participant=participant, purpose="enrol", channel="email", code=code.group(1)
    ).ok
    return enrol_through_the_batch(invitation, weekly_channel="private_email", with_codes=True)


def _decline(state: str) -> None:
    assert decline_through_the_batch(_open_link(state))


def _people(organisation: Organisation, employer: StaffUser, settings: Any) -> dict[str, uuid.UUID]:
    """One participant in each of STATES, each brought there by the real operations; their ids."""
    rows = "".join(
        f"Medewerker {state[:6]};{_address(state)};0{_mobile(i)[3:]};Zorg\r\n"
        for i, state in enumerate(STATES)
    )
    import_address_list(
        organisation=organisation,
        data=f"naam;e-mail;mobiel;afdeling\r\n{rows}".encode(),
        full_list=True,
        by=employer,
    )
    invitations.send_invitations(organisation=organisation)
    _deliver()
    ids = {
        state: invitation.invitee.pk
        for state in STATES
        if (invitation := enrolment.find_invitation(token=_token_of(state))) is not None
    }
    # The night erases whoever declined, at once: one person declines before it, another after.
    _decline("anonymised")
    retention.run_retention()
    # A closed week without an answer makes the one enrolled then inactive (after one week, here).
    _enrol("inactive")
    settings.INACTIVE_AFTER_WEEKS = 1
    weekclose.close_week(organisation_id=organisation.pk, week=dt.date(2026, 11, 16), vacuum=False)
    _decline("declined")
    _enrol("active", private_email="prive.adres@example.org")
    account.pause_messages(participant=_enrol("paused"), paused=True)
    account.stop_participation(participant=_enrol("stopped"))
    states = {state: Participant.objects.get(pk=pk) for state, pk in ids.items()}
    assert {state: person.status for state, person in states.items()} == {
        "silent": "invited",
        "declined": "declined",
        "active": "active",
        "paused": "active",
        "inactive": "inactive",
        "stopped": "stopped",
        "anonymised": "stopped",
    }
    assert states["paused"].messages_paused and states["active"].private_email
    return ids


def _dump() -> dict[uuid.UUID, dict[str, object]]:
    """The participant table as the operator reads it: every column of every row, by id."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM participants_participant")
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return {uuid.UUID(str(row["id"])): row for row in rows}


def _shape(value: object) -> object:
    """What a value tells without the key: NULL or not, a ciphertext its key id and length, a keyed hash
    (or a look-alike) only that it is one; anything else itself."""
    if value is None:
        return "NULL"
    if isinstance(value, str) and value.startswith("v1."):
        return ("sealed", value.split(".", 2)[1], len(value))
    if isinstance(value, str) and _HEX64.fullmatch(value):
        return "64 hex"
    return value


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_every_participant_row_has_one_shape_whatever_its_person_did(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)
    dump = _dump()

    shapes = {
        state: {column: _shape(value) for column, value in dump[pk].items() if column != "id"}
        for state, pk in ids.items()
    }
    # The employer's own columns are the same here (one department, all listed and invited); every other
    # column must read the same for each state: no NULL where another has a value, no other length.
    for state, shape in shapes.items():
        assert shape == shapes["silent"], (
            state,
            {
                column: (value, shapes["silent"][column])
                for column, value in shape.items()
                if value != shapes["silent"][column]
            },
        )
    assert set(shapes["silent"]) - EMPLOYER_KNOWN - {"prefers_email", "prefers_sms"} == {
        column for column, value in shapes["silent"].items() if isinstance(value, tuple) or value == "64 hex"
    }


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_the_look_alikes_open_to_nothing_and_no_lookup_finds_them(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)

    silent = Participant.objects.get(pk=ids["silent"])
    assert (silent.pseudonym, silent.weekly_channel, silent.private_email) == (None, None, None)
    for state in ("stopped", "anonymised"):
        person = Participant.objects.get(pk=ids[state])
        erased = (person.name, person.email, person.mobile, person.pseudonym, person.weekly_channel)
        assert erased == (None,) * 5, state
        # The employer's own department stays: a stop does not date itself in the row.
        assert person.department_id == silent.department_id is not None
        email, mobile = _address(state), _mobile(STATES.index(state))
        # Their addresses find no row any more, and are refused as anyone's who left.
        assert not Participant.objects.filter(email_index=blind_index_email(email)).exists()
        assert not Participant.objects.filter(mobile_index=blind_index_phone(mobile)).exists()
        assert invitations.held_by_someone_else(participant=silent, email=email, mobile=mobile) == (
            True,
            True,
        )


# --- the rows from before: filled, and the old row versions gone from the table file -------------------


def _migrate(targets: list[tuple[str, str]] | None = None) -> MigrationExecutor:
    executor = MigrationExecutor(connections["default"])
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


def _row_versions_in_table_file(table: str) -> list[bytes]:
    """Every row version PostgreSQL keeps in the table's pages, live and dead, as an operator with the data
    directory (or pageinspect) reads them."""
    with connections["default"].cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        cursor.execute("SELECT pg_relation_size(%s) / current_setting('block_size')::int", [table])
        pages = cursor.fetchone()[0]
        found: list[bytes] = []
        for page in range(pages):
            cursor.execute(
                "SELECT t_data FROM heap_page_items(get_raw_page(%s, %s)) WHERE t_data IS NOT NULL",
                [table, page],
            )
            found.extend(bytes(data) for (data,) in cursor.fetchall())
    return found


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_after_participants_0028_no_row_keeps_its_clear_channel_or_its_nulls(
    organisation: Organisation,
) -> None:
    """Rows from before 0027 (a clear channel, NULLs for what is not there) are filled to the one shape, and
    after 0028 no row version in the table file holds the clear channel: 0027 moved it to a new sealed
    column and dropped the clear one, and 0028's rewrite nulls a dropped column in every version it keeps
    (also one that a transaction elsewhere might still see, which it cannot leave out)."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL's table files")
    before = [("participants", "0026_vacuum_full_consents_again")]
    executor = _migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("participants", "Participant")
        enrolled = old(organisation_id=organisation.pk, weekly_channel="private_email", name="Jan de Vries")
        enrolled.status, enrolled.messages_paused = "active", False
        enrolled.private_email, enrolled.pseudonym = "jan.prive@example.org", "0" * 32
        enrolled.save(using="default")
        invited = old(organisation_id=organisation.pk, name="Piet", email="piet@example.nl")
        invited.status, invited.messages_paused = "invited", False
        invited.save(using="default")
        assert any(b"private_email" in version for version in _row_versions_in_table_file(TABLE))
        _migrate()

        assert not any(b"private_email" in version for version in _row_versions_in_table_file(TABLE))
        dump = _dump()
        shapes = [
            {column: _shape(value) for column, value in row.items() if column != "id"}
            for row in dump.values()
        ]
        assert len(shapes) == 2 and "NULL" not in {
            shape for column, shape in shapes[0].items() if column not in EMPLOYER_KNOWN
        }
        assert shapes[0] == shapes[1]
        migrated = Participant.objects.get(pk=enrolled.pk)
        assert (migrated.weekly_channel, migrated.private_email, migrated.pseudonym) == (
            "private_email",
            "jan.prive@example.org",
            "0" * 32,
        )
        assert (migrated.name, migrated.participation) == ("Jan de Vries", None)
        piet = Participant.objects.get(pk=invited.pk)
        assert (piet.weekly_channel, piet.private_email, piet.pseudonym, piet.mobile) == (None,) * 4
    finally:
        _migrate()
