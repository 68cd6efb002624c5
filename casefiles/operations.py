"""Writes to dossiers: opening, closing, making available.

Receivers, views and commands call these, so each rule about a dossier lives once.
"""

from __future__ import annotations

import secrets

from django.utils import timezone

from casefiles.models import Dossier
from preventicons import crypto


def close_dossier(*, pseudonym: str) -> None:
    """The dossier of this pseudonym is closed and can no longer be found from, or lead to, the pseudonym."""
    if not pseudonym:
        return
    # update() writes NULL into the sealed column directly: nothing is sealed, so no row binding is needed.
    # A second run finds no dossier under the index any more and changes nothing.
    Dossier.objects.filter(pseudonym_index=crypto.casefiles_index(pseudonym)).update(
        is_open=False, pseudonym=None, pseudonym_index=None
    )


def set_dossier_available(*, pseudonym: str, available: bool) -> None:
    """Whether the casemanager may see the dossier's individual scores; a second run changes nothing."""
    if pseudonym:
        Dossier.objects.filter(pseudonym_index=crypto.casefiles_index(pseudonym)).update(
            is_available=available
        )


# Dossier numbers are read out over the phone: no 0/O, 1/I/L.
DOSSIER_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
DOSSIER_NUMBER_ATTEMPTS = 5


def new_dossier_number() -> str:
    """'D-' and 8 random characters: about 40 bits, carrying nothing about the person or the date."""
    return "D-" + "".join(secrets.choice(DOSSIER_ALPHABET) for _ in range(8))


def open_dossier(*, pseudonym: str, channel: str = "") -> None:
    """One open dossier per pseudonym: the first request opens it, a later one (re)opens the same one.

    The dossier keeps the chosen contact channel, sealed; a later request's channel replaces it. Called
    from the help-request batch (scores.wellbeing.take_up_help_requests), so a retried batch meets the
    dossier it opened before and changes nothing a second time.
    """
    if not pseudonym:
        return
    index = crypto.casefiles_index(pseudonym)
    existing = Dossier.objects.select_for_update().filter(pseudonym_index=index).first()
    if existing is not None:
        changed = []
        if not existing.is_open:
            existing.is_open = True
            changed.append("is_open")
        if channel and existing.contact_channel != channel:
            existing.contact_channel = channel
            changed.append("contact_channel")
        if changed:
            existing.save(update_fields=changed)
        return
    # No savepoint per dossier: on PostgreSQL each would give its row a transaction id of its own, in the
    # order of opening. Without one, every dossier of a batch carries the batch's single xmin. Only the
    # batch opens dossiers, one batch at a time (its queue rows are locked), so a number drawn free stays
    # free; a clash all the same fails the batch, which the next run retries.
    for _attempt in range(DOSSIER_NUMBER_ATTEMPTS):
        number = new_dossier_number()
        if not Dossier.objects.filter(number=number).exists():
            break
    else:
        raise RuntimeError(f"no free dossier number after {DOSSIER_NUMBER_ATTEMPTS} attempts")
    dossier = Dossier(number=number, pseudonym_index=index, opened_on=timezone.localdate())
    dossier.pseudonym = pseudonym
    dossier.contact_channel = channel or None
    dossier.save(force_insert=True)
