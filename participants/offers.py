"""Offers that higher apps make on the participant's own account page, without participants importing them.

The account page opens only after both factors (participants.session), so this is where signals read from a
participant's own history may reach them: never on a page a weekly link opens, which anyone holding the
link could read. An app above participants (scores) registers a function in its ``AppConfig.ready()``::

    register_account_offer("talk_to_someone", offer_help_on_account)

The function takes the participant's pseudonym P and returns an AccountOffer or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from participants.models import Participant


@dataclass(frozen=True)
class AccountOffer:
    """A quiet offer on the account page: a heading, one sentence, and where its button leads."""

    title: str
    text: str
    action_label: str
    action_url: str


AccountOfferSource = Callable[[str], AccountOffer | None]

_sources: dict[str, AccountOfferSource] = {}


class AccountOfferConflict(Exception):
    """Two different functions were registered under one offer name."""


def register_account_offer(name: str, fn: AccountOfferSource) -> None:
    """Add an offer source; registering the same function again is harmless (ready() may rerun)."""
    existing = _sources.get(name)
    if existing is not None and existing is not fn:
        raise AccountOfferConflict(f"account offer {name!r} is already registered by another function")
    _sources[name] = fn


def account_offers(participant: Participant) -> list[AccountOffer]:
    """The offers for this participant (none without a pseudonym: stopped or never enrolled)."""
    pseudonym = participant.pseudonym
    if not pseudonym or participant.status != Participant.Status.ACTIVE:
        return []
    found = (fn(pseudonym) for _name, fn in sorted(_sources.items()))
    return [offer for offer in found if offer is not None]
