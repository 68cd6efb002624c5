"""Identity store: organisations, agreements, staff accounts and participants (contact data sealed)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import connections, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from participants.contact import normalise_mobile
from preventicons.crypto import blind_index_email, blind_index_phone, keyed_hash, keyed_hasher, open_sealed
from preventicons.fields import (
    ContactHashField,
    EncryptedTextField,
    SealedBooleanField,
    SealedChoiceField,
    open_column,
    sealed_only,
)


class Organisation(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    sector = models.CharField(
        _("sector"), max_length=100, help_text=_("The sector (branche) it is compared with.")
    )
    # The CBS "Standaard Bedrijfsindeling" code (2008 edition), two to five digits without dots: the employer
    # reports compare the organisation with the others in its SBI division (the first two digits).
    sbi_code = models.CharField(
        _("SBI code"),
        max_length=5,
        blank=True,
        validators=[
            RegexValidator(r"\A[0-9]{2,5}\Z", _("Enter the SBI code as two to five digits, without dots."))
        ],
        help_text=_("The CBS SBI code; reports compare with organisations of the same first two digits."),
    )
    arbo_provider = models.CharField(_("ARBO provider"), max_length=200, blank=True)
    contract_start = models.DateField(_("contract start"), null=True, blank=True)
    contract_end = models.DateField(_("contract end"), null=True, blank=True)
    # When the weekly round goes out, in Europe/Amsterdam time (scores/rounds.py): 0 is Monday.
    round_weekday = models.PositiveSmallIntegerField(_("weekday of the weekly round"), default=0)
    round_hour = models.PositiveSmallIntegerField(_("hour of the weekly round"), default=8)
    # What the participants' blind indexes are keyed with besides the key file (preventicons.crypto): random,
    # and drawn anew by every request batch that applies a participant's act, which rewrites every row of
    # the organisation under it (participants.rewrite). Not secret: without the key it computes nothing.
    index_salt = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(round_weekday__lte=6, round_hour__lte=23), name="organisation_round_moment_valid"
            ),
            models.CheckConstraint(
                condition=Q(contract_end__isnull=True)
                | Q(contract_start__isnull=True)
                | Q(contract_end__gte=models.F("contract_start")),
                name="organisation_contract_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, but never the index salt of an organisation that exists (only participants.rewrite draws it).

        A whole save (the admin's change form) writes every column as it read them: read before a request
        batch or a night renewed the salt and written after (its UPDATE waits for their hold on the row), it
        put the old salt back under every row's new indexes, and every lookup of the organisation found
        nobody (tests/test_attacks_review9.py).
        """
        if not self._state.adding and kwargs.get("update_fields") is None and not kwargs.get("force_insert"):
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "index_salt"
            ]
        super().save(*args, **kwargs)


class Department(models.Model):
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="departments", verbose_name=_("organisation")
    )
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["organisation", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="department_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.organisation} / {self.name}"


class ProcessingAgreement(models.Model):
    """A signed processing agreement (verwerkersovereenkomst). No processing starts before one is recorded."""

    class Party(models.TextChoices):
        ORGANISATION = "organisation", _("organisation")
        CASEMANAGER = "casemanager", _("casemanager")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    party = models.CharField(_("party"), max_length=16, choices=Party.choices)
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="agreements",
        verbose_name=_("organisation"),
    )
    casemanager = models.ForeignKey(
        "StaffUser",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="agreements",
        verbose_name=_("casemanager"),
    )
    signed_on = models.DateField(_("signed on"))
    signer = EncryptedTextField()
    document_sha256 = models.CharField(_("SHA-256 of the signed document"), max_length=64)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("processing agreement")
        verbose_name_plural = _("processing agreements")
        constraints = [
            models.CheckConstraint(
                condition=(Q(party="organisation", organisation__isnull=False, casemanager__isnull=True))
                | Q(party="casemanager", casemanager__isnull=False, organisation__isnull=True),
                name="agreement_party_matches",
            ),
            models.CheckConstraint(
                condition=Q(document_sha256__regex=r"^[0-9a-f]{64}$"), name="agreement_sha256_hex"
            ),
            *sealed_only("signer"),
        ]

    def __str__(self) -> str:
        return f"agreement {self.party} signed {self.signed_on}"


class StaffUser(AbstractUser):
    """A staff login: casemanager, employer (HR), auditor or platform admin; roles are groups.

    Employer staff belong to one organisation and see only its aggregates. Casemanagers and auditors
    have no organisation: they are scoped by assigned dossiers and attestations.
    """

    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff",
        verbose_name=_("organisation"),
    )

    class Meta:
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")


class CasemanagerLink(models.Model):
    """A casemanager serves an organisation: dossiers of its participants may be assigned to them.

    Made only through participants.casemanagers.link_casemanager, which asks for the casemanager role and
    the casemanager's own signed processing agreement first.
    """

    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="casemanager_links",
        verbose_name=_("organisation"),
    )
    casemanager = models.ForeignKey(
        StaffUser,
        on_delete=models.CASCADE,
        related_name="casemanager_links",
        verbose_name=_("casemanager"),
    )
    linked_on = models.DateField(_("linked on"))

    class Meta:
        verbose_name = _("casemanager of an organisation")
        verbose_name_plural = _("casemanagers of organisations")
        ordering = ["organisation", "casemanager"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "casemanager"], name="casemanager_link_unique")
        ]

    def __str__(self) -> str:
        return f"casemanager {self.casemanager_id} serves organisation {self.organisation_id}"


# The rows a running request batch's acts change, by id as text (Participant.to_act_on): written once, with
# every other row, by participants.rewrite. None outside a batch.
_BATCH_ROWS: ContextVar[dict[str, Participant] | None] = ContextVar("participant_batch_rows", default=None)


def batch_copies() -> list[Participant]:
    """The copies of the rows a running request batch's acts changed so far (none outside a batch)."""
    return list((_BATCH_ROWS.get() or {}).values())


def index_salt(organisation_id: int) -> str:
    """The organisation's current index salt (Organisation.index_salt), read from the database."""
    return str(Organisation.objects.values_list("index_salt", flat=True).get(pk=organisation_id))


def hold_index_salts(organisation_ids: Iterable[int] | None = None) -> dict[int, str]:
    """The index salts of these organisations (all when None), held until the caller's transaction ends.

    FOR SHARE on PostgreSQL, in pk order: a request batch that would draw new salts and rewrite every row
    (participants.rewrite, which takes every organisation FOR NO KEY UPDATE) waits until the caller has
    written what it computed under these salts, and the caller waits for a running batch. Many holders do
    not wait for one another. On SQLite, which runs one writer at a time, a plain read.
    """
    query = Organisation.objects.order_by("pk")
    if organisation_ids is not None:
        query = query.filter(pk__in=list(organisation_ids))
    connection = connections[query.db]
    if connection.vendor != "postgresql":
        return dict(query.values_list("pk", "index_salt"))
    if not connection.in_atomic_block:
        raise RuntimeError("hold_index_salts holds them for a transaction: call it inside one")
    sql, params = query.values_list("pk", "index_salt").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} FOR SHARE", params)
        return {int(pk): str(salt) for pk, salt in cursor.fetchall()}


class ParticipantQuerySet(models.QuerySet["Participant"]):
    """Participants, with the sealed state (status, messages paused) decided in Python, never in SQL."""

    def states(self) -> Iterator[tuple[uuid.UUID, str, bool]]:
        """(id, status, messages paused) of each row, opened; in chunks, for batches of any size."""
        rows = self.values_list("pk", "status", "messages_paused").order_by()
        for pk, status, paused in rows.iterator(chunk_size=5000):
            yield (
                pk,
                open_column(Participant, "status", pk, status) or "",
                open_column(Participant, "messages_paused", pk, paused) == SealedBooleanField.TRUE,
            )

    def ids_with_status(self, *statuses: str, paused: bool | None = None) -> list[uuid.UUID]:
        """The ids of these rows whose opened status is in ``statuses`` (any, without), pause if given."""
        return [
            pk
            for pk, status, is_paused in self.states()
            if (not statuses or status in statuses) and (paused is None or is_paused == paused)
        ]

    def with_status(self, *statuses: str, paused: bool | None = None) -> ParticipantQuerySet:
        """These rows whose opened status is one of ``statuses``: for small sets (one person, a test)."""
        return self.filter(pk__in=self.ids_with_status(*statuses, paused=paused))

    def without_status(self, *statuses: str) -> ParticipantQuerySet:
        """These rows whose opened status is none of ``statuses``: for small sets."""
        return self.filter(pk__in=[pk for pk, status, _paused in self.states() if status not in statuses])

    def set_state(self, **values: Any) -> int:
        """Set columns, sealed ones included, row by row (save() seals them); how many rows.

        ``update()`` cannot write a sealed column: the ciphertext is bound to its row.
        """
        count = 0
        for participant in self:
            for name, value in values.items():
                setattr(participant, name, value)
            participant.save(update_fields=list(values))
            count += 1
        return count


class Participant(models.Model):
    """An employee on the address list. Contact data and the pseudonym link exist only sealed.

    The random primary key is known before the first save, so each ciphertext is bound to its row.
    """

    class Status(models.TextChoices):
        INVITED = "invited", _("invited")
        ACTIVE = "active", _("active")
        DECLINED = "declined", _("declined")
        STOPPED = "stopped", _("stopped")
        # No response for settings.INACTIVE_AFTER_WEEKS closed weeks: no weekly links, dossier unavailable,
        # until they come back (participants.participation.reactivate_participant).
        INACTIVE = "inactive", _("inactive")

    id = models.UUIDField(_("id"), primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="participants", verbose_name=_("organisation")
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="participants",
        verbose_name=_("department"),
    )
    # Sealed, as is messages_paused (issue #14, F9): in clear, a department of one would tell a dump whether
    # its one person declined, paused, fell silent or stopped. The application opens them and decides in
    # Python; no query filters on them (the database cannot).
    status = SealedChoiceField(_("status"), choices=Status.choices, default=Status.INVITED)
    # False once a new full address list no longer names them: no more messages, anonymised on schedule.
    is_listed = models.BooleanField(_("on the address list"), default=True)
    unlisted_on = models.DateField(null=True, blank=True)
    # Restriction / objection: the participant paused all messages. Sealed, like status.
    messages_paused = SealedBooleanField(default=False)
    # Never written by anyone but their default: the same for everyone (kept for the data export's shape).
    prefers_email = models.BooleanField(default=True)
    prefers_sms = models.BooleanField(default=True)
    # Every sealed column below holds a ciphertext in every row, from the row's first save to long after a
    # stop (issue #14): "none" is sealed as empty text (none_sealed), padded to the column's one length
    # (pad_to: a name, address or number of up to 64 bytes, a pseudonym of 32, a participation state of
    # 48), and erasing a value (Participant.shred) leaves such a look-alike of the length the value had. A
    # NULL, or a shorter ciphertext, would tell a dump who never enrolled, who chose a private address, and
    # who stopped or was anonymised. In Python none is None, as before; no query can test for it.
    name = EncryptedTextField(null=True, pad_to=64, none_sealed=True)
    email = EncryptedTextField(null=True, pad_to=64, none_sealed=True)
    mobile = EncryptedTextField(null=True, pad_to=64, none_sealed=True)
    # Keyed blind indexes (HMAC), so a re-imported list finds the same person without any plaintext. Never
    # NULL in a row (issue #14): a row without an index (its address held by another person, or erased by a
    # stop) holds a random look-alike of 64 hex characters instead (ContactHashField), which no lookup can
    # match and which collides with nothing in the unique constraints.
    email_index = ContactHashField(max_length=64, null=True, blank=True)
    mobile_index = ContactHashField(max_length=64, null=True, blank=True)
    # Keyed hashes of the e-mail address and mobile number the EMPLOYER lists this person under
    # (invitations.listed_hashes: HMAC under the blind_index key, with their own domain label and the
    # organisation), kept apart from the blind indexes of the contact data the participant uses now. A
    # re-imported list is matched against these only: were it matched against the current contacts, a
    # participant who moved to a private address and number would look new to the list, be invited again,
    # and so show the employer that they take part. They stay on the row when the person stops or is
    # anonymised (Participant.shredded leaves them), so a re-imported list meets a stopped row exactly as
    # it meets anyone else's, and two dumps around a stop show no change in them (review 4); never
    # readable, never joined to anything outside this table.
    listed_email_hash = ContactHashField(max_length=64, null=True, blank=True)
    listed_mobile_hash = ContactHashField(max_length=64, null=True, blank=True)
    # The link to the pseudonymous scores, sealed under its own purpose key. Destroyed when they stop.
    pseudonym = EncryptedTextField(purpose="pseudonym_link", null=True, none_sealed=True)
    # Participation (the last week answered, closed weeks without an answer), sealed JSON of a fixed width.
    # Written only by the week-close batch (participants/participation.py), which rewrites it for every
    # row of the organisation at every close: in clear, or rewritten only for those who answered, it would
    # tell a dump who answered which week. None (sealed as empty text) until their first closed week.
    participation = EncryptedTextField(null=True, pad_to=64, none_sealed=True)

    class WeeklyChannel(models.TextChoices):
        SMS = "sms", _("text message")
        PRIVATE_EMAIL = "private_email", _("private e-mail address")
        WORK_EMAIL = "work_email", _("work e-mail address")

    # Where the weekly messages go, chosen (and proven) by the participant at enrolment: the only address
    # the weekly round writes to. None until chosen, and after a stop; the round then writes to nobody.
    # Sealed (issue #14): in clear, its NULL told a dump who never enrolled and who stopped, its value who
    # chose a private address.
    weekly_channel = SealedChoiceField(choices=WeeklyChannel.choices, null=True, none_sealed=True)
    # A private address the participant proved by a code; never one the employer supplied or can read.
    private_email = EncryptedTextField(null=True, pad_to=64, none_sealed=True)
    # Whether the employer's "send invitations" already started this person's fixed invitation schedule
    # (participants/invitations.py): it starts once per listed person, whatever they did since.
    was_invited = models.BooleanField(default=False)

    objects = ParticipantQuerySet.as_manager()

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "email_index"], name="participant_unique_email"),
            models.UniqueConstraint(
                fields=["organisation", "mobile_index"], name="participant_unique_mobile"
            ),
            models.UniqueConstraint(
                fields=["organisation", "listed_email_hash"], name="participant_unique_listed_email"
            ),
            models.UniqueConstraint(
                fields=["organisation", "listed_mobile_hash"], name="participant_unique_listed_mobile"
            ),
            *sealed_only(
                "name",
                "email",
                "mobile",
                "pseudonym",
                "private_email",
                "participation",
                "status",
                "messages_paused",
                "weekly_channel",
            ),
        ]

    def __str__(self) -> str:
        # Never the name: this string ends up in admin pages, logs and error reports.
        return f"participant {str(self.pk)[:8]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """On the first save, a participant created with indexed contacts is listed under them, unless told.

        The import sets the listed hashes itself (and bulk_create skips this); other ways of creating a
        participant as the import would (the demo data, tests) get them here, so a list can match them.
        """
        if self._state.adding and self.organisation_id is not None:
            from participants.invitations import listed_hashes

            email_hash, mobile_hash = listed_hashes(
                organisation_id=self.organisation_id,
                email=self.email if self.email_index else None,
                mobile=self.mobile if self.mobile_index else None,
            )
            if self.listed_email_hash is None:
                self.listed_email_hash = email_hash
            if self.listed_mobile_hash is None:
                self.listed_mobile_hash = mobile_hash
        if not self._state.adding and self.is_batch_copy():
            # Written with every other row by participants.rewrite.
            return
        super().save(*args, **kwargs)

    @classmethod
    def to_act_on(cls, pk: uuid.UUID | str) -> Participant:
        """The row an act (a pause, a stop, a correction, a rejoin, a decline) changes, locked.

        Inside a request batch (``participants.rewrite.every_row_once``) it is the batch's one copy of the
        row, shared by every act the batch applies to that person, and its save() writes nothing: the batch
        writes every row of every organisation once, alike, after the acts (issue 14). Elsewhere (a test,
        a one-off) the row itself, locked for the caller's transaction.
        """
        rows = _BATCH_ROWS.get()
        if rows is None:
            return cls.objects.select_for_update().get(pk=pk)
        key = str(pk)
        if key not in rows:
            # Not locked: the batch holds every organisation, which every writer of this row takes first.
            rows[key] = cls.objects.get(pk=pk)
        return rows[key]

    @classmethod
    def to_act_on_each(cls, pks: Sequence[uuid.UUID | str]) -> list[Participant]:
        """to_act_on for many rows at once, inside a pass (``participants.rewrite.every_row_once``): the
        pass's copies, read in bounded chunks where it holds none yet; rows that are gone are left out."""
        rows = _BATCH_ROWS.get()
        if rows is None:
            raise RuntimeError("to_act_on_each acts on a pass's copies: call it inside every_row_once")
        missing = [pk for pk in pks if str(pk) not in rows]
        for start in range(0, len(missing), 2_000):
            for row in cls.objects.filter(pk__in=missing[start : start + 2_000]):
                rows[str(row.pk)] = row
        return [rows[str(pk)] for pk in pks if str(pk) in rows]

    def is_batch_copy(self) -> bool:
        """Whether this is a running request batch's copy of its row (to_act_on): it alone holds what the
        batch's acts changed until the batch writes every row, so it is neither saved nor read back."""
        rows = _BATCH_ROWS.get()
        return rows is not None and rows.get(str(self.pk)) is self

    def refresh_unless_batch_copy(self) -> None:
        """refresh_from_db, but for a batch's copy (is_batch_copy), which the table does not hold yet."""
        if not self.is_batch_copy():
            self.refresh_from_db()

    @classmethod
    def shredded(cls) -> dict[str, object]:
        """The columns of a stopped participant: every contact detail, index, P and participation destroyed.

        One list for every way out (their own stop, the nightly anonymisation), so a contact column added
        later is destroyed by all of them or by none (tests/participants/test_retention.py compares them).
        None here is "destroyed": shred() writes a look-alike of the same length, never NULL. The department
        stays: the employer's own list sets it, and erasing it would date the stop in the row. So do the
        listed hashes: keyed hashes of what the employer's list says (never of what the participant gave),
        bound to the organisation, kept so that a re-imported list never invites them again. Moved to a
        DepartedContact, as they were until review 4, they named the stopper to two dumps around the batch:
        the only row whose listed hashes changed, and the one whose old hashes turned up in that table.
        """
        return {
            "name": None,
            "email": None,
            "private_email": None,
            "mobile": None,
            "email_index": None,
            "mobile_index": None,
            "pseudonym": None,
            "participation": None,
            "weekly_channel": None,
            "status": cls.Status.STOPPED,
        }

    @classmethod
    def can_take_part(cls, *, status: str, is_listed: bool, paused: bool) -> bool:
        """Whether a participant in this state can take part this week: active, on the list, not paused.

        The one rule for who the weekly round sends a link and whose silence the week close counts. The
        status and the pause are sealed, so callers open them (row by row, or in bulk) and ask here.
        """
        return status == cls.Status.ACTIVE and is_listed and not paused

    def can_take_part_this_week(self) -> bool:
        """Whether this participant can take part this week (see can_take_part)."""
        return self.can_take_part(
            status=self.status, is_listed=self.is_listed, paused=bool(self.messages_paused)
        )

    def set_email(self, email: str, *, indexed: bool = True, salt: str | None = None) -> list[str]:
        """Seal this e-mail address with its blind index; the fields to save.

        ``indexed=False`` stores it without an index: another participant of the organisation holds the
        address as their own (the import), and the unique index must stay theirs. ``salt`` is the
        organisation's index salt as the caller read it under its lock; read here when not given.
        """
        self.email = email
        # Without an index, a look-alike (ContactHashField): never NULL, never the index of this address.
        self.email_index = blind_index_email(email, self._salt(salt)) if indexed else None
        return ["email", "email_index"]

    def set_mobile(self, mobile: str, *, indexed: bool = True, salt: str | None = None) -> list[str]:
        """Seal this mobile number, normalised by participants.contact, with its blind index; fields to save.

        Raises contact.MobileRefused for a number the import, enrolment and account page would all refuse.
        ``indexed`` and ``salt`` as for set_email.
        """
        number = normalise_mobile(mobile)
        self.mobile = number
        self.mobile_index = blind_index_phone(number, self._salt(salt)) if indexed else None
        return ["mobile", "mobile_index"]

    def _salt(self, salt: str | None) -> str:
        # Read now, not from a cached organisation: a request batch may have drawn a new one since. A row in
        # no organisation yet indexes under the salt every organisation starts with.
        if salt is not None:
            return salt
        if self.organisation_id is None:
            return ""
        return index_salt(self.organisation_id)

    @classmethod
    def sealed_columns(cls) -> list[str]:
        """Every sealed column of the row (contact data, P, participation, status, pause, channel)."""
        return [field.name for field in cls._meta.concrete_fields if isinstance(field, EncryptedTextField)]

    def reseal(self) -> list[str]:
        """Open every sealed column and set it again, so that save() seals each afresh; the names to save.

        A ciphertext never opened is written back as it was (EncryptedTextField.pre_save). Every act the
        request batch applies to a row (a pause, a rejoin, a correction, a stop) rewrites all of them, so two
        dumps around the batch show the same columns changed whatever the act was (issue 14), not the one
        column a pause touches beside the many a stop destroys.
        """
        names = self.sealed_columns()
        deferred = self.get_deferred_fields() & set(names)
        if deferred:
            self.refresh_from_db(fields=list(deferred))
        for name in names:
            setattr(self, name, getattr(self, name))
        return names

    def shred(self) -> None:
        """Give this row the columns of shredded() and save them (sealed ones sealed to this row).

        Each destroyed sealed value becomes empty text sealed at the length the value had, each destroyed
        hash a random look-alike (ContactHashField): the row reads as it did, only the key could tell.
        """
        values = self.shredded()
        deferred = self.get_deferred_fields() & set(self.sealed_columns())
        if deferred:
            # Their ciphertexts, for the length the look-alikes must have.
            self.refresh_from_db(fields=list(deferred))
        kept = [name for name in self.sealed_columns() if name not in values]
        for name in kept:
            # Sealed afresh, as every act of the batch leaves them (reseal).
            setattr(self, name, getattr(self, name))
        for name, value in values.items():
            field = self._meta.get_field(name)
            if value is None and isinstance(field, EncryptedTextField):
                value = field.look_alike(self)
            setattr(self, name, value)
        self.save(update_fields=[*values, *kept])


class InvitationSchedule(models.Model):
    """One listed person's fixed run of invitation messages: the invitation, then the reminders.

    It runs to the end whatever the person does (joins, declines, stops, stays silent), so the mailbox and
    phone the employer supplied receive the same messages for everyone. That is why it keeps its own sealed
    copy of the addresses the employer supplied: a stop destroys the participant's contact data at once, but
    the reminders must still arrive like everyone else's. The row, and with it the copy, is deleted after
    the last message (at most INVITATION_REMINDERS weeks later).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    participant = models.OneToOneField(
        Participant, on_delete=models.SET_NULL, null=True, blank=True, related_name="invitation_schedule"
    )
    email = EncryptedTextField(null=True)
    mobile = EncryptedTextField(null=True)
    # 0 = the invitation, 1.. = the reminders; the step that is due next at ``next_due_at``.
    next_step = models.PositiveSmallIntegerField(default=0)
    next_due_at = models.DateTimeField()

    class Meta:
        verbose_name = _("invitation schedule")
        verbose_name_plural = _("invitation schedules")
        indexes = [models.Index(fields=["next_due_at"], name="invitation_schedule_due")]
        constraints = [*sealed_only("email", "mobile")]

    def __str__(self) -> str:
        return f"invitation schedule {str(self.pk)[:8]}"


class DepartedContact(models.Model):
    """Someone who stopped or declined before review 4, as the employer listed them: keyed hashes only.

    No new rows: since review 4 a stop and the nightly anonymisation leave the listed hashes on the
    participant row (Participant.shredded), where an import matches them like anyone's. The rows written
    before stay, read by the same lookups, since nothing says which stopped row each one came from.
    One row per person, holding both hashes together (the participant's listed hashes, moved here when they
    left), so a re-imported list meets a departed person exactly as it would meet them still on the list:
    a row carrying either hash is that person (never invited again, no count changes), and a row carrying
    one of their hashes next to someone else's, or two rows each carrying one, is refused in the same words.
    Only the hashes (HMAC under the blind_index key with their own domain label, bound to the organisation)
    and the organisation: no participant, no department, no time. Rows from before the hashes were paired
    hold one hash in both columns (migration 0013), which equals no hash of the other kind.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    email_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    mobile_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

    class Meta:
        verbose_name = _("departed contact")
        verbose_name_plural = _("departed contacts")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "email_hash"], name="departed_unique_email"),
            models.UniqueConstraint(fields=["organisation", "mobile_hash"], name="departed_unique_mobile"),
        ]

    def __str__(self) -> str:
        return f"departed contact {str(self.pk)[:8]}"


class Invitation(models.Model):
    """An enrolment link. Only the token's hash is stored; the link expires and is single-use.

    Each link the invitation schedule sends keeps, sealed, the mobile number the employer supplied for it:
    the link's SMS code goes there, whatever the person did since, so the phone the employer supplied receives
    the same texts for everyone it listed. When the person stops, the link keeps naming their row, as every
    link does (so the table does not tell who stopped); it opens nothing, since the row is stopped, and keeps
    its number until the link is purged (participants.retention), so its code still goes out like anyone
    else's. Past that every link goes, whatever its person did.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    participant = models.ForeignKey(
        Participant, on_delete=models.SET_NULL, null=True, blank=True, related_name="invitations"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    # No used_at (dropped by participants 0029): beside participant_id in clear it told a dump whose row
    # enrolled, and when. The participant's sealed status refuses a second enrolment through any link.
    mobile = EncryptedTextField(null=True)

    class Meta:
        constraints = [*sealed_only("mobile")]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")

    def __str__(self) -> str:
        return f"invitation {str(self.pk)[:8]}"

    @property
    def invitee(self) -> Participant:
        """The participant of a link that still opens something; only asked after link_state said so."""
        if self.participant is None:
            raise Participant.DoesNotExist("this invitation link opens nothing")
        return self.participant


class NamedSealedQuerySet(models.QuerySet[Any]):
    """Rows that name their participant only in a sealed ``participant_ref`` (account links, codes)."""

    def naming(self, participant_ids: Iterable[uuid.UUID | str]) -> models.QuerySet[Any]:
        """These rows that name one of the participants: every row's reference opened, in Python.

        For the short-lived tables that have one (both purged within a day), which a stop or an
        anonymisation must clear of a participant's rows, whatever hour they were made in.
        """
        wanted = {str(pk) for pk in participant_ids}
        if not wanted:
            return self.none()
        field = self.model._meta.get_field("participant_ref")
        assert isinstance(field, EncryptedTextField)
        found = []
        for pk, sealed in self.values_list("pk", "participant_ref").iterator(chunk_size=2000):
            if open_sealed(str(sealed), field.binding_for(_Row(pk))) in wanted:
                found.append(pk)
        return self.filter(pk__in=found)


@dataclass(frozen=True)
class _Row:
    pk: object


class VerificationCode(models.Model):
    """A 6-digit code sent by e-mail or SMS: stored as a keyed hash, 10 minutes, single use, 5 tries.

    It names its participant only sealed (``participant_ref``) and by a keyed hash that changes every clock
    hour (``participant_index``, participants.references): a code is often written right after its owner's
    tap, and a participant id in clear would pair the two by ``xmin`` (issue #14, F7).
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("e-mail")
        SMS = "sms", _("SMS")

    class Purpose(models.TextChoices):
        ENROL = "enrol", _("enrolment")
        CHANGE = "change", _("change of contact data")
        STOP = "stop", _("stopping")
        # The second factor of opening the account: a code by SMS after the e-mailed link.
        ACCOUNT = "account", _("opening the account")
        # The SMS code that opens an invitation link: nothing about the person shows before it.
        OPEN_LINK = "open_link", _("opening the invitation")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The participant's id, sealed to this row.
    participant_ref = EncryptedTextField()
    # participants.references.hour_index(participant id, created_at): finds the codes of the last hour.
    participant_index = models.CharField(max_length=64)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    code_hash = models.CharField(max_length=64)
    # Where the code went when it verifies a new address or number (sealed): it replaces the old one
    # only once proven.
    target = EncryptedTextField(null=True)
    # To the microsecond: both codes of a round share it, which is how a round is told from the next one.
    # It orders codes among themselves, as xmin does anyway; it names nobody and no score row has a time.
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)

    objects = NamedSealedQuerySet.as_manager()

    class Meta:
        verbose_name = _("verification code")
        verbose_name_plural = _("verification codes")
        indexes = [models.Index(fields=["participant_index", "created_at"], name="code_participant_hour")]
        constraints = [
            models.CheckConstraint(condition=Q(failed_attempts__lte=5), name="code_at_most_five_failures"),
            *sealed_only("participant_ref", "target"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} code {str(self.pk)[:8]}"

    @property
    def participant_id(self) -> str:
        """The id of the participant this code is for, opened."""
        return str(self.participant_ref)


class CodeFailure(models.Model):
    """One wrong code, dated by when it was entered: the hourly budget of wrong codes counts these.

    Counted by the moment of the guess, not by when its code was made: a code lives minutes, and counting
    its failures by its creation let about twelve guesses into an hour whose budget was ten. Like a code, it
    names its participant only by a keyed hash of the id and the clock hour (participants.references), never
    by an id in clear: a wrong guess is often typed right after a tap, and ``xmin`` would pair the two
    (issue #14, F7). Purged an hour after the guess (participants.retention) and when the participant stops.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    participant_index = models.CharField(max_length=64)
    failed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("wrong code")
        verbose_name_plural = _("wrong codes")
        indexes = [models.Index(fields=["participant_index", "failed_at"], name="code_failure_hour_at")]

    def __str__(self) -> str:
        return f"code failure {str(self.pk)[:8]}"


# Consent indexes are looked up this many at a time: one query finds all of nearly everyone's records.
CONSENT_INDEX_STEP = 16
# Bound the IN lists of one query well below the 65,535 parameters a statement takes.
CONSENT_INDEXES_PER_QUERY = 4_000
_CONSENT_INDEX_LABEL = "consent-record"
_CONSENT_LOCK_LABEL = "consent-lock"


@dataclass(frozen=True)
class ConsentEntry:
    """One consent record to write (ConsentRecordQuerySet.add_each)."""

    participant_id: uuid.UUID | str
    kind: str
    text_version: str
    recorded_at: dt.date | dt.datetime


def _consent_day(moment: dt.date | dt.datetime) -> dt.date:
    """The day of ``moment`` in the site's time zone: a consent record keeps no time of day."""
    if isinstance(moment, dt.datetime):
        return timezone.localdate(moment, timezone.get_default_timezone())
    return moment


def _lock_consents_of(participant_ids: Iterable[uuid.UUID | str], using: str) -> None:
    """Serialise the writing of these participants' consent records until the transaction ends.

    A transaction-level advisory lock on a keyed 63-bit number per participant, taken in one order: it
    writes nothing to any row, where ``SELECT ... FOR UPDATE`` on the participant row would stamp this
    transaction into its ``xmax`` and pair it with the record written here (participants.references). On
    SQLite the database serialises writers itself. Call inside a transaction.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    hashed = keyed_hasher("blind_index", _CONSENT_LOCK_LABEL)
    keys = sorted({int(hashed(str(pk))[:16], 16) & 0x7FFF_FFFF_FFFF_FFFF for pk in participant_ids})
    if keys:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(%s::bigint[]) AS k) AS keys",
                [keys],
            )


class ConsentRecordQuerySet(models.QuerySet["ConsentRecord"]):
    def of(self, participant_id: uuid.UUID | str) -> ConsentRecordQuerySet:
        """This participant's consent records, each found by its own keyed index (never an id in clear)."""
        return self.filter(participant_index__in=list(self.owners([participant_id])))

    def owners(self, participant_ids: Iterable[uuid.UUID | str]) -> dict[str, uuid.UUID | str]:
        """The index of every stored consent record of these participants, with its participant.

        Record n of a participant has the index ``ConsentRecord.index_for(id, n)``, n = 0, 1, 2, ... with
        no gap (a person's records are only ever deleted all together): the walk asks for
        ``CONSENT_INDEX_STEP`` indexes of each participant at a time and goes on for those whose step was
        full. It reads every record of the table, whatever this queryset filters on.
        """
        return {index: pk for index, (pk, _n) in self._walk(participant_ids).items()}

    def _walk(self, participant_ids: Iterable[uuid.UUID | str]) -> dict[str, tuple[uuid.UUID | str, int]]:
        everything = self.model._base_manager.using(self.db)
        hashed = keyed_hasher("blind_index", _CONSENT_INDEX_LABEL)
        found: dict[str, tuple[uuid.UUID | str, int]] = {}
        pending = list(dict.fromkeys(participant_ids))
        start = 0
        while pending:
            asked = {
                hashed(f"{pk}:{n}"): (pk, n)
                for pk in pending
                for n in range(start, start + CONSENT_INDEX_STEP)
            }
            indexes = list(asked)
            stored: list[str] = []
            for part in range(0, len(indexes), CONSENT_INDEXES_PER_QUERY):
                stored.extend(
                    everything.filter(
                        participant_index__in=indexes[part : part + CONSENT_INDEXES_PER_QUERY]
                    ).values_list("participant_index", flat=True)
                )
            hits: dict[uuid.UUID | str, int] = {}
            for index in stored:
                found[index] = asked[index]
                hits[asked[index][0]] = hits.get(asked[index][0], 0) + 1
            pending = [pk for pk in pending if hits.get(pk) == CONSENT_INDEX_STEP]
            start += CONSENT_INDEX_STEP
        return found

    def lock_for(self, participant_ids: Iterable[uuid.UUID | str]) -> None:
        """Hold these participants' consent-writing lock until the transaction ends (without a row lock)."""
        _lock_consents_of(participant_ids, self.db)

    def add(
        self,
        participant_id: uuid.UUID | str,
        *,
        kind: str,
        text_version: str,
        recorded_at: dt.date | dt.datetime,
    ) -> ConsentRecord:
        """Write one consent record of this participant, under the next index of theirs (add_each)."""
        (record,) = self.add_each([ConsentEntry(participant_id, kind, text_version, recorded_at)])
        return record

    def add_each(self, entries: Iterable[ConsentEntry]) -> list[ConsentRecord]:
        """Write these consent records, each under the next free index of its participant; in one transaction.

        The next free index is found by walking (``owners``) under an advisory lock per participant
        (``_lock_consents_of``), so two writers for one person never pick the same n; the column's unique
        constraint refuses it anyway. The participant row is not locked for it.
        """
        entries = list(entries)
        if not entries:
            return []
        using = self.db
        # No savepoint inside a caller's transaction (the help batch, a stop): a savepoint that writes gets
        # a subtransaction id of its own, and each record's xmin would then tell it from the others written
        # in that transaction, in the order they were written.
        with transaction.atomic(using=using, savepoint=False):
            _lock_consents_of([entry.participant_id for entry in entries], using)
            taken = self._walk(entry.participant_id for entry in entries)
            following: dict[str, int] = {}
            for pk, n in taken.values():
                following[str(pk)] = max(following.get(str(pk), 0), n + 1)
            records = []
            for entry in entries:
                n = following.get(str(entry.participant_id), 0)
                following[str(entry.participant_id)] = n + 1
                records.append(
                    ConsentRecord(
                        participant_index=ConsentRecord.index_for(entry.participant_id, n),
                        kind=entry.kind,
                        text_version=entry.text_version,
                        recorded_at=_consent_day(entry.recorded_at),
                    )
                )
            return ConsentRecord._base_manager.using(using).bulk_create(records)

    def opened(self, *kinds: str) -> list[ConsentRecord]:
        """These records whose opened kind is one of ``kinds`` (any, without), oldest first; in Python.

        Records carry their day only, so within a day they follow the order a person's consents can take
        (given before a pause, a withdrawal last); the database cannot sort on the sealed kind.
        """
        order: list[str] = [kind.value for kind in ConsentRecord.Kind]
        records = [record for record in self if not kinds or record.kind in kinds]
        return sorted(
            records, key=lambda record: (record.recorded_at, order.index(record.kind), str(record.pk))
        )


class ConsentRecord(models.Model):
    """Which consent text version a participant agreed to or withdrew from, and on which day.

    It names its participant only by a keyed, purpose-bound hash of their id and the record's number among
    theirs (``participant_index``), and its kind and text version only sealed: in clear, a dump read who
    paused, withdrew or consented to be contacted (which is a help request) straight from this table, and
    one index shared by all of a person's records told, by how many rows it had and on which days, that
    its person did more than enrol (issue #14). Now every record has an index of its own, which nobody
    without the key can compute from a participant row nor match to another record of the same person:
    the application finds a person's records by walking n = 0, 1, 2, ... (``ConsentRecordQuerySet.owners``),
    and writes them only through ``ConsentRecord.objects.add`` / ``add_each``, which pick the next n.
    The text version is sealed because the versions differ by kind (the contact consent has its own text).
    """

    class Kind(models.TextChoices):
        GIVEN = "given", _("given")
        CONTACT = "contact", _("consent to be contacted")
        WITHDRAWN = "withdrawn", _("withdrawn")
        # Restriction and objection (GDPR art. 18 and 21): the participant paused, or resumed, all messages.
        PAUSED = "paused", _("messages paused")
        RESUMED = "resumed", _("messages resumed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # index_for(participant id, n) for the participant's n-th record: unique, so no two rows share one.
    participant_index = models.CharField(max_length=64, unique=True)
    kind = SealedChoiceField(_("kind"), choices=Kind.choices)
    # Sealed and padded to one length: "2026-12" beside "2026-12-contact" would tell the kind.
    text_version = EncryptedTextField()
    # The day only (Europe/Amsterdam), never a time of day: a consent to be contacted is a help request,
    # and a time would let a dump pair it with the score tapped just before it, or order it among the
    # other consents of the day. The name stays "recorded_at" so every writer can keep passing now().
    recorded_at = models.DateField()

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        constraints = [*sealed_only("kind", "text_version")]

    def __str__(self) -> str:
        return f"consent {self.kind} ({self.text_version})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Store the day of ``recorded_at`` in the site's time zone, also when given a moment."""
        if isinstance(self.recorded_at, dt.datetime):
            self.recorded_at = _consent_day(self.recorded_at)
        super().save(*args, **kwargs)

    @staticmethod
    def index_for(participant_id: uuid.UUID | str, n: int) -> str:
        """The keyed index of the participant's n-th consent record (n from 0)."""
        return keyed_hash("blind_index", _CONSENT_INDEX_LABEL, f"{participant_id}:{n}")


class AccountLink(models.Model):
    """A one-time link to the participant's account, sent by e-mail. Only the token's hash is stored.

    It is often asked for right after a tap (the thanks page links to the account), so it names its
    participant only sealed, and dates its expiry to a quarter of an hour: a participant id in clear, or a
    moment to the microsecond, would pair it with the score written just before (issue #14, F7).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The participant's id, sealed to this row.
    participant_ref = EncryptedTextField()
    token_hash = models.CharField(max_length=64, unique=True)
    # Rounded up to the quarter hour (preventicons.sessions.coarse_expiry): it works at least its lifetime.
    expires_at = models.DateTimeField()
    used = models.BooleanField(default=False)

    objects = NamedSealedQuerySet.as_manager()

    class Meta:
        constraints = [*sealed_only("participant_ref")]
        verbose_name = _("account link")
        verbose_name_plural = _("account links")

    def __str__(self) -> str:
        return f"account link {str(self.pk)[:8]}"

    @property
    def participant_id(self) -> str:
        """The id of the participant this link opens, opened."""
        return str(self.participant_ref)


class QueuedRequest(models.Model):
    """A participant's request waiting sealed for the next batch: contact with a casemanager, a pause, another
    casemanager, a proven stop or correction, or the close of a stopped participant's dossier (P sealed).
    What the participant was told is done, and a dossier close, are kept until a batch takes them up
    (participants.queued.waits_for_the_batch).

    Written when the participant asks (participants.requestqueue) and deleted by the batch that carries it
    out (scores.wellbeing.take_up_help_requests, every HELP_REQUEST_BATCH_MINUTES), so that nothing written
    next to their score says who asked for what. The row holds no readable participant id, no pseudonym,
    no time of day, and not even which kind of request it is: all of that is sealed to this row.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = EncryptedTextField()
    # The day only: enough to purge what no batch took up (participants.retention).
    queued_on = models.DateField()

    class Meta:
        verbose_name = _("queued request")
        verbose_name_plural = _("queued requests")
        constraints = [*sealed_only("request")]

    def __str__(self) -> str:
        return f"queued request {str(self.pk)[:8]}"


class AnonymisationRun(models.Model):
    """What the nightly anonymisation and retention run did on one day: counts only, never an id.

    One row per day; a second run the same day adds what it did, which is nothing when nothing new came due.
    """

    run_on = models.DateField(unique=True)
    declined_erased = models.PositiveIntegerField(default=0)
    contract_ended_anonymised = models.PositiveIntegerField(default=0)
    unlisted_anonymised = models.PositiveIntegerField(default=0)
    inactive_anonymised = models.PositiveIntegerField(default=0)
    codes_purged = models.PositiveIntegerField(default=0)
    invitations_purged = models.PositiveIntegerField(default=0)
    account_links_purged = models.PositiveIntegerField(default=0)
    queued_requests_purged = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("anonymisation run")
        verbose_name_plural = _("anonymisation runs")
        ordering = ["-run_on"]

    def __str__(self) -> str:
        return f"anonymisation run of {self.run_on}"


class FormerListedContact(models.Model):
    """An e-mail address or mobile number the employer listed someone under before a later list gave them
    another: the listed hash only (participants.invitations.listed_hashes, whose domain labels keep an
    address's hash apart from a number's), no participant, no status.

    Two answers read what a list names: the account-link form sends its e-mail to every address a list names
    (account.send_account_links), and enrolling or correcting one's details refuses a colleague's address or
    number (invitations.held_by_someone_else). Without this record an old work address or number still
    counted only when its person had joined and kept it as their own, so the employer, who moved them to a
    new one by a re-import, read who took part in the old mailbox or from a refusal (review 11). Written by
    the import for every matched person whose listed contact it changes, whatever they did; deleted with the
    organisation's ended contract, as ListedEntry is.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    listed_hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("formerly listed contact")
        verbose_name_plural = _("formerly listed contacts")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "listed_hash"], name="former_listed_unique_hash"),
        ]

    def __str__(self) -> str:
        return f"formerly listed contact {str(self.pk)[:8]}"


class ListedEntry(models.Model):
    """One row of the address list the employer imported last, as keyed hashes only: what the next preview
    compares with.

    The preview of an import counts new, changed and no longer listed rows against the employer's own last
    list, never against the participants: the participants table knows who stopped, declined or corrected
    their details, and any count drawn from it would tell the employer (participants/listpreview.py). No
    participant, no status, no time: the employer's list as it supplied it, under the blind_index key with
    domain labels of their own, so no hash equals a blind index or a departed contact's hash.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    email_hash = models.CharField(max_length=64)
    mobile_hash = models.CharField(max_length=64)
    # The whole row (name, e-mail, mobile, department): whether a matched row changed.
    row_hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("entry of the last imported list")
        verbose_name_plural = _("entries of the last imported list")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "email_hash"], name="listed_entry_unique_email"),
            models.UniqueConstraint(
                fields=["organisation", "mobile_hash"], name="listed_entry_unique_mobile"
            ),
        ]

    def __str__(self) -> str:
        return f"listed entry {str(self.pk)[:8]}"
