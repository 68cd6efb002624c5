"""What each staff role may open, as the start page's and every staff page's navigation.

Entries name URLs, not views: preventicons knows no app. A page whose app has not shipped it yet (the
casemanager's dossiers, the employer's reports, the auditor's attestations) has its entry here already and
shows up by itself once its URL name resolves; until then it is simply left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from preventicons.roles import Role


@dataclass(frozen=True)
class NavEntry:
    url_name: str
    label: Promise
    description: Promise
    roles: frozenset[Role]


@dataclass(frozen=True)
class NavLink:
    url: str
    label: str
    description: str
    url_name: str


EVERY_ROLE = frozenset(Role)

ENTRIES: tuple[NavEntry, ...] = (
    NavEntry(
        "staff-home",
        _("Start"),
        _("This overview."),
        EVERY_ROLE,
    ),
    # --- employer (HR) ---
    NavEntry(
        "participants:import",
        _("Import the address list"),
        _("Upload your employees' addresses as a CSV file; you see what changes before anything is saved."),
        frozenset({Role.EMPLOYER, Role.ADMIN}),
    ),
    NavEntry(
        "participants:invitations",
        _("Invitations"),
        _("Invite everyone who is new on the list; reminders follow by themselves."),
        frozenset({Role.EMPLOYER, Role.ADMIN}),
    ),
    NavEntry(
        "scores:reports",
        _("Reports"),
        _("Wellbeing per department and compared with your sector, for groups of at least five."),
        frozenset({Role.EMPLOYER}),
    ),
    NavEntry(
        "notary:feedback",
        _("Feedback"),
        _("What participants said about the help they got, always at least five together."),
        frozenset({Role.EMPLOYER}),
    ),
    NavEntry(
        "notary:employer-attestations",
        _("Attestations"),
        _("Anoniem Garant's signed statements about your trajectories, to download and verify."),
        frozenset({Role.EMPLOYER}),
    ),
    # --- casemanager ---
    NavEntry(
        "casefiles:dashboard",
        _("Dossiers"),
        _("The dossiers assigned to you, by dossier number."),
        frozenset({Role.CASEMANAGER}),
    ),
    # --- auditor (Anoniem Garant) ---
    NavEntry(
        "notary:dashboard",
        _("Attestations"),
        _("Verify completed trajectories and sign attestations."),
        frozenset({Role.AUDITOR}),
    ),
    # --- platform admin ---
    NavEntry(
        "admin:index",
        _("Administration"),
        _("Organisations, processing agreements, staff accounts and second factors."),
        frozenset({Role.ADMIN}),
    ),
    # --- everyone ---
    NavEntry(
        "two_factor:profile",
        _("Account security"),
        _("Your password, authenticator app, backup phone and backup codes."),
        EVERY_ROLE,
    ),
)


def _resolve(url_name: str) -> str | None:
    try:
        return reverse(url_name)
    except NoReverseMatch:
        return None


def navigation_for(roles: Iterable[Role]) -> list[NavLink]:
    """The links these roles may open, in declared order; a page that does not exist yet is left out."""
    held = set(roles)
    links = []
    for entry in ENTRIES:
        if not held & entry.roles:
            continue
        url = _resolve(entry.url_name)
        if url is not None:
            links.append(NavLink(url, str(entry.label), str(entry.description), entry.url_name))
    return links


def pages_to_come(roles: Iterable[Role]) -> list[str]:
    """The labels of pages these roles will have but whose app has not shipped them yet."""
    held = set(roles)
    return [str(entry.label) for entry in ENTRIES if held & entry.roles and _resolve(entry.url_name) is None]
