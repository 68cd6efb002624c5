"""The participant's sign-off: "it took place" or "it did not", and an optional rating and remark.

Offered only on the participant's own account page, which opens after both factors (participants.session):
never by e-mail or SMS, since the employer reads every mailbox it supplied and a sign-off message would tell
it who got help. The participant finds their ended trajectories through their pseudonym P
(casefiles.trajectories.ended_trajectories_for) and chooses one by a keyed token, so the page carries neither
the trajectory's reference nor its dossier's number.

Sending writes one sealed ``QueuedSignOff`` row and nothing else, for the reason of
participants.requestqueue: no ledger entry or feedback row next to the person's other acts of that minute.
The batch (``take_up``, hourly) takes up every queued sign-off in one transaction in random order: one
``signed_off`` ledger entry per trajectory (the ledger keeps one per reference: a second sign-off records
nothing) and beside it one sealed ``PendingFeedback``, rating or not. Then, in transactions of their own,
the pending feedback becomes ``Feedback`` rows (sealed rating, sealed remark, no reference, no date) once
enough is pending to mix, and feedback from enough people is released to the employer (notary.feedback).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from casefiles import trajectories
from casefiles.identitytext import Kind as Identifying
from casefiles.identitytext import find_identifying
from notary import feedback, ledger, references, signing
from notary.models import LedgerEntry, QueuedSignOff
from participants import livecontact, queries
from participants.models import Participant
from participants.offers import AccountOffer
from preventicons import crypto
from preventicons.dbrouter import CASEFILES
from scores.weekclose import monday_of

RATINGS = feedback.RATINGS
# Long enough for a few sentences to the employer, short enough to stay a remark (the form says so).
MAX_REMARK_LENGTH = 1000
# Every queued sign-off is padded to this many bytes before sealing, so a sign-off with a long remark and
# one without any fall into one ciphertext length (preventicons.crypto.padded_length). A remark of
# MAX_REMARK_LENGTH characters takes at most 4 bytes a character, escapes included, plus the other fields.
PLAINTEXT_BYTES = 4608

# What the remark check says, in the participant's words (casefiles.identitytext finds, this explains).
REASONS: dict[Identifying, Promise] = {
    Identifying.EMAIL: gettext_lazy(
        "This is an e-mail address. Leave it out: your employer reads the remark."
    ),
    Identifying.IBAN: gettext_lazy(
        "This is a bank account number. Leave it out: your employer reads the remark."
    ),
    Identifying.PHONE: gettext_lazy("This is a phone number. Leave it out: your employer reads the remark."),
    Identifying.BSN: gettext_lazy("This is a citizen service number (BSN). Leave it out of the remark."),
    Identifying.POSTCODE: gettext_lazy("A postcode with a house number is an address. Leave it out."),
    Identifying.NAME: gettext_lazy("This is your name. Your remark reaches your employer without it."),
}


class SignOffRefused(Exception):
    """The sign-off cannot be taken; ``messages`` say why in the participant's words. Nothing was written."""

    def __init__(self, *messages: str) -> None:
        self.messages = list(messages)
        super().__init__(" ".join(self.messages))


@dataclass(frozen=True)
class OpenSignOff:
    """An ended trajectory the participant may still sign off, as the page shows it: a kind and a week.

    ``choice`` is a keyed token of the participant's P and the trajectory (never its reference or id), which
    the form sends back; it means nothing on another person's page.
    """

    choice: str
    kind_label: str
    ended_week: dt.date

    @property
    def week_number(self) -> int:
        return self.ended_week.isocalendar().week

    @property
    def week_year(self) -> int:
        return self.ended_week.isocalendar().year


@dataclass(frozen=True)
class _Open:
    shown: OpenSignOff
    reference: str
    organisation_id: int


def _choice(pseudonym: str, trajectory_id: uuid.UUID) -> str:
    return crypto.keyed_hash("casefiles_index", "sign-off choice", f"{pseudonym}\x00{trajectory_id}")[:32]


def _queued_references() -> set[str]:
    # The queue holds at most one batch interval of sign-offs: opening them all is cheap.
    return {_open(queued)["reference"] for queued in QueuedSignOff.objects.all()}


def _open_for(pseudonym: str, organisation_id: int, *, today: dt.date | None = None) -> list[_Open]:
    """The participant's ended trajectories within SIGN_OFF_WEEKS, not signed off and not queued.

    A trajectory the ledger does not know yet (no reference: the nightly feed has not reached it) is
    offered from the next day: asking for its reference here would write one in the second they look.
    """
    ended = trajectories.ended_trajectories_for(pseudonym)
    since = monday_of(today or timezone.localdate()) - dt.timedelta(weeks=settings.SIGN_OFF_WEEKS)
    recent = [trajectory for trajectory in ended if trajectory.ended_week >= since]
    if not recent:
        return []
    known = references.references_for(trajectory.id for trajectory in recent)
    queued = _queued_references()
    found = []
    for trajectory in recent:
        reference = known.get(trajectory.id)
        if reference is None or reference in queued or ledger.was_appended(f"signed_off:{reference}"):
            continue
        shown = OpenSignOff(
            choice=_choice(pseudonym, trajectory.id),
            kind_label=trajectories.kind_label(trajectory.kind),
            ended_week=trajectory.ended_week,
        )
        owner = trajectory.organisation_id if trajectory.organisation_id is not None else organisation_id
        found.append(_Open(shown=shown, reference=reference, organisation_id=owner))
    return found


def open_sign_offs(*, participant: Participant, today: dt.date | None = None) -> list[OpenSignOff]:
    """What this participant may sign off now (nothing unless they take part)."""
    pseudonym = queries.active_pseudonym(participant.pk)
    if pseudonym is None:
        return []
    return [found.shown for found in _open_for(pseudonym, participant.organisation_id, today=today)]


def offer_sign_off(pseudonym: str) -> AccountOffer | None:
    """The account page's offer (participants.offers), while an ended trajectory waits for its sign-off."""
    # The organisation is only the fall-back owner of a dossier without one: no sign-off is written here.
    if not _open_for(pseudonym, 0):
        return None
    return AccountOffer(
        title=_("Did your help take place?"),
        text=_(
            "You can confirm, anonymously, that your trajectory took place, and rate it. "
            "Your employer learns only that trajectories took place, never whose."
        ),
        action_label=_("Sign off your trajectory"),
        action_url=reverse("notary:sign-off"),
    )


def _remark(text: str) -> str:
    """The remark as kept: line breaks made alike, other control characters dropped, blanks trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = "".join(ch for ch in text if ch in "\n\t" or not unicodedata.category(ch).startswith("C"))
    return kept.strip()


def _names(participant: Participant, pseudonym: str) -> list[str]:
    """The participant's names as a remark may not hold them (as casefiles.views does for notes)."""
    identity = livecontact.live_identity(participant_id=participant.pk, pseudonym=pseudonym, channel="email")
    if identity is None or not identity.name:
        return []
    words = identity.name.split(maxsplit=1)
    return [identity.name, *identity.first_names, *identity.last_names, *words[1:]]


def queue_sign_off(
    *, participant: Participant, choice: str, took_place: str, rating: str = "", remark: str = ""
) -> None:
    """Queue the participant's sign-off of one of their own ended trajectories, sealed.

    ``took_place`` is "yes" or "no"; ``rating`` "" or "1" to "5"; ``remark`` free text, refused when it
    names the participant or holds contact details (casefiles.identitytext), and only with a rating: they
    reach the employer together. Raises SignOffRefused, writing nothing, for anything else: someone who no
    longer takes part, a trajectory not theirs or not open for sign-off, a second sign-off.
    """
    pseudonym = queries.active_pseudonym(participant.pk)
    if pseudonym is None:
        raise SignOffRefused(_("You can sign off only while you take part."))
    errors: list[str] = []
    if took_place not in ("yes", "no"):
        errors.append(_("Say whether the trajectory took place."))
    chosen_rating: int | None = None
    if rating:
        if rating.isascii() and rating.isdigit() and int(rating) in RATINGS:
            chosen_rating = int(rating)
        else:
            errors.append(_("Choose a rating from 1 to 5, or none."))
    text = _remark(remark)
    if len(text) > MAX_REMARK_LENGTH:
        errors.append(_("Keep your remark to %(limit)d characters at most.") % {"limit": MAX_REMARK_LENGTH})
    elif text:
        if not rating:
            errors.append(_("Give a rating with your remark: your employer receives them together."))
        for finding in find_identifying(text, names=_names(participant, pseudonym)):
            errors.append(
                _("“%(part)s”: %(reason)s") % {"part": finding.excerpt, "reason": REASONS[finding.kind]}
            )
    if errors:
        raise SignOffRefused(*errors)
    found = next(
        (
            item
            for item in _open_for(pseudonym, participant.organisation_id)
            if hmac.compare_digest(item.shown.choice.encode(), choice.encode("utf-8", "replace"))
        ),
        None,
    )
    if found is None:
        # Someone else's trajectory, an unknown one, or one signed off (or queued) before: all read alike.
        raise SignOffRefused(
            _("This trajectory cannot be signed off (any more). Each trajectory is signed off once.")
        )
    _queue(
        {
            "reference": found.reference,
            "organisation": found.organisation_id,
            "took_place": took_place == "yes",
            "rating": chosen_rating,
            "remark": text or None,
            # Sealed with the rest, never stored in clear: a release counts people by it (notary.feedback).
            "person": feedback.person_of(pseudonym),
        }
    )


def _queue(signoff: dict[str, Any]) -> None:
    plaintext = json.dumps(signoff, ensure_ascii=False, separators=(",", ":"))
    size = len(plaintext.encode("utf-8"))
    if size > PLAINTEXT_BYTES:
        raise ValueError("a queued sign-off is longer than its padding")
    queued = QueuedSignOff(queued_on=timezone.localdate())
    queued.sealed = plaintext + " " * (PLAINTEXT_BYTES - size)  # JSON allows trailing blanks
    queued.save(force_insert=True)


def _open(queued: QueuedSignOff) -> dict[str, Any]:
    opened: dict[str, Any] = json.loads(queued.sealed or "{}")
    return opened


@dataclass(frozen=True)
class TakenUp:
    """What one batch did: counts only."""

    signed_off: int
    # Queued twice for one trajectory (two tabs), or signed off before: nothing recorded for these.
    dropped: int
    # Feedback rows written from the pending ones (0 while too few are pending to mix).
    feedback: int
    released: int


def take_up(*, today: dt.date | None = None) -> TakenUp:
    """Take up every queued sign-off in one transaction, in random order; the queue is empty when it commits.

    Per trajectory one ``signed_off`` ledger entry (week of the batch's day, ``{"took_place": ...}``) and one
    sealed PendingFeedback (with or without a rating). After that commits, each in a transaction of its own:
    the pending feedback is written as Feedback rows once enough is pending (notary.feedback.write_mixed),
    and feedback from enough people is released. A retried or crashed run writes nothing twice and loses
    nothing: the sign-offs commit together, rows deleted included, the ledger stores each trajectory's
    sign-off once whatever is queued, and what is pending waits for the next run.
    """
    day = today or timezone.localdate()
    week = monday_of(day)
    with transaction.atomic(using=CASEFILES):
        # Locked: a second batch running at the same time waits, then finds the rows gone.
        pending = list(QueuedSignOff.objects.select_for_update())
        # Nothing stored follows the order in which people signed off: not the ledger's sequence numbers,
        # not the pending feedback.
        secrets.SystemRandom().shuffle(pending)
        chosen: dict[str, dict[str, Any]] = {}
        for queued in pending:
            opened = _open(queued)
            chosen.setdefault(opened["reference"], opened)
        facts = [
            ledger.Fact(
                kind=LedgerEntry.Kind.SIGNED_OFF,
                source=f"signed_off:{reference}",
                week=week,
                reference=reference,
                organisation_id=signoff["organisation"],
                facts={"took_place": bool(signoff["took_place"])},
            )
            for reference, signoff in chosen.items()
        ]
        appended = {entry.source for entry in ledger.append_many(facts)}
        # One per recorded sign-off, rating or not: that a sign-off carried feedback shows nowhere here.
        feedback.pend(
            [
                signoff
                for reference, signoff in chosen.items()
                if signing.source_of(f"signed_off:{reference}") in appended
            ]
        )
        QueuedSignOff.objects.filter(pk__in=[queued.pk for queued in pending]).delete()
    # Not in the transaction above: a Feedback row never commits with its own sign-off's ledger entry.
    written = feedback.write_mixed()
    released = feedback.release_ready(today=day)
    return TakenUp(
        signed_off=len(appended),
        dropped=len(pending) - len(appended),
        feedback=written,
        released=len(released),
    )
