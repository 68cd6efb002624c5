"""Anoniem Garant (database 3, beside the casefiles): the ledger, its signed tree heads, the auditors'
engagements, attestations, and the participants' anonymous sign-offs and feedback.

Nothing here names a person. The ledger names a trajectory only by its reference, a random code whose only
link back to a trajectory is ``TrajectoryReference``, which retention deletes (notary.references). Entries
carry the organisation and the week (a Monday), never a finer date.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from preventicons.fields import EncryptedTextField, SealedIntegerField, sealed_only


class LedgerEntry(models.Model):
    """One fact in the append-only ledger (notary.ledger): a leaf of its Merkle tree (RFC 9162).

    ``leaf_hash`` is SHA-256(0x00 || the entry's canonical form); ``seal`` is a keyed MAC over the sequence
    and the leaf hash under a key the database does not hold, so an entry rewritten together with its leaf
    hash is still found and named. ``source`` is a keyed hash of what the fact came from (a trajectory's
    opening, one night's anonymisation run, ...): appending the same fact twice stores it once.
    """

    class Kind(models.TextChoices):
        TRAJECTORY_OPENED = "trajectory_opened", _("trajectory opened")
        SESSION_HELD = "session_held", _("session held")
        TRAJECTORY_COMPLETED = "trajectory_completed", _("trajectory completed")
        SIGNED_OFF = "signed_off", _("signed off by the participant")
        ANONYMISATION_RUN = "anonymisation_run", _("nightly anonymisation")
        REPORT_SETTING_CHANGED = "report_setting_changed", _("report threshold changed")
        AGREEMENT_RECORDED = "agreement_recorded", _("processing agreement recorded")
        KEY_ROTATED = "key_rotated", _("key rotated")
        ACCESS_LOG_HEAD = "access_log_head", _("access log anchored")

    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    kind = models.CharField(max_length=32, choices=Kind.choices, editable=False)
    # The trajectory's reference (notary.references), blank for the privacy facts.
    reference = models.CharField(max_length=32, blank=True, db_index=True, editable=False)
    organisation_id = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    # The Monday of the week the fact belongs to (for a night's run: that night's week).
    week = models.DateField(editable=False)
    # What the kind says, in code words and numbers only: no name, contact detail, score or text typed.
    facts = models.JSONField(default=dict, editable=False)
    source = models.CharField(max_length=64, unique=True, editable=False)
    leaf_hash = models.CharField(max_length=64, editable=False)
    seal = models.CharField(max_length=64, editable=False)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["sequence"]
        indexes = [models.Index(fields=["organisation_id", "week"], name="ledger_by_organisation_week")]

    def __str__(self) -> str:
        return f"ledger entry {self.sequence}"


class TreeHead(models.Model):
    """A signed tree head: the ledger's size and Merkle root, signed with the notary's Ed25519 key."""

    tree_size = models.PositiveBigIntegerField(unique=True, editable=False)
    root_hash = models.CharField(max_length=64, editable=False)
    signed_at = models.DateTimeField(editable=False)
    # SHA-256 of the raw public key, hex: which key signed (the /verify/ page shows it).
    key_fingerprint = models.CharField(max_length=64, editable=False)
    signature = models.CharField(max_length=128, editable=False)

    class Meta:
        verbose_name = _("signed tree head")
        verbose_name_plural = _("signed tree heads")
        ordering = ["tree_size"]

    def __str__(self) -> str:
        return f"tree head at size {self.tree_size}"


class TrajectoryReference(models.Model):
    """The only link from a ledger reference back to a trajectory; deleted by retention, so that afterwards
    the ledger's entries for it belong to no dossier (notary.references)."""

    trajectory_id = models.UUIDField(unique=True)
    reference = models.CharField(max_length=32, unique=True)

    class Meta:
        verbose_name = _("trajectory reference")
        verbose_name_plural = _("trajectory references")

    def __str__(self) -> str:
        return self.reference


class Engagement(models.Model):
    """An auditor engaged by an organisation: the auditor sees that organisation's trajectories and issues
    its attestations. Set by the platform admin. Ids into the identity store, not relations."""

    auditor_id = models.PositiveBigIntegerField(_("auditor id"))
    organisation_id = models.PositiveBigIntegerField(_("organisation id"))
    engaged_on = models.DateField(_("engaged on"))

    class Meta:
        verbose_name = _("engagement")
        verbose_name_plural = _("engagements")
        constraints = [
            models.UniqueConstraint(fields=["auditor_id", "organisation_id"], name="one_engagement_per_pair")
        ]

    def __str__(self) -> str:
        return f"auditor {self.auditor_id} for organisation {self.organisation_id}"


class Attestation(models.Model):
    """A signed statement for the employer about one calendar period (notary.attestations).

    ``document`` is the exact bytes signed (canonical JSON, UTF-8); ``signature`` is the Ed25519 signature
    over them, base64. Neither is ever changed: a new statement for the same period is a new row.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation_id = models.PositiveBigIntegerField(_("organisation id"), editable=False)
    period_start = models.DateField(_("from"), editable=False)
    period_end = models.DateField(_("until"), editable=False)
    document = models.TextField(editable=False)
    signature = models.CharField(max_length=128, editable=False)
    issued_by_id = models.PositiveBigIntegerField(editable=False)
    issued_on = models.DateField(_("issued on"), editable=False)

    class Meta:
        verbose_name = _("attestation")
        verbose_name_plural = _("attestations")
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")), name="period_in_order"
            )
        ]

    def __str__(self) -> str:
        return f"attestation {self.period_start}..{self.period_end}"


class QueuedSignOff(models.Model):
    """A participant's sign-off as they sent it, sealed (reference, rating, remark, and the keyed person
    hash that lets a release count people rather than rows), until the batch takes it up: the ledger entry
    is written with everyone else's, in random order, and its feedback part goes to ``PendingFeedback``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sealed = EncryptedTextField()
    queued_on = models.DateField()

    class Meta:
        verbose_name = _("queued sign-off")
        verbose_name_plural = _("queued sign-offs")
        constraints = [*sealed_only("sealed")]

    def __str__(self) -> str:
        return f"sign-off queued on {self.queued_on}"


class PendingFeedback(models.Model):
    """The feedback part of one recorded sign-off, sealed and padded alike whether it holds a rating or not
    (notary.signoffs): written with the sign-off's ledger entry, so one per entry, telling nothing. The
    ``Feedback`` rows are written from these in a transaction of their own, and only when at least
    notary.feedback.MIX_MINIMUM are pending, all of them together in random order: a Feedback row never
    shares a transaction with the ledger entry of its sign-off, nor with fewer than that many others."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sealed = EncryptedTextField()

    class Meta:
        verbose_name = _("pending feedback")
        verbose_name_plural = _("pending feedback")
        constraints = [*sealed_only("sealed")]

    def __str__(self) -> str:
        return "pending feedback"


class FeedbackRelease(models.Model):
    """Feedback handed to the employer together: at least the minimum at a time (notary.feedback)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation_id = models.PositiveBigIntegerField(_("organisation id"))
    released_on = models.DateField(_("released on"))

    class Meta:
        verbose_name = _("feedback release")
        verbose_name_plural = _("feedback releases")

    def __str__(self) -> str:
        return f"feedback released on {self.released_on}"


class Feedback(models.Model):
    """A participant's rating (1 to 5) and remark about the help, for the employer, with no reference to the
    trajectory. Waits (``release`` NULL) until enough people have given some to hand over together.

    The rating is sealed: in clear, a dump would read it, and a row paired with its sign-off (by the
    transaction that wrote them, say) would give that trajectory's rating. ``person`` is a keyed hash of
    the participant, sealed, kept only while the row waits: a release takes at most one row per person
    (notary.feedback), so five rows are five people. NULL once released, and for rows from before it.

    The organisation is sealed too (notary 0008), and the release decides in Python: in clear, a waiting
    row named its organisation, so when a mix held one sign-off of that organisation an operator paired the
    row with the organisation's one ``signed_off`` ledger entry since the last mix (this trajectory was
    rated). Sealed, the rows of a mix tell nothing apart; a released row belongs to its release, which
    names the organisation, as the employer's page does.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = SealedIntegerField(_("organisation id"))
    # 1 to 5 (notary.signoffs.RATINGS, checked there: the database cannot read it).
    rating = SealedIntegerField(_("rating"))
    # NULL without a remark; sealed and padded like every sealed value, so its length tells little.
    remark = EncryptedTextField(null=True, blank=True)
    person = EncryptedTextField(null=True, blank=True)
    release = models.ForeignKey(
        FeedbackRelease, on_delete=models.PROTECT, null=True, blank=True, related_name="feedback"
    )

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        constraints = [
            *sealed_only("organisation", "rating", "remark", "person"),
        ]

    def __str__(self) -> str:
        return "feedback"
