"""Participation ("took part this week"), derived only when a week closes, and coming back after a pause.

Submitting a score writes nothing on the participant's side (DESIGN.md, unlinkability rules). Instead the
week-close batch (scores.weekclose) tells, for each participant's pseudonym, whether it scored in the closed
week, and this module updates, for every active participant at once, their sealed participation (the last
week answered, weeks without a response): never a readable column, and every row of the organisation
rewritten at every close (the others as they were), so neither a dump nor the difference of two dumps says
who answered, nor who is active at all (the status is sealed too). After
``settings.INACTIVE_AFTER_WEEKS`` closed weeks in a row without a response a participant becomes inactive:
the weekly round sends them no links and their dossier is unavailable to casemanagers
(``participant_inactive``). They come back through their account page (``reactivate_participant``).
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
from django.db.models import ExpressionWrapper, F, TextField
from django.utils import timezone

from participants.models import ConsentRecord, Participant
from participants.signals import participant_inactive, participant_reactivated
from preventicons import crypto
from preventicons.dbrouter import every_store
from preventicons.fields import EncryptedTextField, SealedBooleanField

# Participants are read and updated in chunks: bounded memory, and IN-lists PostgreSQL plans well.
CHUNK = 5_000
# Every participation state seals to the same length (see ParticipationState.sealed_text).
PARTICIPATION_WIDTH = 48
# The close's temporary table of re-sealed states (PostgreSQL, see _write_participation).
_RESEALED = "participation_resealed"


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


def _as_stored(name: str) -> ExpressionWrapper:
    """An encrypted column read as the text it holds: values_list would wrap each ciphertext in Sealed, a
    converter call per value (half a second for the 100,000 rows of a close), and the ciphers take str."""
    return ExpressionWrapper(F(name), output_field=TextField())


def participation_of(participant: Participant) -> ParticipationState:
    """The participant's participation, opened; the empty state before their first closed week."""
    return ParticipationState.from_text(participant.participation)


def inactive_after_weeks() -> int:
    return int(settings.INACTIVE_AFTER_WEEKS)


def record_participation(
    *, organisation_id: int, week: dt.date, answered: Callable[[str], bool] | None
) -> Participation:
    """Count ``week`` for every active participant of the organisation, once, and re-seal each of them.

    ``answered(P)`` tells whether the holder of pseudonym P has a score in the week (None: nobody has).
    Every active participant's sealed participation is opened, updated and sealed afresh in this one
    batch, also for those whose state did not change (paused, unlisted), and every other row of the
    organisation is written back as it was: which rows a close rewrites must not tell who answered, nor who
    is active (the status is sealed, and opened here). Call exactly once per organisation and week, in
    order of weeks (scores.weekclose guarantees both through its ClosedWeek row): a second call would count
    a missed week twice. Whoever reaches ``INACTIVE_AFTER_WEEKS`` misses becomes inactive and
    ``participant_inactive`` is sent for them.
    """
    limit = inactive_after_weeks()
    outcome = Participation()
    resealed: list[tuple[uuid.UUID, str | None, str]] = []
    reaching_limit: list[uuid.UUID] = []
    # The same bindings as the fields' (fields.EncryptedTextField.binding_for), opened and sealed from
    # values_list rows with the per-column work done once: 100,000 rows, several values each.
    status_cipher, pseudonym_cipher, paused_cipher, state_cipher = (
        crypto.ColumnCipher(*_place(name))
        for name in ("status", "pseudonym", "messages_paused", "participation")
    )
    # Most states repeat (everyone who answered has the same one): each is parsed and turned into text once.
    state_texts: dict[ParticipationState, str] = {}
    states: dict[str, ParticipationState] = {}
    # The status and the pause are sealed: every participant of the organisation is read, and who is
    # active is decided here, after opening them (a few microseconds each).
    rows = Participant.objects.filter(organisation_id=organisation_id).values_list(
        "pk",
        _as_stored("status"),
        _as_stored("pseudonym"),
        "is_listed",
        _as_stored("messages_paused"),
        _as_stored("participation"),
        "department_id",
    )
    with every_store():
        for (
            pk,
            sealed_status,
            sealed_pseudonym,
            is_listed,
            sealed_paused,
            sealed_state,
            department,
        ) in rows.iterator(chunk_size=CHUNK):
            row = str(pk)
            status = status_cipher.open(sealed_status, row)
            if status != Participant.Status.ACTIVE:
                # Rewritten as it is: a close that rewrote only the active rows would tell a dump (xmin, row
                # order) who is active at all.
                resealed.append((pk, sealed_state, sealed_status))
                continue
            # Nothing to open in a week without any score.
            did_answer = bool(
                answered is not None
                and sealed_pseudonym
                and answered(pseudonym_cipher.open(sealed_pseudonym, row))
            )
            if did_answer:
                # Whatever the state was, this is the new one: neither it nor the pause need opening.
                state = ParticipationState(last_response_week=week, weeks_without_response=0)
                outcome.responded += 1
                outcome.invited[department] += 1
            else:
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
            text = state_texts.get(state)
            if text is None:
                text = state_texts[state] = state.sealed_text()
            # A fresh nonce for everyone, changed or not.
            # With the status ciphertext read: written only where it is still the same (see below).
            resealed.append((pk, state_cipher.seal(text, row), sealed_status))
        _write_participation(resealed)
        for start in range(0, len(reaching_limit), CHUNK):
            outcome.became_inactive += _make_inactive(reaching_limit[start : start + CHUNK])
    return outcome


def _make_inactive(candidates: list[uuid.UUID]) -> list[str]:
    """Make these participants inactive, those still active once locked, and announce each; their ids.

    Locked and checked again, so a participant who stopped meanwhile is not made inactive. Usually few
    rows, but called in chunks: a whole organisation can fall silent, and a statement takes at most 65,535
    parameters with server-side binding. The statuses are sealed here and written in one statement rather
    than one save() per participant: the same ciphertexts, bound to their rows, without a round trip each.
    """
    status_cipher, pseudonym_cipher = (crypto.ColumnCipher(*_place(name)) for name in ("status", "pseudonym"))
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
        if sealed_pseudonym:
            participant_inactive.send(
                sender=Participant,
                pseudonym=pseudonym_cipher.open(sealed_pseudonym, str(pk)),
                organisation_id=organisation_id,
            )
    return [str(pk) for pk, _p, _o in inactive]


def _write_participation(rows: list[tuple[uuid.UUID, str | None, str]]) -> None:
    """Write sealed participation states by id, only on rows still active (a stop may have committed since
    they were read: a stopped row keeps what the stop left).

    The status is sealed, so "still active" is "its status ciphertext is still the one read": any change of
    status since (a stop, inactivity) sealed it afresh, with a new nonce.
    """
    connection = connections[router.db_for_write(Participant)]
    table = connection.ops.quote_name(Participant._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Every participant row in one statement, fed by COPY: binding 100,000 ids and ciphertexts as
            # array parameters took longer than the update itself. A temporary table lives in this session
            # only (no other connection, no WAL, no dump sees it) and goes with the transaction.
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{_RESEALED}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_RESEALED} (id uuid, sealed text, status text) ON COMMIT DROP"
            )
            with cursor.copy(f"COPY {_RESEALED} (id, sealed, status) FROM STDIN") as copy:
                for resealed in rows:
                    copy.write_row(resealed)
            cursor.execute(
                f"UPDATE {table} AS p SET participation = v.sealed "  # noqa: S608  # nosec B608  # names from the model
                f"FROM {_RESEALED} AS v WHERE p.id = v.id AND p.status = v.status"
            )
            cursor.execute(f"DROP TABLE {_RESEALED}")
        else:
            for start in range(0, len(rows), CHUNK):
                cursor.executemany(
                    f"UPDATE {table} SET participation = %s WHERE id = %s AND status = %s",  # noqa: S608  # nosec B608  # names from the model
                    [(sealed, pk.hex, status) for pk, sealed, status in rows[start : start + CHUNK]],
                )


def reactivate_participant(*, participant: Participant) -> bool:
    """An inactive participant is active again: weekly links from the next round, dossier available again.

    Returns False (changing nothing) when they were not inactive. Meant for the participant's own account
    page, after they opened it through their e-mailed link; ``participant_reactivated`` is sent with P.
    Their count of weeks without a response starts from zero again.
    """
    with every_store():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.status != Participant.Status.INACTIVE:
            return False
        locked.status = Participant.Status.ACTIVE
        previous = participation_of(locked)
        locked.participation = ParticipationState(previous.last_response_week, 0).sealed_text()
        locked.save(update_fields=["status", "participation"])
        if locked.pseudonym:
            participant_reactivated.send(
                sender=Participant, pseudonym=locked.pseudonym, organisation_id=locked.organisation_id
            )
    participant.refresh_from_db()
    return True


def record_contact_consent(*, participant: Participant, text_version: str) -> ConsentRecord:
    """A dated record that the participant agreed to be contacted by a casemanager, under this text."""
    return ConsentRecord.objects.create(
        participant_index=ConsentRecord.index_for(participant.pk),
        kind=ConsentRecord.Kind.CONTACT,
        text_version=text_version,
        recorded_at=timezone.now(),
    )
