"""The rows of the request queue: their kinds, their one padded length, sealing and opening them.

Below participants.requestqueue (which queues and takes up requests, and applies them through
participants.account) and participants.account (whose stop queues its dossier's close here), so that
neither imports the other both ways.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django.utils import timezone

from participants.models import QueuedRequest

HELP = "help"
PAUSE = "pause"
# Another casemanager for their dossier, asked from the account (both factors proven).
CASEMANAGER = "casemanager"
# A stop and a correction of their details, each proven by both codes on the account.
STOP = "stop"
CHANGE = "change"
CHANGED_FIELDS = ("name", "email", "mobile")
# A stopped participant's dossier to close: P sealed, taken up by the first batch of a later day.
STOP_CLOSE = "stop-close"
# An inactive participant taking part again, asked from their account.
REJOIN = "rejoin"
# Someone invited saying no, through their invitation link and its SMS code.
DECLINE = "decline"
# Someone invited joining, through their invitation link, its SMS code, consent and any new address's code:
# the batch makes them a participant (account.apply_enrolment), so their row is not written at that moment.
ENROLMENT = "enrolment"

# Every request is padded to this many bytes (UTF-8) before sealing, so that every kind falls into one
# ciphertext length (preventicons.crypto.padded_length) and the kind shows nowhere. The longest are a
# correction and an enrolment (a private address takes the place of a corrected one): a name of 200
# characters (contact.check_text: 4 bytes each at most, no control characters), an address Django's
# EmailField takes (at most 320 characters; \u0001 in a quoted local part, 6 bytes each), a number and the
# keys. Escaped to ASCII (12 characters for an emoji, 6 for a letter of an international domain), the two
# outgrew 3072 and the last step of joining failed after every code was right (review 10).
PLAINTEXT_LENGTH = 3072


def sealed(request: dict[str, str | bool]) -> QueuedRequest:
    """An unsaved queue row holding ``request``, padded and sealed."""
    plaintext = json.dumps(request, ensure_ascii=False)
    size = len(plaintext.encode("utf-8"))
    if size > PLAINTEXT_LENGTH:
        raise ValueError("a queued request is longer than its padding")
    queued = QueuedRequest(queued_on=timezone.localdate())
    # Padded in bytes, as the sealed length counts them; JSON allows trailing blanks.
    queued.request = plaintext + " " * (PLAINTEXT_LENGTH - size)
    return queued


def opened(queued: QueuedRequest) -> dict[str, Any]:
    """The request a queue row holds."""
    request = json.loads(queued.request or "{}")
    request.setdefault("kind", HELP)
    return cast("dict[str, Any]", request)


def queue_stop_closes(pseudonyms: list[str]) -> None:
    """Queue the close of each stopped participant's dossier, P sealed; called inside the stop's transaction.

    The first batch of a later day closes it (requestqueue.take_up_pending). One row per P, written in one
    statement (the nightly anonymisation stops a thousand at a time); an empty P (never enrolled) queues
    nothing.
    """
    QueuedRequest.objects.bulk_create([sealed({"kind": STOP_CLOSE, "pseudonym": p}) for p in pseudonyms if p])


# What the participant was told is done (or, for a dossier close, what nothing else would ever do): kept
# however late the batch. A help request or a request for another casemanager is not among them: it names
# someone who asked for help, and after a week untaken it is stale (the casemanager would call about a week
# that has passed); the participant can ask again.
_KEPT_UNTIL_TAKEN = (STOP, STOP_CLOSE, CHANGE, PAUSE, REJOIN, DECLINE, ENROLMENT)


def waits_for_the_batch(queued: QueuedRequest) -> bool:
    """Whether retention must keep this row however long no batch takes it up: what the participant was
    told is done within minutes, and a stop's dossier close.

    A proven stop: purged, their erasure would be lost silently and the messages keep coming. A proven
    correction: it may be their new number after the old one went to someone else, who would go on getting
    their messages. A pause or resume: a pause is a restriction they asked for (and a resume their choice to
    hear from us again). A rejoin: they were told they take part again within minutes. A decline: they were
    told they are not invited again. An enrolment: they were told they take part. A dossier close: the
    only way left to the dossier of someone who stopped.
    """
    return bool(opened(queued)["kind"] in _KEPT_UNTIL_TAKEN)


def is_stop_close(queued: QueuedRequest) -> bool:
    """Whether this queued row closes a stopped participant's dossier (opened: the kind is sealed)."""
    return bool(opened(queued)["kind"] == STOP_CLOSE)


def is_pending(kind: str, participant: object) -> bool:
    """Whether a request of this kind for this participant waits in the queue (the queue holds at most one
    batch interval of requests)."""
    return str(participant) in pending_participants(kind)


def pending_participants(kind: str) -> set[str]:
    """The participants (their ids as text) for whom a request of this kind waits in the queue.

    Every row opened, whatever is found (a list, not a generator a caller's search would stop early): how long
    the answer takes tells nothing of whether, or where, someone's request waits.
    """
    requests = [opened(queued) for queued in QueuedRequest.objects.all()]
    return {str(request.get("participant")) for request in requests if request["kind"] == kind}
