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

from participants.models import Participant
from participants.offers import AccountOffer
from participants.participation import every_store, record_contact_consent
from scores import queries
from scores.signals import help_requested

ONE_WEEK = dt.timedelta(days=7)
# The contact consent text lives in templates/scores/help.html; change both together.
CONTACT_CONSENT_VERSION = "2026-11-contact"
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
    """Record their consent to be contacted and hand the request to the casefiles side, in one transaction.

    Nothing in the identity store says "asked for help" beyond the contact consent record. Asking twice
    records a second consent and still leads to one dossier (``help_requested`` receivers are idempotent).
    Raises HelpRefused for an unknown channel or a participant who is not active.
    """
    if channel not in CONTACT_CHANNELS:
        raise HelpRefused(_("Choose how you would like to be contacted."))
    with every_store():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        pseudonym = locked.pseudonym
        if locked.status != Participant.Status.ACTIVE or not pseudonym:
            raise HelpRefused(_("This link no longer works. Open your account to start again."))
        consent = record_contact_consent(participant=locked, text_version=consent_text_version)
        consented_on = timezone.localdate(consent.recorded_at)
        help_requested.send(
            sender=Participant,
            pseudonym=pseudonym,
            channel=channel,
            consent_version=consent_text_version,
            consented_on=consented_on,
        )
    return HelpRequested(channel=channel, consented_on=consented_on)
