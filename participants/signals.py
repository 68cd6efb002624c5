"""Signals the participants app sends to the apps above it (scores, casefiles), which it never imports.

``participant_stopped``
    Sent by the request batch (``scores.wellbeing.take_up_help_requests``) inside its transaction, which
    every store joins, for each participant whose stop (``participants.account.stop_participation``, or the
    nightly anonymisation) was queued on an earlier day (``participants.requestqueue.queue_stop_closes``):
    not in the stop's own transaction, so that nothing a receiver writes sits next to the stop (issue 14).
    By then nothing on the identity side names P but the queued row this batch deletes. Keyword argument:

    - ``pseudonym`` (str): the participant's pseudonym P, opened from the queue. It is the last time anyone
      can learn it: a receiver unlinks whatever it keeps under P and must not store it.

    A receiver that raises rolls the whole batch back (the row stays queued for the next run). Receivers
    must be idempotent: the same P may reach them twice (a batch retried after the casefiles store
    committed and the identity store did not), and the second time must change nothing and raise nothing.

``participant_inactive``
    Sent by ``participants.participation.CountedWeek.make_inactive`` (the week-close batch) for each
    participant it has just marked inactive after ``settings.INACTIVE_AFTER_WEEKS`` closed weeks without a
    response. Keyword arguments: ``pseudonym`` (str, P; not to be stored) and ``organisation_id`` (int).
    Sent inside a transaction that every store joins, like ``participant_stopped``; receivers must be
    idempotent.

``participant_reactivated``
    Sent by ``participants.participation.reactivate_participant`` when an inactive participant comes back.
    Same keyword arguments and the same rules as ``participant_inactive``.

No app receives the last two at present: casefiles reads whether a dossier's participant is active live
(``participants.livecontact.active_among``) rather than keeping a copy that would be written in the second
someone comes back. A receiver added later must not write next to the participant's act for the same reason.
"""

from __future__ import annotations

from django.dispatch import Signal

participant_stopped = Signal()
participant_inactive = Signal()
participant_reactivated = Signal()
