"""The access log (NEN 7513): every look at individual-level data and every act on a dossier, chained.

Each entry's ``chain`` is HMAC(access-log key, previous entry's chain, this entry in canonical form), so
altering, removing or slipping in a row breaks the links from there on (``verify_chain``), and without the
key nobody can recompute them. Only the newest row can vanish without a broken link; ``head()`` is what
the notary issue anchors outside this database, which closes that gap too.

Callers record inside the transaction of the act itself (STYLE.md), so a rolled-back act leaves no entry
and a logged act cannot be lost: the entry commits with the act.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from casefiles.models import AccessLogEntry, Dossier
from preventicons import crypto
from preventicons.clients import client_address
from preventicons.dbrouter import CASEFILES

Action = AccessLogEntry.Action
# The first entry links to this; a log that starts anywhere else has lost its beginning.
GENESIS = ""
# One PostgreSQL advisory lock key for appending (an arbitrary constant: "pvACCLOG" as bytes).
APPEND_LOCK = 0x7076_4143_434C_4F47
_VERIFY_CHUNK = 2000


def canonical(entry: AccessLogEntry) -> str:
    """The row as the chain signs it: every column but the chain, in a fixed order and notation."""
    at = entry.at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return json.dumps(
        [
            entry.sequence,
            at,
            entry.staff_user_id,
            entry.staff_username,
            entry.dossier_number,
            entry.action,
            str(entry.client_address or ""),
            entry.detail,
        ],
        ensure_ascii=True,
        separators=(",", ":"),
    )


def _lock_for_append() -> None:
    """Two appends one after the other, never side by side: both would link to the same predecessor.

    On PostgreSQL a transaction-level advisory lock, released at commit or rollback. SQLite's embedded
    default begins every transaction IMMEDIATE (preventicons/settings.py), which already takes the one
    write lock; and ``sequence`` and ``chain`` are unique, so a fork would fail rather than be stored.
    """
    connection = connections[CASEFILES]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK])


def _address_of(request: HttpRequest | None) -> str | None:
    """Where the request came from by the proxy rules, in one notation (as the database returns it)."""
    if request is None:
        return None
    try:
        return str(ipaddress.ip_address(client_address(request)))
    except ValueError:
        return None  # no socket address (a test client, a management command): unknown, not invented


def record(
    action: str,
    *,
    user: Any,
    dossier_number: str,
    request: HttpRequest | None = None,
    detail: str = "",
) -> AccessLogEntry:
    """Append one entry linked to the latest; an unknown action is a ValueError and writes nothing.

    Called inside the act's own casefiles transaction, the append lock is held until that transaction
    ends: keep such transactions short, since every other logged act waits for it.
    """
    action = Action(action).value
    if user is None or user.pk is None:  # 0 is the participant's own request (record_participant_request)
        raise ValueError("an access log entry needs the staff member who acted")
    with transaction.atomic(using=CASEFILES):
        _lock_for_append()
        last = AccessLogEntry.objects.order_by("-sequence").only("sequence", "chain").first()
        entry = AccessLogEntry(
            sequence=1 if last is None else last.sequence + 1,
            # Microseconds kept: the canonical form must read back exactly what was signed.
            at=timezone.now().astimezone(dt.UTC),
            staff_user_id=user.pk,
            staff_username=user.get_username(),
            dossier_number=dossier_number,
            action=action,
            client_address=_address_of(request),
            detail=detail,
        )
        # Validated before linking: cleaning may normalise a value, and the link must sign what is stored.
        entry.full_clean(exclude=["chain"], validate_unique=False)
        entry.chain = crypto.access_log_link(GENESIS if last is None else last.chain, canonical(entry))
        entry.save(force_insert=True)
    return entry


# Who acted when nobody on the staff did: the participant's own request, taken up by the batch.
PARTICIPANT_REQUEST = "(participant's request)"


def record_participant_request(action: str, *, dossier_number: str, detail: str = "") -> AccessLogEntry:
    """Append an entry for an act the participant asked for (staff member id 0: nobody on the staff)."""
    return record(action, user=_ParticipantRequest(), dossier_number=dossier_number, detail=detail)


class _ParticipantRequest:
    pk = 0

    def get_username(self) -> str:
        return PARTICIPANT_REQUEST


def verify_chain() -> AccessLogEntry | None:
    """The first entry whose link does not follow from the entries before it, or None when all do.

    A changed entry breaks its own link; a removed one breaks its successor's (and leaves a gap in the
    sequence); an inserted one breaks its own. Read in sequence order, in chunks: the log grows forever.
    """
    previous, expected_sequence = GENESIS, 1
    for entry in AccessLogEntry.objects.order_by("sequence").iterator(chunk_size=_VERIFY_CHUNK):
        link = crypto.access_log_link(previous, canonical(entry))
        if entry.sequence != expected_sequence or not _same(link, entry.chain):
            return entry
        previous, expected_sequence = entry.chain, entry.sequence + 1
    return None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def head() -> str:
    """The latest link of the chain ("" for an empty log): what the notary anchors."""
    last = AccessLogEntry.objects.order_by("-sequence").values_list("chain", flat=True).first()
    return last or GENESIS


def head_and_length() -> tuple[str, int]:
    """The latest link and how many entries it closes (sequences run 1, 2, ... without a gap in an intact
    log), read from the one row so the two belong together: ("", 0) for an empty log."""
    last = AccessLogEntry.objects.order_by("-sequence").values_list("chain", "sequence").first()
    return (last[0], last[1]) if last else (GENESIS, 0)


# --- reading the log for the notary: who looked at an organisation's dossiers, and whose dossier it was ---

# The acts that open or change one dossier's individual data: whoever takes one must be the dossier's
# casemanager at that moment, or stand in for them that day (notary.checks).
LOOKS = (
    Action.VIEW_DOSSIER,
    Action.VIEW_SCORES,
    Action.REVEAL_CONTACT,
    Action.VIEW_NOTES,
    Action.ADD_NOTE,
    Action.DEPUTY_VIEW,
    Action.CHANGE_TRAJECTORY,
)
# What assignment.reassign and change_on_participants_request write in a reassign entry's detail.
_REASSIGNED = re.compile(r"from staff member (\d+|None) to staff member (\d+)")
_NUMBERS_CHUNK = 1000


@dataclass(frozen=True)
class Look:
    """One staff member's look at a dossier, as the notary reads it: no dossier number, the day only."""

    sequence: int
    day: dt.date
    staff_user_id: int
    action: str
    # The dossier's casemanager at that moment, replayed from the reassignments logged; None for nobody.
    casemanager_id: int | None


@dataclass(frozen=True)
class _Reassigned:
    sequence: int
    previous: int | None
    to: int


def _reassigned(entry: AccessLogEntry) -> _Reassigned | None:
    found = _REASSIGNED.search(entry.detail)
    if found is None:
        return None
    previous = None if found[1] == "None" else int(found[1])
    return _Reassigned(entry.sequence, previous, int(found[2]))


def _casemanager_at(sequence: int, moves: list[_Reassigned], current: int | None) -> int | None:
    """Whose the dossier was when the entry ``sequence`` was written: the last move before it; before the
    first move, whom that move took it from; without any move, its casemanager now."""
    if not moves:
        return current
    before = [move for move in moves if move.sequence < sequence]
    return before[-1].to if before else moves[0].previous


def _day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = timezone.get_current_timezone()
    first = dt.datetime.combine(start, dt.time.min, tzinfo=zone)
    after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return first, after


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for at in range(0, len(items), _NUMBERS_CHUNK):
        yield items[at : at + _NUMBERS_CHUNK]


def staff_looks(organisation_id: int, *, start: dt.date, end: dt.date) -> list[Look]:
    """Every look a staff member took at a dossier of the organisation on the days [start, end], in log
    order, each with the dossier's casemanager at that moment. The participant's own requests (staff
    member 0) are no look. Only dossiers that still exist are found: the log names a dossier by number."""
    current = dict(
        Dossier.objects.filter(organisation_id=organisation_id).values_list("number", "casemanager_id")
    )
    first, after = _day_bounds(start, end)
    moves: dict[str, list[_Reassigned]] = {}
    looks: list[AccessLogEntry] = []
    for numbers in _chunks(sorted(current)):
        entries = AccessLogEntry.objects.filter(dossier_number__in=numbers).filter(
            Q(action=Action.REASSIGN) | Q(action__in=LOOKS, at__gte=first, at__lt=after)
        )
        for entry in entries.only("sequence", "at", "staff_user_id", "action", "detail", "dossier_number"):
            if entry.action == Action.REASSIGN:
                move = _reassigned(entry)
                if move is not None:
                    moves.setdefault(entry.dossier_number, []).append(move)
            elif entry.staff_user_id:
                looks.append(entry)
    for found in moves.values():
        found.sort(key=lambda move: move.sequence)
    looks.sort(key=lambda entry: entry.sequence)
    return [
        Look(
            sequence=entry.sequence,
            day=timezone.localdate(entry.at),
            staff_user_id=entry.staff_user_id,
            action=entry.action,
            casemanager_id=_casemanager_at(
                entry.sequence, moves.get(entry.dossier_number, []), current[entry.dossier_number]
            ),
        )
        for entry in looks
    ]
