"""Signals for help: when a participant's own scores suggest offering contact, and asking for it.

The rules (settings, defaults in brackets), read only from the participant's own scores:

- this week's score is at or under ``HELP_SCORE_THRESHOLD`` (2: "Bad" or "Very bad");
- it fell by ``HELP_DROP_POINTS`` or more (2) since the week before;
- or it is the last of ``HELP_DROP_WEEKS`` (3) scores in consecutive weeks, each lower than the one before.

Weeks without a score break a run: a fall is measured only between weeks that follow each other, since a
gap says nothing about how the weeks in between went.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from participants import queries as participant_queries
from participants import requestqueue
from participants.models import Participant
from participants.offers import AccountOffer
from participants.signals import participant_stopped
from preventicons.dbrouter import every_store
from scores import queries
from scores.signals import casemanager_change_requested, help_requested

ONE_WEEK = dt.timedelta(days=7)
# The contact consent text lives in templates/scores/help.html; change both together.
CONTACT_CONSENT_VERSION = "2026-12-contact"
CONTACT_CHANNELS = ("phone", "email")


def _own_values(pseudonym: str, week: dt.date) -> dict[dt.date, int]:
    return {
        dt.date.fromisoformat(row["week"]): row["value"]
        for row in queries.weekly_values_for(pseudonym)
        if dt.date.fromisoformat(row["week"]) <= week
    }


def should_offer_help(*, pseudonym: str, week: dt.date) -> bool:
    """Whether this participant's score of ``week`` (with the weeks before it) calls for offering contact."""
    values = _own_values(pseudonym, week)
    current = values.get(week)
    if current is None:
        return False
    if current <= settings.HELP_SCORE_THRESHOLD:
        return True
    previous = values.get(week - ONE_WEEK)
    if previous is not None and previous - current >= settings.HELP_DROP_POINTS:
        return True
    run = [values.get(week - ONE_WEEK * back) for back in range(settings.HELP_DROP_WEEKS)]
    if settings.HELP_DROP_WEEKS >= 2 and None not in run:
        # run is newest first: a decrease over time is an increase along the list.
        return all(newer < older for newer, older in itertools.pairwise(run))  # type: ignore[operator]
    return False


# How recent the latest answer must be for the account page to offer contact from it: this week or last.
ACCOUNT_OFFER_DAYS = 14


def offer_help_on_account(pseudonym: str) -> AccountOffer | None:
    """The account page's quiet offer of contact, when the latest recent answer calls for it.

    This is where the drop and three-falling-weeks signals reach the participant: behind both factors, never
    on a page a weekly link opens (scores.views), which anyone holding the link could read.
    """
    weeks = [dt.date.fromisoformat(row["week"]) for row in queries.weekly_values_for(pseudonym)]
    if not weeks:
        return None
    latest = max(weeks)
    if (timezone.localdate() - latest).days > ACCOUNT_OFFER_DAYS:
        return None
    if not should_offer_help(pseudonym=pseudonym, week=latest):
        return None
    return AccountOffer(
        title=_("Would you like to talk to someone?"),
        text=_(
            "Your recent answers suggest that things may be hard. A casemanager can call or e-mail you. "
            "Your employer is not told."
        ),
        action_label=_("I would like to talk to someone"),
        action_url=reverse("scores:account-help"),
    )


class HelpRefused(Exception):
    """The request for contact cannot be taken; the message says why in the participant's words."""


@dataclass(frozen=True)
class HelpRequested:
    channel: str
    consented_on: dt.date


def request_help(*, participant: Participant, channel: str, consent_text_version: str) -> HelpRequested:
    """Queue the request for contact, sealed; the next batch records the consent and opens the dossier.

    Writes one sealed queue row (participants.requestqueue) and nothing else: no consent and no dossier
    next to the score just tapped. The batch (``take_up_help_requests``) follows within
    ``HELP_REQUEST_BATCH_MINUTES``. Asking twice still leads to one dossier. Raises HelpRefused, writing
    nothing, for an unknown channel or a participant who is not active.
    """
    if channel not in CONTACT_CHANNELS:
        raise HelpRefused(_("Choose how you would like to be contacted."))
    if participant_queries.active_pseudonym(participant.pk) is None:
        raise HelpRefused(_("This link no longer works. Open your account to start again."))
    requestqueue.queue_help_request(
        participant=participant, channel=channel, consent_version=consent_text_version
    )
    return HelpRequested(channel=channel, consented_on=timezone.localdate())


@dataclass(frozen=True)
class HelpBatch:
    """What one help-request batch did: counts only."""

    taken_up: int
    dropped: int
    # Pause and resume requests (participants.requestqueue.queue_pause_change) that changed something.
    pauses_changed: int = 0
    # Requests for another casemanager (participants.requestqueue.queue_casemanager_change) passed on.
    casemanager_changes: int = 0
    # Stops done and corrections applied (participants.requestqueue.confirm_stop, confirm_change).
    stops: int = 0
    changes: int = 0
    # Inactive participants taking part again (participants.requestqueue.queue_rejoin).
    rejoins: int = 0
    # Invited people who said no (participants.requestqueue.confirm_decline).
    declines: int = 0
    # Invited people who joined (participants.requestqueue.confirm_enrolment).
    enrolments: int = 0
    # Stops of an earlier day whose dossier close was passed on (participants.queued.queue_stop_closes).
    stop_closes: int = 0


def take_up_help_requests(*, today: dt.date | None = None) -> HelpBatch:
    """Take up every queued request: consents recorded, dossiers opened, pauses, stops and corrections
    applied, in one transaction.

    All pending requests go in one transaction that every store joins, in random order, and their queue
    rows are deleted in it: a retried or crashed run records no consent twice and opens no second dossier
    (``help_requested`` receivers keep one open dossier per pseudonym). Requests of someone who stopped or
    is no longer active in the meantime are dropped. The stops of days before ``today`` are passed on as
    ``participant_stopped`` (their dossier closes, logged as the participant's, in this transaction); a
    retried run finds the dossier closed and unlinked from P and writes nothing a second time.
    """
    with every_store():
        taken = requestqueue.take_up_pending(today=today)
        for request in taken.accepted:
            help_requested.send(
                sender=Participant,
                pseudonym=request.pseudonym,
                channel=request.channel,
                consent_version=request.consent_version,
                consented_on=request.consented_on,
                participant_id=request.participant_id,
                organisation_id=request.organisation_id,
            )
        for pseudonym in taken.casemanager_changes:
            casemanager_change_requested.send(sender=Participant, pseudonym=pseudonym)
        for pseudonym in taken.stop_closes:
            participant_stopped.send(sender=Participant, pseudonym=pseudonym)
    return HelpBatch(
        taken_up=len(taken.accepted),
        dropped=taken.dropped,
        pauses_changed=taken.pauses_changed,
        casemanager_changes=len(taken.casemanager_changes),
        stops=taken.stops,
        changes=taken.changes,
        rejoins=taken.rejoins,
        declines=taken.declines,
        enrolments=taken.enrolments,
        stop_closes=len(taken.stop_closes),
    )
