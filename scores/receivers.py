"""What the scores app does when the participants app announces something (participants/signals.py)."""

from __future__ import annotations

from typing import Any

from scores.models import Score


def strip_stopped_participant(sender: Any, *, pseudonym: str, organisation_id: int, **kwargs: Any) -> None:
    """Their scores stay, counted in the history, but belong to nobody and to no department."""
    if not pseudonym:
        return
    # A second run finds no row under P any more and changes nothing: idempotent by construction.
    Score.objects.filter(pseudonym=pseudonym, organisation_id=organisation_id).update(
        pseudonym=None, department=None
    )
