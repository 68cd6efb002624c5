"""What the casefiles app does when the participants app announces something (participants/signals.py)."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import IntegrityError, router, transaction
from django.utils import timezone

from casefiles.models import Dossier
from preventicons import crypto


def close_stopped_participants_dossier(sender: Any, *, pseudonym: str, **kwargs: Any) -> None:
    """Their dossier is closed and can no longer be found from, or lead to, their pseudonym."""
    if not pseudonym:
        return
    # update() writes NULL into the sealed column directly: nothing is sealed, so no row binding is needed.
    # A second run finds no dossier under the index any more and changes nothing.
    Dossier.objects.filter(pseudonym_index=crypto.casefiles_index(pseudonym)).update(
        is_open=False, pseudonym=None, pseudonym_index=None
    )


def make_inactive_participants_dossier_unavailable(sender: Any, *, pseudonym: str, **kwargs: Any) -> None:
    """Casemanagers see individual scores of active participants only; a second run changes nothing."""
    if pseudonym:
        Dossier.objects.filter(pseudonym_index=crypto.casefiles_index(pseudonym)).update(is_available=False)


def make_reactivated_participants_dossier_available(sender: Any, *, pseudonym: str, **kwargs: Any) -> None:
    """Their dossier is available again to its casemanager; a second run changes nothing."""
    if pseudonym:
        Dossier.objects.filter(pseudonym_index=crypto.casefiles_index(pseudonym)).update(is_available=True)


# Dossier numbers are read out over the phone: no 0/O, 1/I/L.
DOSSIER_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
DOSSIER_NUMBER_ATTEMPTS = 5


def new_dossier_number() -> str:
    """'D-' and 8 random characters: about 40 bits, carrying nothing about the person or the date."""
    return "D-" + "".join(secrets.choice(DOSSIER_ALPHABET) for _ in range(8))


def open_dossier_on_help_request(sender: Any, *, pseudonym: str, **kwargs: Any) -> None:
    """One open dossier per pseudonym: the first request opens it, a later one (re)opens the same one."""
    if not pseudonym:
        return
    index = crypto.casefiles_index(pseudonym)
    for _attempt in range(DOSSIER_NUMBER_ATTEMPTS):
        existing = Dossier.objects.select_for_update().filter(pseudonym_index=index).first()
        if existing is not None:
            if not existing.is_open:
                existing.is_open = True
                existing.save(update_fields=["is_open"])
            return
        dossier = Dossier(number=new_dossier_number(), pseudonym_index=index, opened_on=timezone.localdate())
        dossier.pseudonym = pseudonym
        try:
            # A savepoint: a clash (same number, or a parallel request for the same P) must not spoil the
            # surrounding transaction; the next round finds the parallel dossier or draws a new number.
            with transaction.atomic(using=router.db_for_write(Dossier)):
                dossier.save(force_insert=True)
        except IntegrityError:
            continue
        return
    raise RuntimeError(f"no free dossier number after {DOSSIER_NUMBER_ATTEMPTS} attempts")
