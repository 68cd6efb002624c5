"""What the casefiles app does when the participants app announces something (participants/signals.py).

Thin: each receiver calls a casefiles operation (casefiles/operations.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from casefiles import assignment, operations


def close_stopped_participants_dossier(sender: Any, *, pseudonym: str, **kwargs: Any) -> None:
    """Their dossier is closed (logged as the participant's act) and leads to nobody any more; sent by the
    request batch of a day after the stop, never in the stop's transaction (participants/signals.py)."""
    operations.close_dossier(pseudonym=pseudonym)


def open_dossier_on_help_request(
    sender: Any,
    *,
    pseudonym: str,
    channel: str = "",
    participant_id: uuid.UUID | None = None,
    organisation_id: int | None = None,
    consent_version: str = "",
    **kwargs: Any,
) -> None:
    """One open dossier per pseudonym (casefiles.operations.open_dossier); a retried batch changes nothing."""
    operations.open_dossier(
        pseudonym=pseudonym,
        channel=channel,
        participant_id=participant_id,
        organisation_id=organisation_id,
        consent_version=consent_version,
    )


def change_casemanager_on_request(sender: Any, *, pseudonym: str, **kwargs: Any) -> None:
    """Their open dossier goes to another casemanager serving the organisation, if there is one."""
    assignment.change_on_participants_request(pseudonym=pseudonym)
