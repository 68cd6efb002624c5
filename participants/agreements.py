"""Signed processing agreements (verwerkersovereenkomsten): recording them, and the rule that needs them.

No processing of an organisation's employees starts before its agreement is recorded (no import, no
invitation), and no casemanager is given a dossier before theirs is. Every operation that processes personal
data asks here, so the rule lives in one place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from participants.models import Organisation, ProcessingAgreement, StaffUser
from preventicons.roles import Role, has_role

MAX_SIGNER_LENGTH = 200


class AgreementMissing(Exception):
    """The processing this was about to start needs a signed processing agreement that is not recorded."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or _(
            "No signed processing agreement is recorded for this organisation. Nothing has been processed: "
            "personal data may only be processed once the platform administrator has recorded the agreement."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def record_agreement(
    *,
    organisation: Organisation | None = None,
    casemanager: StaffUser | None = None,
    signed_on: dt.date,
    signer: str,
    document: bytes,
) -> ProcessingAgreement:
    """Record a signed agreement of one party; only the document's SHA-256 is kept, never the document."""
    errors: list[ValidationError] = []
    if (organisation is None) == (casemanager is None):
        errors.append(
            ValidationError(_("An agreement is signed by an organisation or by a casemanager, not both."))
        )
    if casemanager is not None and not has_role(casemanager, Role.CASEMANAGER):
        errors.append(ValidationError(_("Only a casemanager can sign a casemanager's processing agreement.")))
    signer = signer.strip()
    if not signer:
        errors.append(ValidationError(_("Enter the name of the person who signed.")))
    elif len(signer) > MAX_SIGNER_LENGTH:
        errors.append(
            ValidationError(
                _("The signer's name is longer than %(max)d characters.") % {"max": MAX_SIGNER_LENGTH}
            )
        )
    if signed_on > timezone.localdate():
        errors.append(ValidationError(_("An agreement cannot be signed on a date in the future.")))
    if not document:
        errors.append(ValidationError(_("The signed document is empty.")))
    if errors:
        raise ValidationError(errors)
    party = ProcessingAgreement.Party.ORGANISATION if organisation else ProcessingAgreement.Party.CASEMANAGER
    with transaction.atomic():
        return ProcessingAgreement.objects.create(
            party=party,
            organisation=organisation,
            casemanager=casemanager,
            signed_on=signed_on,
            signer=signer,
            # The document itself stays with the parties; the hash proves which text was signed.
            document_sha256=hashlib.sha256(document).hexdigest(),
        )


def has_signed_agreement(organisation: Organisation) -> bool:
    """True when a signed processing agreement of this organisation is recorded."""
    if organisation.pk is None:
        return False
    return ProcessingAgreement.objects.filter(
        party=ProcessingAgreement.Party.ORGANISATION, organisation=organisation
    ).exists()


def casemanager_has_signed_agreement(user: StaffUser) -> bool:
    """True when this casemanager's own signed processing agreement is recorded."""
    if user.pk is None:
        return False
    return ProcessingAgreement.objects.filter(
        party=ProcessingAgreement.Party.CASEMANAGER, casemanager=user
    ).exists()


def require_signed_agreement(organisation: Organisation) -> None:
    """Return only if the organisation's agreement is recorded; otherwise raise AgreementMissing."""
    if not has_signed_agreement(organisation):
        raise AgreementMissing()


def require_casemanager_signed_agreement(user: StaffUser) -> None:
    """Return only if the casemanager's agreement is recorded; otherwise raise AgreementMissing."""
    if not casemanager_has_signed_agreement(user):
        raise AgreementMissing(
            _(
                "No signed processing agreement is recorded for this casemanager. A casemanager is given "
                "dossiers only once the platform administrator has recorded their agreement."
            )
        )


@dataclass(frozen=True)
class RecordedAgreement:
    """A recorded agreement as the notary's ledger records it: whose, and the day signed; not the signer."""

    id: uuid.UUID
    party: str
    organisation_id: int | None
    casemanager_id: int | None
    signed_on: dt.date


def recorded_agreements() -> list[RecordedAgreement]:
    """Every recorded agreement, oldest signature first."""
    return [
        RecordedAgreement(*row)
        for row in ProcessingAgreement.objects.order_by("signed_on", "pk").values_list(
            "id", "party", "organisation_id", "casemanager_id", "signed_on"
        )
    ]
