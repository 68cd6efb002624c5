"""Signals the casefiles app sends to the app above it (notary), which it never imports.

``dossiers_unlinked``
    Sent by ``casefiles.retention.run_retention`` inside its transaction on the casefiles store, after it
    has unlinked the closed dossiers whose ``DOSSIER_UNLINK_AFTER_CLOSE_DAYS`` have passed. Keyword argument:

    - ``trajectory_ids`` (list of UUID): the trajectories of every closed dossier past that term, those
      unlinked tonight and those an earlier night unlinked. A dossier closed by the participant's stop is
      among them at the same term as any other (the stop only made its link lead to nobody). The
      trajectories go in the same transaction, after the receivers ran; a receiver destroys whatever of its
      own still leads from them to a reference, or back (notary: the trajectory references).

    Sent every night with the whole set, so a night that failed is caught up by the next: receivers must be
    idempotent, and a receiver that raises rolls the unlinking back with it.
    Not sent when there is no such trajectory.
"""

from __future__ import annotations

from django.dispatch import Signal

dossiers_unlinked = Signal()
