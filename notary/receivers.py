"""What the notary does when an app below it announces something (preventicons.signals, casefiles.signals).

Thin: each receiver calls a notary operation. Both run inside the sender's own act, so the act and its
record in the notary commit together, or neither does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from notary import feed, references

# Trajectory ids per delete: a bounded IN-list on PostgreSQL and SQLite alike.
FORGET_CHUNK = 500


def record_key_rotation(sender: Any, *, purpose: str, key_id: str, day: dt.date, **kwargs: Any) -> None:
    """The activation of a key goes into the ledger, once however often it is announced."""
    feed.key_rotated(purpose=purpose, key_id=key_id, day=day)


def forget_unlinked_trajectories(sender: Any, *, trajectory_ids: list[uuid.UUID], **kwargs: Any) -> None:
    """Retention unlinked their dossiers: their references no longer lead back to them. The ledger's entries
    stay as they are, true and verifiable, belonging to no dossier."""
    for start in range(0, len(trajectory_ids), FORGET_CHUNK):
        references.forget(trajectory_ids[start : start + FORGET_CHUNK])
