"""A trajectory's reference: the opaque code the ledger, the auditor and the invoice lines know it by.

A random code, not derived from anything: the only way back from it to a trajectory (and so to a dossier)
is its ``TrajectoryReference`` row. ``forget`` deletes those rows when casefiles retention unlinks a dossier;
the ledger's entries stay, true and verifiable, and belong to no dossier any more.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable

from django.db import IntegrityError, transaction

from notary.models import TrajectoryReference
from preventicons.dbrouter import CASEFILES

# Crockford's base32 without I, L, O, U: read aloud and typed from an invoice without confusion.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 12 characters: 60 random bits, grouped as "TR-XXXX-XXXX-XXXX".
_LENGTH = 12
_ATTEMPTS = 5


def new_reference() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(_LENGTH))
    return f"TR-{body[0:4]}-{body[4:8]}-{body[8:12]}"


def reference_for(trajectory_id: uuid.UUID) -> str:
    """The trajectory's reference, made the first time it is asked for. Safe against a parallel first ask:
    the unique trajectory id lets one of two inserts win and the other reads the winner's."""
    found = TrajectoryReference.objects.filter(trajectory_id=trajectory_id).values_list(
        "reference", flat=True
    )
    for reference in found:
        return reference
    for _attempt in range(_ATTEMPTS):
        try:
            with transaction.atomic(using=CASEFILES):
                return TrajectoryReference.objects.create(
                    trajectory_id=trajectory_id, reference=new_reference()
                ).reference
        except IntegrityError:
            existing = TrajectoryReference.objects.filter(trajectory_id=trajectory_id).first()
            if existing is not None:
                return existing.reference
            # A clash of two random references: draw again.
    raise RuntimeError(f"no free trajectory reference after {_ATTEMPTS} attempts")


def references_for(trajectory_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The references of these trajectories that have one (none is made)."""
    return dict(
        TrajectoryReference.objects.filter(trajectory_id__in=list(trajectory_ids)).values_list(
            "trajectory_id", "reference"
        )
    )


def trajectory_id_for(reference: str) -> uuid.UUID | None:
    """The trajectory a reference stands for, or None once retention forgot it (or it never existed)."""
    return (
        TrajectoryReference.objects.filter(reference=reference)
        .values_list("trajectory_id", flat=True)
        .first()
    )


def forget(trajectory_ids: Iterable[uuid.UUID]) -> int:
    """Delete the way back from these trajectories' references; how many were deleted."""
    return TrajectoryReference.objects.filter(trajectory_id__in=list(trajectory_ids)).delete()[0]
