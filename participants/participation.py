"""Participation ("took part this week"), derived only when a week closes, and coming back after a pause.

Submitting a score writes nothing on the participant's side (DESIGN.md, unlinkability rules). Instead the
week-close batch (scores.weekclose) tells, for each participant's pseudonym, whether it scored in the closed
week, and this module updates, for every active participant at once, their sealed participation (the last
week answered, weeks without a response): never a readable column, and every row of the organisation
rewritten at every close (the others as they were), so neither a dump nor the difference of two dumps says
who answered, nor who is active at all (the status is sealed too). After
``settings.INACTIVE_AFTER_WEEKS`` closed weeks in a row without a response a participant becomes inactive:
the weekly round sends them no links and their dossier is unavailable to casemanagers
(``participant_inactive``). They come back through their account page: the request batch makes them active
again (``reactivate_participant``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, router
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from participants.models import ConsentRecord, Participant
from participants.signals import participant_inactive, participant_reactivated
from preventicons import crypto
from preventicons.dbrouter import every_store
from preventicons.fields import EncryptedTextField, SealedBooleanField, as_stored

# Participants are read and updated in chunks: bounded memory, and IN-lists PostgreSQL plans well.
CHUNK = 5_000
# Every participation state seals to the same length (see ParticipationState.sealed_text).
PARTICIPATION_WIDTH = 48


@dataclass(frozen=True)
class ParticipationState:
    """One participant's participation, as the week-close batch keeps it (sealed, never in clear)."""

    last_response_week: dt.date | None = None
    weeks_without_response: int = 0

    def sealed_text(self) -> str:
        """Fixed-width JSON: a participant who never answered seals to the same length as one who did."""
        last = self.last_response_week.isoformat() if self.last_response_week else None
        text = json.dumps({"last": last, "missed": self.weeks_without_response}, separators=(",", ":"))
        if len(text) > PARTICIPATION_WIDTH:
            raise ValueError("participation state longer than its fixed width")
        return text.ljust(PARTICIPATION_WIDTH)

    @classmethod
    def from_text(cls, text: str | None) -> ParticipationState:
        if not text:
            return cls()
        data = json.loads(text)
        last = dt.date.fromisoformat(data["last"]) if data["last"] else None
        return cls(last_response_week=last, weeks_without_response=int(data["missed"]))


@dataclass
class Participation:
    """What one closed week did to an organisation's active participants."""

    responded: int = 0
    missed: int = 0
    # Active participants who get no messages (paused, or no longer on the list) are neither.
    not_counted: int = 0
    became_inactive: list[str] = field(default_factory=list)  # participant ids, never pseudonyms
    # Those who were sent the week's link (responded or missed), per department (None: in none): the
    # employer reports' participation bands divide the answers by it.
    invited: Counter[int | None] = field(default_factory=Counter)


@functools.cache
def _place(name: str) -> tuple[str, str, str]:
    column = Participant._meta.get_field(name)
    assert isinstance(column, EncryptedTextField)
    return column.purpose, Participant._meta.db_table, str(column.column)


def _cipher(name: str) -> crypto.ColumnCipher:
    # With the column's padding: an empty participation seals as long as a real one (participants.models).
    column = Participant._meta.get_field(name)
    assert isinstance(column, EncryptedTextField)
    return crypto.ColumnCipher(*_place(name), pad_to=column.pad_to)


def participation_of(participant: Participant) -> ParticipationState:
    """The participant's participation, opened; the empty state before their first closed week."""
    return ParticipationState.from_text(participant.participation)


def inactive_after_weeks() -> int:
    return int(settings.INACTIVE_AFTER_WEEKS)


# A participant's state as the close writes it: (id as text, participation sealed afresh, status ciphertext
# as read). The id as text is the sealed values' row binding, already made.
Resealed = tuple[str, str | None, str]


def _write_states(rows: list[Resealed]) -> None:
    """Write re-sealed participation states by id, only on rows still active (a stop may have committed
    since they were read: a stopped row keeps what the stop left).

    The status is sealed, so "still active" is "its status ciphertext is still the one read": any change of
    status since (a stop, inactivity) sealed it afresh, with a new nonce. On PostgreSQL one statement per
    chunk (never empty), the rows as three arrays: inside the week close's pipeline the server writes one
    chunk while the next is computed, on the other core.
    """
    connection = connections[router.db_for_write(Participant)]
    table = connection.ops.quote_name(Participant._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Each column joined by commas, which no id or ciphertext holds (checked: a value that did would
            # shift its column against the others), and split on the server: psycopg's array dumping cost
            # more than all the sealing. An empty string is a NULL participation.
            columns = [",".join(value or "" for value in column) for column in zip(*rows, strict=True)]
            if any(column.count(",") != len(rows) - 1 for column in columns):
                raise ValueError("a participant id or ciphertext holds a comma")
            cursor.execute(
                f"UPDATE {table} AS p SET participation = v.sealed "  # noqa: S608  # nosec B608  # names from the model
                "FROM unnest(string_to_array(%s, ',')::uuid[], string_to_array(%s, ',', ''), "
                "string_to_array(%s, ',')) AS v(id, sealed, status) "
                "WHERE p.id = v.id AND p.status = v.status",
                columns,
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET participation = %s WHERE id = %s AND status = %s",  # noqa: S608  # nosec B608  # names from the model
                [(sealed, uuid.UUID(pk).hex, status) for pk, sealed, status in rows],
            )


@dataclass
class CountedWeek:
    """A week counted and written for an organisation's participants (count_participation)."""

    outcome: Participation
    reaching_limit: list[str]  # participant ids, as text

    def make_inactive(self) -> Participation:
        """Make those who reached the limit inactive (announced each); the outcome.

        After the count's writes have been carried out (in the week close: after its pipeline): the
        participants are locked and their status read back.
        """
        with every_store():
            for start in range(0, len(self.reaching_limit), CHUNK):
                self.outcome.became_inactive += _make_inactive(self.reaching_limit[start : start + CHUNK])
        return self.outcome


# A participant as the close reads them: id as text (the sealed values' row binding), sealed status,
# pseudonym, pause and participation (each as the column holds it), whether listed, and the department's id.
ParticipantRow = tuple[str, str, str | None, bool, str, str | None, int | None]


def participant_rows(organisation_id: int) -> list[ParticipantRow]:
    """Every participant of the organisation, as count_participation takes them.

    Read whole before the count, so that the connection is free to carry the count's writes (and the week
    close's other statements) while the states are computed.
    """
    participants = Participant.objects.filter(organisation_id=organisation_id)
    columns = (
        as_stored("status"),
        as_stored("pseudonym"),
        "is_listed",
        as_stored("messages_paused"),
        as_stored("participation"),
        "department_id",
    )
    if connections[participants.db].vendor == "postgresql":
        # The id as PostgreSQL writes it, the text the bindings take: no UUID object made and turned back
        # into text for each of 100,000 rows.
        return list(participants.values_list(Cast("pk", TextField()), *columns))
    return [(str(pk), *rest) for pk, *rest in participants.values_list("pk", *columns)]


def count_participation(
    rows: list[ParticipantRow], *, week: dt.date, answered: Callable[[str], bool] | None
) -> CountedWeek:
    """Count ``week`` for every active participant of an organisation (``participant_rows``) and write each
    state sealed afresh; then ``make_inactive`` on what it returns. Inside the week close's transaction.

    ``answered(P)`` tells whether the holder of pseudonym P has a score in the week (None: nobody has).
    Every active participant's sealed participation is opened, updated and sealed afresh in this one
    batch, also for those whose state did not change (paused, unlisted), and every other row of the
    organisation is written back as it was: which rows a close rewrites must not tell who answered, nor
    who is active (the status is sealed, and opened here). Call exactly once per organisation and week, in
    order of weeks (scores.weekclose guarantees both through its ClosedWeek row): a second count would
    count a missed week twice. Whoever reaches ``INACTIVE_AFTER_WEEKS`` misses becomes inactive
    (``make_inactive``) and ``participant_inactive`` is sent for them.
    """
    connection = connections[router.db_for_write(Participant)]
    if not connection.in_atomic_block:
        # It writes chunk by chunk: only a transaction keeps a failure half way from counting some rows.
        raise RuntimeError("count_participation runs inside the week close's transaction")
    limit = inactive_after_weeks()
    outcome = Participation()
    reaching_limit: list[str] = []
    # The same bindings as the fields' (fields.EncryptedTextField.binding_for), opened and sealed from
    # values_list rows with the per-column work done once: 100,000 rows, several values each.
    status_cipher, pseudonym_cipher, paused_cipher, state_cipher = (
        _cipher(name) for name in ("status", "pseudonym", "messages_paused", "participation")
    )
    # Most states repeat (everyone who answered has the same one): each is parsed and turned into text once.
    answered_text = ParticipationState(last_response_week=week, weeks_without_response=0).sealed_text()
    state_texts: dict[ParticipationState, str] = {}
    states: dict[str, ParticipationState] = {}
    # The status and the pause are sealed: every participant of the organisation is read, and who is
    # active is decided here, after opening them (a few microseconds each).
    chunk: list[Resealed] = []
    for pk, sealed_status, sealed_pseudonym, is_listed, sealed_paused, sealed_state, department in rows:
        if len(chunk) == CHUNK:
            _write_states(chunk)
            chunk = []
        row = pk
        # The status before the score: a catch-up close can find a score of someone whom the close of the
        # week before, in the same catch-up, has just made inactive.
        status = status_cipher.open(sealed_status, row)
        if status != Participant.Status.ACTIVE:
            # Rewritten as it is, sealed afresh: a close that rewrote only the active rows would tell a dump
            # (xmin, row order) who is active at all, and a ciphertext written back unchanged would tell two
            # dumps around a close apart.
            # Never NULL: a row without a state yet holds an empty one (participants.models).
            kept = state_cipher.seal(state_cipher.open(sealed_state, row) if sealed_state else "", row)
            chunk.append((row, kept, sealed_status))
            continue
        # Every row holds a pseudonym sealed, an empty one for nobody (participants.models): opened to tell.
        pseudonym = pseudonym_cipher.open(sealed_pseudonym, row) if answered and sealed_pseudonym else ""
        if answered is not None and pseudonym and answered(pseudonym):
            # Whatever the state was, this is the new one: the pause needs no opening.
            outcome.responded += 1
            outcome.invited[department] += 1
            chunk.append((row, state_cipher.seal(answered_text, row), sealed_status))
            continue
        paused = paused_cipher.open(str(sealed_paused), row) == SealedBooleanField.TRUE
        opened = state_cipher.open(sealed_state, row) if sealed_state else ""
        state = states.get(opened) or states.setdefault(opened, ParticipationState.from_text(opened))
        if Participant.can_take_part(status=status, is_listed=is_listed, paused=paused):
            state = ParticipationState(state.last_response_week, state.weeks_without_response + 1)
            outcome.missed += 1
            outcome.invited[department] += 1
            if state.weeks_without_response >= limit:
                reaching_limit.append(pk)
        else:
            # No link reached them: a week they could not answer says nothing about them.
            outcome.not_counted += 1
        text = state_texts.get(state) or state_texts.setdefault(state, state.sealed_text())
        # A fresh nonce for everyone, changed or not.
        # With the status ciphertext read: written only where it is still the same (see _write_states).
        chunk.append((row, state_cipher.seal(text, row), sealed_status))
    if chunk:
        _write_states(chunk)
    return CountedWeek(outcome=outcome, reaching_limit=reaching_limit)


def _make_inactive(candidates: list[str]) -> list[str]:
    """Make these participants inactive, those still active once locked, and announce each; their ids.

    Locked and checked again, so a participant who stopped meanwhile is not made inactive. Usually few
    rows, but called in chunks: a whole organisation can fall silent, and a statement takes at most 65,535
    parameters with server-side binding. The statuses are sealed here and written in one statement rather
    than one save() per participant: the same ciphertexts, bound to their rows, without a round trip each.
    """
    status_cipher, pseudonym_cipher = (_cipher(name) for name in ("status", "pseudonym"))
    locked = Participant.objects.select_for_update().filter(pk__in=candidates)
    inactive: list[tuple[uuid.UUID, str | None, int]] = [
        (pk, sealed_pseudonym, organisation_id)
        for pk, sealed_status, sealed_pseudonym, organisation_id in locked.values_list(
            "pk", "status", "pseudonym", "organisation_id"
        )
        if status_cipher.open(sealed_status, str(pk)) == Participant.Status.ACTIVE
    ]
    connection = connections[router.db_for_write(Participant)]
    table = connection.ops.quote_name(Participant._meta.db_table)
    statuses = [(status_cipher.seal(Participant.Status.INACTIVE, str(pk)), pk) for pk, _p, _o in inactive]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS p SET status = v.status "  # noqa: S608  # nosec B608  # names from the model
                "FROM unnest(%s::text[], %s::uuid[]) AS v(status, id) WHERE p.id = v.id",
                [[status for status, _pk in statuses], [pk for _status, pk in statuses]],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET status = %s WHERE id = %s",  # noqa: S608  # nosec B608  # names from the model
                [(status, pk.hex) for status, pk in statuses],
            )
    for pk, sealed_pseudonym, organisation_id in inactive:
        pseudonym = pseudonym_cipher.open(sealed_pseudonym, str(pk)) if sealed_pseudonym else ""
        if pseudonym:
            participant_inactive.send(
                sender=Participant, pseudonym=pseudonym, organisation_id=organisation_id
            )
    return [str(pk) for pk, _p, _o in inactive]


def reactivate_participant(*, participant: Participant) -> bool:
    """An inactive participant is active again: weekly links from the next round, dossier available again.

    Returns False (changing nothing) when they were not inactive. Asked from the participant's own account
    page and queued (participants.requestqueue.queue_rejoin): only the request batch calls this, so the row
    is not rewritten in the minute they ask (issue 14); ``participant_reactivated`` is sent with P.
    Their count of weeks without a response starts from zero again.
    """
    with every_store():
        locked = Participant.to_act_on(participant.pk)
        if locked.status != Participant.Status.INACTIVE:
            return False
        fields = locked.reseal()
        locked.status = Participant.Status.ACTIVE
        previous = participation_of(locked)
        locked.participation = ParticipationState(previous.last_response_week, 0).sealed_text()
        locked.save(update_fields=fields)
        if locked.pseudonym:
            participant_reactivated.send(
                sender=Participant, pseudonym=locked.pseudonym, organisation_id=locked.organisation_id
            )
    participant.refresh_unless_batch_copy()
    return True


def record_contact_consent(*, participant: Participant, text_version: str) -> ConsentRecord:
    """A dated record that the participant agreed to be contacted by a casemanager, under this text."""
    return ConsentRecord.objects.add(
        participant.pk,
        kind=ConsentRecord.Kind.CONTACT,
        text_version=text_version,
        recorded_at=timezone.now(),
    )
