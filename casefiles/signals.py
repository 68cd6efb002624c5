"""Signals the casefiles app sends to the app above it (notary), which it never imports.

``dossiers_unlinked``
    Sent by ``casefiles.retention.run_retention`` inside its transaction on the casefiles store, after it
    has unlinked the closed dossiers whose ``DOSSIER_UNLINK_AFTER_CLOSE_DAYS`` have passed. Keyword argument:

    - ``trajectory_ids`` (list of UUID): the trajectories of every closed dossier past that term, those
      unlinked tonight and those that were unlinked before (by an earlier night, or at once by the
      participant's stop, which leaves nothing for retention to unlink). The trajectories themselves stay
      (their dates and sessions are what the notary attests); a receiver destroys whatever of its own still
      leads from them to a reference, or back (notary: the trajectory references).

    Sent every night with the whole set, so a night that failed, or a dossier a stop unlinked, is caught up
    by the next: receivers must be idempotent, and a receiver that raises rolls the unlinking back with it.
    Not sent when there is no such trajectory.
"""

from __future__ import annotations

from django.dispatch import Signal

dossiers_unlinked = Signal()
