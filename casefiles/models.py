"""Casefiles (database 3) and anonymous progress notes (database 2).

A dossier knows its participant only as a pseudonym sealed under the casefiles key, plus a keyed index
to find it; a note knows its dossier only through its own subject, HMAC(notes key, dossier number and the
note's place in its order), which no other note shares. Neither store names anyone.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
import uuid
from collections.abc import Callable, Iterator
from typing import NamedTuple

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from preventicons import crypto
from preventicons.fields import (
    EncryptedTextField,
    SealedBooleanField,
    SealedChoiceField,
    SealedDateField,
    SealedDayOrNoneField,
    SealedIntegerField,
    column_cipher,
    sealed_only,
)


class DossierState(NamedTuple):
    """Whether a dossier is open and, if closed, since when: opened from its sealed columns."""

    pk: uuid.UUID
    number: str
    is_open: bool
    closed_on: dt.date | None

    def closed_by(self, day: dt.date) -> bool:
        """Closed on or before ``day``."""
        return not self.is_open and self.closed_on is not None and self.closed_on <= day


class DossierQuerySet(models.QuerySet["Dossier"]):
    """Dossiers, with whether each is open, and its closing day, decided in Python: both are sealed."""

    def states(self) -> Iterator[DossierState]:
        """The state of each of these dossiers, opened; in chunks (one query), for the nightly batches."""
        rows = self.values_list("pk", "number", "is_open", "closed_on").order_by()
        is_open, closed_on = column_cipher(Dossier, "is_open"), column_cipher(Dossier, "closed_on")
        for pk, number, sealed_open, sealed_day in rows.iterator(chunk_size=2000):
            row = str(pk)
            day = closed_on.open(str(sealed_day), row)
            yield DossierState(
                pk=pk,
                number=number,
                is_open=is_open.open(str(sealed_open), row) == SealedBooleanField.TRUE,
                closed_on=dt.date.fromisoformat(day) if day else None,
            )


class Dossier(models.Model):
    """One participant's casefile, by number. It names nobody: the participant is a sealed pseudonym P (to
    gather their weekly scores) and a sealed participant reference (to read their contact details live,
    when asked), both under the casefiles link key, bound to this row. When they stop, both are overwritten
    with random look-alikes (``forget_participant``); retention destroys them at the term.

    The organisation and the casemanager are ids into the identity store, not relations: stores do not
    join. ``casemanager_id`` is NULL while no casemanager serves the organisation (assignment waits).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(_("dossier number"), max_length=16, unique=True)
    pseudonym = EncryptedTextField(purpose="casefiles_link", null=True)
    pseudonym_index = models.CharField(max_length=64, null=True, blank=True, unique=True)
    participant_ref = EncryptedTextField(purpose="casefiles_link", null=True)
    organisation_id = models.PositiveBigIntegerField(_("organisation id"), null=True, blank=True)
    casemanager_id = models.PositiveBigIntegerField(_("casemanager id"), null=True, blank=True, db_index=True)
    # Open or closed, and the closing day, sealed to the row like Participant.status (decided in Python,
    # DossierQuerySet.states): in clear, "closed today" beside the access log, where only a casemanager's
    # close has a CLOSE entry, told a stop apart (a stop is nobody's act on the staff), and the identity dump
    # of the day named the stopper who had asked for help. Never NULL: every value pads to one length.
    is_open = SealedBooleanField(default=True)
    # Whether the participant is active is not kept here: it is read live (casefiles.assignment.live), so
    # nothing in this store is written in the second someone becomes inactive or comes back.
    # The day only: dossiers are opened by the help-request batch (scores.wellbeing), so neither this date,
    # the random id nor the row order, which within a batch is shuffled, follows the moment someone asked.
    opened_on = models.DateField()
    # The day of the latest help request not yet answered by a first contact (a note); none once answered,
    # and sealed to the row as the closing day is (none sealed as empty text): in clear, a dossier no longer
    # waiting that nobody on the staff wrote in (no ADD_NOTE or CLOSE entry in the access log) could only
    # have been closed by a stop. Decided in Python, never filtered on.
    awaiting_contact_since = SealedDayOrNoneField(blank=True)
    closed_on = SealedDayOrNoneField(blank=True)
    # Which contact consent text the latest help request agreed to (scores.wellbeing.CONTACT_CONSENT_VERSION):
    # the same for everyone who asked under that text, so it tells a dump nothing about a person.
    consent_version = models.CharField(max_length=32, blank=True)
    # How the participant asked to be contacted (scores.wellbeing.CONTACT_CHANNELS), sealed like P: which
    # contact someone chose is theirs to tell the casemanager, not a column to count in a dump.
    contact_channel = EncryptedTextField(null=True)
    # How many notes were ever written to the dossier: the highest place in its order drawn (retention
    # deletes notes, never lowers this). Each note's subject in the notes store is keyed by the number and its
    # place (crypto.note_subject), so this is what finds them, one IN query over every subject (gaps where
    # retention deleted are simply not found). Sealed to the row, every count one ciphertext length; the
    # access log's "added a note" entries tell the count anyway, the sealing keeps it out of this dump alone.
    notes_written = SealedIntegerField(default=0)

    objects = DossierQuerySet.as_manager()

    class Meta:
        verbose_name = _("dossier")
        verbose_name_plural = _("dossiers")
        constraints = [
            *sealed_only(
                "pseudonym",
                "contact_channel",
                "participant_ref",
                "is_open",
                "closed_on",
                "awaiting_contact_since",
                "notes_written",
            )
        ]

    def __str__(self) -> str:
        return self.number

    def closed_by(self, day: dt.date) -> bool:
        """Closed on or before ``day`` (the unlink term's test; the columns are sealed, so asked here)."""
        return not self.is_open and self.closed_on is not None and self.closed_on <= day

    @classmethod
    def unlinked(cls) -> dict[str, object]:
        """The columns of a dossier that leads to nobody: P, the participant reference and the chosen channel
        destroyed, the index with them (retention, at the term). A stop first writes random look-alikes over
        exactly these columns (``forget_participant``), so a column added here is forgotten by both."""
        return {"pseudonym": None, "pseudonym_index": None, "participant_ref": None, "contact_channel": None}

    def forget_participant(self) -> None:
        """Write over every column ``unlinked`` destroys a random value of the same kind and length: the
        dossier leads to nobody (no P, participant or channel of anyone's, an index no P answers to), yet a
        dump reads it as a casemanager's close leaves it until retention unlinks it at the term. A NULL
        there on the day of the close could only be a stop, which the identity store (a participant row
        shredded that day) would name. Save the row afterwards; the values are sealed to it then."""
        look_alikes: dict[str, Callable[[], str | None]] = {
            "pseudonym": crypto.new_pseudonym,
            # A keyed hash is 64 hex digits (crypto.keyed_hash); these are 64 random ones.
            "pseudonym_index": lambda: secrets.token_hex(32),
            # A random id: what reads the reference (assignment.live) finds no participant under it.
            "participant_ref": lambda: str(uuid.uuid4()),
            # Random letters as long as the channel was, and NULL where a request chose none.
            "contact_channel": lambda: _random_letters(self.contact_channel),
        }
        # A column ``unlinked`` lists without a look-alike here is a KeyError, not a column left behind.
        for name in self.unlinked():
            setattr(self, name, look_alikes[name]())


def _random_letters(like: str | None) -> str | None:
    return None if like is None else "".join(secrets.choice(string.ascii_lowercase) for _ in like)


class Deputy(models.Model):
    """A casemanager standing in for another during an absence: from ``starts_on`` to ``ends_on``, both
    days included. Set by the platform admin; every look the deputy takes is logged as a deputy look, which
    the regular casemanager sees on the dossier."""

    casemanager_id = models.PositiveBigIntegerField(_("casemanager id"))
    deputy_id = models.PositiveBigIntegerField(_("deputy id"))
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until"))

    class Meta:
        verbose_name = _("deputy")
        verbose_name_plural = _("deputies")
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__gte=F("starts_on")), name="deputy_period_in_order"),
            models.CheckConstraint(
                condition=~Q(casemanager_id=F("deputy_id")), name="deputy_is_someone_else"
            ),
        ]

    def __str__(self) -> str:
        return f"deputy {self.deputy_id} for {self.casemanager_id}"


class Trajectory(models.Model):
    """A course of help in a dossier: its kind (settings.TRAJECTORY_KINDS), start and end, and sessions.

    What the notary attests (dates, sessions, completion) lives here; its outcome is measured from the
    participant's own weekly scores (casefiles.outcome), never typed.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dossier = models.ForeignKey(Dossier, on_delete=models.CASCADE, related_name="trajectories")
    kind = models.CharField(_("kind"), max_length=32)
    started_on = models.DateField(_("started on"))
    ended_on = models.DateField(_("ended on"), null=True, blank=True)

    class Meta:
        verbose_name = _("trajectory")
        verbose_name_plural = _("trajectories")
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_on__isnull=True) | Q(ended_on__gte=F("started_on")),
                name="trajectory_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} from {self.started_on}"


class TrajectorySession(models.Model):
    """One session of a trajectory: planned for a day, and held on a day (NULL until held)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trajectory = models.ForeignKey(Trajectory, on_delete=models.CASCADE, related_name="sessions")
    planned_on = models.DateField(_("planned on"))
    held_on = models.DateField(_("held on"), null=True, blank=True)

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")

    def __str__(self) -> str:
        return f"session planned on {self.planned_on}"


class ProgressNote(models.Model):
    """Lives in the notes database: no dossier number, no name, only an opaque subject reference.

    The subject is the note's own (crypto.note_subject: the dossier number and the note's place in its
    order, under the notes key): no two rows share one, so a dump cannot gather a dossier's notes, count
    them or follow them from batch to batch. Everything else is sealed to the row, the kind, the day and the
    place in the order as much as the text. In clear they were a trace of each subject (a day, a kind, a
    count on that day) that the access log leaves of each dossier number too (an added note, when): matching
    the two paired a subject with its number without the notes key. Rows arrive through the note batch
    (QueuedNote), many in one transaction in random order, so where a row stands follows no order the log
    shows. What a dump still shows is which rows one batch wrote (casefiles.notes).
    """

    class Kind(models.TextChoices):
        INTAKE = "intake", _("intake")
        SESSION = "session", _("session")
        EVALUATION = "evaluation", _("evaluation")
        CLOSING = "closing", _("closing")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # One per note (crypto.note_subject), indexed for the readers' IN query over a dossier's subjects.
    subject = models.CharField(max_length=64, db_index=True)
    kind = SealedChoiceField(choices=Kind.choices)
    written_on = SealedDateField()
    # 1, 2, 3 ... per dossier: the order notes were written in, which the day alone does not give. Sealed
    # (and inside the subject): casefiles.notes.add_note draws it under the dossier's row lock, one past the
    # dossier's sealed count (Dossier.notes_written).
    sequence = SealedIntegerField()
    text = EncryptedTextField()

    class Meta:
        verbose_name = _("progress note")
        verbose_name_plural = _("progress notes")
        constraints = [*sealed_only("kind", "written_on", "sequence", "text")]

    def __str__(self) -> str:
        # Opens nothing: a list of notes (the admin, a log line) names no kind or day.
        return f"progress note {self.pk}"


class QueuedNote(models.Model):
    """A progress note waiting sealed in the casefiles store for the next note batch (casefiles.notes).

    Written with the access log's entry for it, in the same transaction, and deleted by the batch that
    writes the note to the notes store (casefiles.notes.take_up_queued_notes): notes reach the notes store
    in random order, many in one transaction, so the order of its rows no longer follows the log's. The
    row holds nothing in clear but a random id: the note's subject, kind, day, place in the order, text
    and the moment it was queued are sealed, padded to one length whatever the text.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    note = EncryptedTextField()

    class Meta:
        verbose_name = _("queued note")
        verbose_name_plural = _("queued notes")
        constraints = [*sealed_only("note")]

    def __str__(self) -> str:
        return f"queued note {str(self.pk)[:8]}"


class AccessLogEntry(models.Model):
    """One look at, or act on, a dossier (NEN 7513): who, which dossier, what, when, from where.

    Append-only: written by casefiles.accesslog.record only; on PostgreSQL a trigger refuses UPDATE,
    DELETE and TRUNCATE (migration 0006), and ``chain`` links every row to the one before it under a key
    the database does not hold, so an altered or removed row shows (casefiles.accesslog.verify_chain).

    The staff member is kept as id and as username at the time: the log must still say who looked after
    an account is renamed or removed, and it cannot point into the identity store (no relation across
    stores). A staff username and a staff workstation's address are staff data about staff work, which
    NEN 7513 requires the log to hold; no row names a participant (only the dossier number).
    """

    class Action(models.TextChoices):
        VIEW_DOSSIER = "view_dossier", _("viewed the dossier")
        VIEW_SCORES = "view_scores", _("viewed the scores")
        REVEAL_CONTACT = "reveal_contact", _("revealed the contact details")
        ADD_NOTE = "add_note", _("added a note")
        VIEW_NOTES = "view_notes", _("viewed the notes")
        REASSIGN = "reassign", _("reassigned the dossier")
        DEPUTY_VIEW = "deputy_view", _("viewed as deputy")
        SEARCH = "search", _("searched for a dossier")
        VIEW_DASHBOARD = "view_dashboard", _("viewed the dashboard")
        CHANGE_TRAJECTORY = "trajectory", _("changed a trajectory")
        CLOSE = "close", _("closed the dossier")
        # The auditor's spot check of one ledger reference (notary.views.spot_check): note counts by kind.
        # No dossier number: the entry names the reference only, as the auditor's page does.
        SPOT_CHECK = "spot_check", _("spot-checked a trajectory's notes")

    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    at = models.DateTimeField(_("when"), editable=False)
    staff_user_id = models.PositiveBigIntegerField(_("staff member id"), editable=False)
    staff_username = models.CharField(_("staff member"), max_length=150, editable=False)
    # Blank for a search that found nothing (the string searched for is not kept), the dashboard, and the
    # auditor's spot check (which names the ledger reference in ``detail``, never the dossier).
    dossier_number = models.CharField(_("dossier"), max_length=16, blank=True, editable=False)
    action = models.CharField(_("action"), max_length=32, choices=Action.choices, editable=False)
    # The client address by the proxy rules (preventicons.clients); null for acts without a request.
    client_address = models.GenericIPAddressField(_("from"), null=True, blank=True, editable=False)
    # The code's own words (e.g. "to staff member 12"), never text a person typed.
    detail = models.CharField(_("detail"), max_length=200, blank=True, editable=False)
    chain = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        ordering = ["sequence"]
        # The dossier page lists the looks others took at it (a deputy's, the admin's reassignment).
        indexes = [models.Index(fields=["dossier_number", "sequence"], name="access_log_by_dossier")]

    def __str__(self) -> str:
        return f"access log entry {self.sequence}"
