"""Who a participant is, opened live for the casemanager they asked to contact them: never to be stored.

A dossier (casefiles) holds no name, e-mail address or number: only the pseudonym P, sealed, and the channel
the participant chose when asking for contact. When its casemanager opens the contact, casefiles asks
``live_identity`` with the dossier's participant id and P; the answer is shown once, or compared in memory
(to refuse a progress note that names the person), and never written anywhere. Nothing in it is logged.

Only an active participant whose sealed pseudonym is the dossier's P is answered: a stopped participant has
no P (crypto-shredded), an inactive one is out of reach until they come back, and a dossier paired with
another participant's id learns nothing. The pseudonym alone, for a dossier that has the id only, is
``participants.queries.active_pseudonym``.
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from participants.invitations import listed_hashes
from participants.models import Participant

# The contact channels a participant can ask for (scores.wellbeing.CONTACT_CHANNELS, which stands above
# this app and is not imported here).
EMAIL = "email"
PHONE = "phone"
CHANNELS = (EMAIL, PHONE)

# Dutch (and a few neighbouring) surname particles, lower case: never a name part on their own, so a note
# saying "van de week" is not refused for Mr Van de Berg. Multi-word particles ("van der", "in 't") are
# their words, each on this list.
PARTICLES = frozenset(
    {
        "van",
        "de",
        "der",
        "den",
        "het",
        "'t",
        "ter",
        "ten",
        "te",
        "in",
        "op",
        "aan",
        "uit",
        "bij",
        "voor",
        "onder",
        "over",
        "tot",
        "'s",
        "d'",
        "la",
        "le",
        "du",
        "des",
        "del",
        "della",
        "di",
        "da",
        "dos",
        "von",
        "vom",
        "zu",
        "zum",
        "zur",
        "auf",
    }
)
# A name part shorter than this (an initial) would match almost any note: not a part.
MIN_PART_LENGTH = 2
_HYPHENS = re.compile(r"[-\u2010\u2011\u2012\u2013\u2014]+")
# Punctuation at either end of a part: the full stop of an initial, a comma, brackets, quotes.
_EDGES = '.,;:()[]"\u2018\u2019\u201c\u201d'


@dataclass(frozen=True)
class LiveIdentity:
    """A participant's name and one address, opened for one page: never stored by the caller, never logged.

    ``channel`` is "email" or "phone"; ``address`` the e-mail address or the E.164 mobile number, "" when
    none is known for that channel. ``first_names`` and ``last_names`` are the parts of the name (particles
    and initials left out), for refusing notes that name the person.
    """

    name: str
    channel: str
    address: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    # Asked for e-mail with no address of their own (only the one the employer listed, whose mailbox the
    # employer may read): their mobile number instead, as the help page tells them ("" if none).
    phone_instead: str = ""

    def __repr__(self) -> str:
        # Kept out of tracebacks, error reports and debug output: the dataclass default would print it all.
        return f"LiveIdentity(channel={self.channel!r})"


def _active_under(participant: Participant, pseudonym: str) -> bool:
    """Active now, and their sealed P is this one (compared in constant time; an empty P matches nothing)."""
    stored = participant.pseudonym
    return (
        participant.status == Participant.Status.ACTIVE
        and bool(stored)
        and bool(pseudonym)
        and hmac.compare_digest((stored or "").encode(), pseudonym.encode())
    )


def live_identity(*, participant_id: uuid.UUID, pseudonym: str, channel: str) -> LiveIdentity | None:
    """The name and the ``channel``'s address of an active participant whose pseudonym is ``pseudonym``;
    None for anyone else (unknown, not active, stopped or anonymised, or another participant's P)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown contact channel {channel!r}")
    participant = (
        Participant.objects.filter(pk=participant_id)
        .only(
            "organisation_id",
            "status",
            "pseudonym",
            "name",
            "email",
            "private_email",
            "mobile",
            "listed_email_hash",
        )
        .first()
    )
    if participant is None or not _active_under(participant, pseudonym):
        return None
    name = participant.name or ""
    first_names, last_names = name_parts(name)
    address = _address(participant, channel)
    return LiveIdentity(
        name=name,
        channel=channel,
        address=address,
        first_names=first_names,
        last_names=last_names,
        phone_instead=(participant.mobile or "") if channel == EMAIL and not address else "",
    )


# Asked for when there is nothing to ask about, so the query runs all the same (see active_among).
NOBODY = uuid.UUID(int=0)


def active_among(pairs: Mapping[uuid.UUID, str]) -> set[uuid.UUID]:
    """Of these (participant id, pseudonym P) pairs, the ids of participants who are active now and whose
    sealed P is the one given: one query for them all (their status is sealed, so decided here).

    Casefiles asks this instead of keeping a copy of who is active: a copy would have to be written when
    someone becomes inactive or comes back, in the second they act. An empty mapping still runs the query
    (for NOBODY), so a caller that found nothing takes as long as one that found something.
    """
    wanted = dict(pairs) or {NOBODY: ""}
    found = Participant.objects.filter(pk__in=list(wanted)).only("status", "pseudonym")
    return {participant.pk for participant in found if _active_under(participant, wanted[participant.pk])}


def _address(participant: Participant, channel: str) -> str:
    if channel == PHONE:
        return participant.mobile or ""
    # Never the address the employer listed them under: the employer may read that mailbox, and a
    # casemanager's mail in it would tell the employer who asked for help. Their private address (proven by
    # a code), or an address they gave in its place (a correction); otherwise none (see phone_instead).
    if participant.private_email:
        return participant.private_email
    email = participant.email or ""
    if not email or _is_employers_address(participant, email):
        return ""
    return email


def _is_employers_address(participant: Participant, email: str) -> bool:
    listed, _mobile = listed_hashes(organisation_id=participant.organisation_id, email=email, mobile=None)
    stored = participant.listed_email_hash
    return stored is None or listed is None or hmac.compare_digest(listed, stored)


def name_parts(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(first names, last names) of a full name as the address list gives it ("Anne-Marie van der Berg").

    The first names are the words before the first particle that follows the first word, or else the first
    word alone; the rest is the surname. Words split on hyphens; particles and initials are no part.
    """
    words = name.split()
    if not words:
        return (), ()
    if _is_particle(words[0]):
        first_words: list[str] = []
        rest = words
    else:
        cut = next((i for i, word in enumerate(words) if i > 0 and _is_particle(word)), 1)
        first_words, rest = words[:cut], words[cut:]
    return _parts(first_words), _parts(rest)


def _is_particle(word: str) -> bool:
    return word.strip(_EDGES).lower() in PARTICLES


def _parts(words: list[str]) -> tuple[str, ...]:
    parts: list[str] = []
    for word in words:
        for piece in _HYPHENS.split(word):
            piece = piece.strip(_EDGES)
            if len(piece) < MIN_PART_LENGTH or piece.lower() in PARTICLES or piece in parts:
                continue
            parts.append(piece)
    return tuple(parts)
