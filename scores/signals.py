"""Signals the scores app sends to the apps above it (casefiles), which it never imports.

``help_requested``
    Sent by ``scores.wellbeing.take_up_help_requests``, the batch that takes up queued requests to be
    contacted by a casemanager (every ``HELP_REQUEST_BATCH_MINUTES``, in random order), inside a
    transaction that every store joins (the contact consent is recorded in the same one). Never sent at
    the moment someone asks: that would write the dossier next to their score.
    Keyword arguments:

    - ``pseudonym`` (str): the participant's pseudonym P. A receiver keeps it only sealed under its own key
      (casefiles: the casefiles link key plus a keyed index), never in clear.
    - ``channel`` (str): how they want to be contacted, one of ``scores.wellbeing.CONTACT_CHANNELS``.
    - ``consent_version`` (str) and ``consented_on`` (date): which contact consent text they agreed to, and
      when. Not the consent row's id: stored in the casefiles store it would link a dossier to a person.
    - ``participant_id`` (UUID): the participant's id. A receiver keeps it only sealed (casefiles: under the
      casefiles link key, bound to the dossier row), to read contact details live when a casemanager asks.
    - ``organisation_id`` (int): their organisation, so the dossier goes to a casemanager serving it.

    Receivers must be idempotent: asking twice opens one dossier, not two.
"""

from __future__ import annotations

from django.dispatch import Signal

help_requested = Signal()

# ``casemanager_change_requested``
#     Sent by the same batch for each participant who asked, from their account, for another casemanager.
#     Keyword argument ``pseudonym`` (str): their P, as for ``help_requested``. The receiver hands their open
#     dossier to another casemanager serving the organisation, if there is one; idempotent.
casemanager_change_requested = Signal()
