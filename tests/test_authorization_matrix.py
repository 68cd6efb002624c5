"""Who may open which URL: every pattern in the URLconf, checked against a declared table, for every role.

A URL that is in the URLconf but not in the table fails ``test_every_url_is_declared``: a new view ships
only once someone has written down what each kind of visitor gets from it.

How to declare a URL: add one entry to ``MATRIX`` under its name (``"namespace:name"``), e.g.

    "scores:department-report": Row(
        staff(employer=OK, admin=OK, other_org=NOT_FOUND),
        kwargs=lambda w: {"organisation_id": w.organisation.pk},
    ),

``staff(...)`` sends anonymous visitors, participants and password-only sessions to the login and gives 403
to every staff role not named; ``other_org`` (employer staff of another organisation) gets what ``employer``
gets unless given. ``expect(default, role=outcome, ...)`` writes any other row. Patterns that need arguments
take ``kwargs`` computed from the ``World`` (the objects made for the test: add a field and a line in
``build_world`` when a row needs a new kind of object). ``method="post"`` with ``data`` for views that only
take POST. A whole namespace that answers alike (the Django admin) is declared once in ``GROUPS``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.http import HttpResponse, HttpResponseBase
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils import timezone
from two_factor.plugins.phonenumber.models import PhoneDevice

from casefiles.models import Deputy, Dossier, Trajectory, TrajectorySession
from notary import attestations, ledger, references
from notary.models import Engagement, FeedbackRelease
from participants.agreements import record_agreement
from participants.casemanagers import link_casemanager
from participants.models import Invitation, Organisation, Participant, StaffUser
from participants.session import bind_participant_session
from preventicons.crypto import hash_token, new_pseudonym, new_token
from preventicons.roles import Role
from scores.models import WeeklyLink
from scores.wellbeing import CONTACT_CONSENT_VERSION, request_help, take_up_help_requests
from tests.conftest import ALL_DATABASES, login_verified, make_organisation, make_staff

# --- outcomes --------------------------------------------------------------------------------------

OK = 200
FORBIDDEN = 403
NOT_FOUND = 404
NOT_ALLOWED = 405


@dataclass(frozen=True)
class Redirect:
    """A redirect (301/302/303) to the URL with this name."""

    to: str

    def __str__(self) -> str:
        return f"redirect to {self.to}"


@dataclass(frozen=True)
class Answered:
    """Any answer but a redirect to a login, a 401 or a 5xx; a 403 too unless ``forbidden_allowed``.

    ``forbidden_allowed`` is for a site that let the visitor in, whose single pages may still refuse one
    action (the admin's add page of a read-only model).
    """

    forbidden_allowed: bool = False

    def __str__(self) -> str:
        return (
            "let in (a 403 of a single page allowed)" if self.forbidden_allowed else "answered (not refused)"
        )


LOGIN = Redirect("two_factor:login")
REAUTH = Redirect("two_factor:reauth")
ACCOUNT_LINK = Redirect("participants:account-link")
ANSWERED = Answered()
LET_IN = Answered(forbidden_allowed=True)
Outcome = int | Redirect | Answered

# --- who asks ------------------------------------------------------------------------------------

ROLES = (
    "anonymous",  # no session at all
    "participant",  # a browser holding a participant's session (participants/session.py)
    "password_only",  # employer staff who passed the password but not the second factor
    "casemanager",
    "employer",
    "auditor",
    "admin",  # a platform admin with both factors
    "other_org",  # employer staff of another organisation
    # Casemanagers who may not open the casemanager's dossier (casefiles): one linked to the same
    # organisation but not assigned it, and the casemanager's deputy outside the absence period.
    "colleague",
    "deputy_out",
)
STAFF_ROLES = ("casemanager", "employer", "auditor", "admin", "other_org", "colleague", "deputy_out")
# Casemanagers too: unless a row names them, they get what the casemanager gets.
LIKE_CASEMANAGER = ("colleague", "deputy_out")


def expect(default: Outcome, **per_role: Outcome) -> dict[str, Outcome]:
    """One outcome for every role, except those named; the other casemanagers as the casemanager."""
    unknown = set(per_role) - set(ROLES)
    assert not unknown, f"unknown roles {unknown}; the roles are {ROLES}"
    outcomes = {role: per_role.get(role, default) for role in ROLES}
    for role in LIKE_CASEMANAGER:
        outcomes[role] = per_role.get(role, outcomes["casemanager"])
    return outcomes


def staff(
    *, every_staff: Outcome = FORBIDDEN, unauthenticated: Outcome = LOGIN, **per_role: Outcome
) -> dict[str, Outcome]:
    """A staff page: a login for everyone without both factors, 403 for staff roles not named."""
    outcomes = expect(
        every_staff, anonymous=unauthenticated, participant=unauthenticated, password_only=LOGIN
    )
    outcomes.update(per_role)
    if "other_org" not in per_role:
        outcomes["other_org"] = outcomes["employer"]
    for role in LIKE_CASEMANAGER:
        if role not in per_role:
            outcomes[role] = outcomes["casemanager"]
    return outcomes


def public(outcome: Outcome = OK, **per_role: Outcome) -> dict[str, Outcome]:
    return expect(outcome, **per_role)


# --- the objects a row can point at --------------------------------------------------------------


@dataclass
class World:
    organisation: Organisation
    other_organisation: Organisation
    participant: Participant
    users: dict[str, StaffUser]
    backup_phone: PhoneDevice
    extra: dict[str, Any] = field(default_factory=dict)


def build_world() -> World:
    organisation = make_organisation("Zorggroep Noord", "zorg")
    other_organisation = make_organisation("Bouwbedrijf Zuid", "bouw")
    users = {
        "casemanager": make_staff("cm-anna", Role.CASEMANAGER),
        "employer": make_staff("hr-noord", Role.EMPLOYER, organisation),
        "auditor": make_staff("garant", Role.AUDITOR),
        "admin": make_staff("admin", Role.ADMIN),
        "other_org": make_staff("hr-zuid", Role.EMPLOYER, other_organisation),
        "colleague": make_staff("cm-bert", Role.CASEMANAGER),
        "deputy_out": make_staff("cm-cees", Role.CASEMANAGER),
    }
    participant = Participant(
        organisation=organisation,
        department=organisation.departments.first(),
        status=Participant.Status.ACTIVE,
        name="Sam de Vries",
        email="sam@example.nl",
        mobile="+31611111111",
    )
    participant.save()
    backup_phone = PhoneDevice.objects.create(
        user=users["employer"], name="backup", number="+31622222222", method="sms", confirmed=True
    )
    world = World(organisation, other_organisation, participant, users, backup_phone)
    # An invited colleague with a live invitation link (the enrolment rows open it).
    invited = Participant(organisation=organisation, status=Participant.Status.INVITED, name="Kim Bakker")
    invited.save()
    world.extra["invitation_token"] = new_token()
    Invitation.objects.create(
        participant=invited,
        token_hash=hash_token(world.extra["invitation_token"]),
        expires_at=timezone.now() + dt.timedelta(days=14),
    )
    # An active colleague's weekly link (the scores:week row opens it).
    colleague = Participant(
        organisation=organisation, status=Participant.Status.ACTIVE, pseudonym=new_pseudonym()
    )
    colleague.save()
    world.extra["weekly_token"] = new_token()
    WeeklyLink.objects.create(
        participant=colleague,
        week=timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday()),
        token_hash=hash_token(world.extra["weekly_token"]),
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    # A help request of an active participant opens a dossier for the casemanager; the colleague is linked
    # to the same organisation only after it went to the casemanager, the deputy's period ended yesterday.
    for username in ("casemanager", "colleague", "deputy_out"):
        record_agreement(
            casemanager=users[username], signed_on=dt.date(2026, 1, 5), signer=username, document=b"signed"
        )
    link_casemanager(organisation=organisation, casemanager=users["casemanager"])
    asking = Participant(
        organisation=organisation, status=Participant.Status.ACTIVE, pseudonym=new_pseudonym()
    )
    asking.save()
    request_help(participant=asking, channel="email", consent_text_version=CONTACT_CONSENT_VERSION)
    take_up_help_requests()
    dossier = Dossier.objects.get()
    link_casemanager(organisation=organisation, casemanager=users["colleague"])
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    Deputy.objects.create(
        casemanager_id=users["casemanager"].pk,
        deputy_id=users["deputy_out"].pk,
        starts_on=yesterday - dt.timedelta(days=7),
        ends_on=yesterday,
    )
    trajectory = Trajectory.objects.create(dossier=dossier, kind="coaching", started_on=yesterday)
    world.extra["dossier"] = dossier.number
    world.extra["trajectory"] = trajectory.pk
    # The organisation engaged the auditor; the ledger knows the trajectory by its reference (notary).
    Engagement.objects.create(
        auditor_id=users["auditor"].pk, organisation_id=organisation.pk, engaged_on=yesterday
    )
    world.extra["reference"] = references.reference_for(trajectory.pk)
    ledger.append(
        ledger.Fact(
            kind="trajectory_opened",
            source=f"trajectory_opened:{trajectory.pk}",
            week=yesterday - dt.timedelta(days=yesterday.weekday()),
            reference=world.extra["reference"],
            organisation_id=organisation.pk,
            facts={"kind": "coaching"},
        )
    )
    world.extra["session"] = TrajectorySession.objects.create(trajectory=trajectory, planned_on=yesterday).pk
    # The auditor is engaged by the organisation and has attested its last ended quarter.
    last_quarter = attestations.ended_periods(timezone.localdate())[0]
    world.extra["period"] = {
        "period_start": last_quarter.start.isoformat(),
        "period_end": last_quarter.end.isoformat(),
    }
    world.extra["attestation"], _new = attestations.issue(
        organisation_id=organisation.pk,
        period_start=last_quarter.start,
        period_end=last_quarter.end,
        auditor_id=users["auditor"].pk,
    )
    return world


def feedback_release(world: World) -> uuid.UUID:
    """An empty release of feedback to the world's organisation: only who may open it counts here."""
    return FeedbackRelease.objects.create(
        organisation_id=world.organisation.pk, released_on=timezone.localdate()
    ).pk


def client_for(role: str, world: World) -> Client:
    client = Client()
    if role == "participant":
        session = client.session
        bind_participant_session(session, world.participant)
        session.save()
    elif role == "password_only":
        client.force_login(world.users["employer"])
    elif role != "anonymous":
        login_verified(client, world.users[role])
    return client


# --- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    outcomes: dict[str, Outcome]
    kwargs: Callable[[World], dict[str, Any]] | None = None
    method: str = "get"
    data: Callable[[World], dict[str, Any]] | None = None


NO_DOSSIER: dict[str, Outcome] = {"colleague": NOT_FOUND, "deputy_out": NOT_FOUND}

MATRIX: dict[str, Row] = {
    # --- platform pages (preventicons/urls.py) ---
    "home": Row(public(OK)),
    "staff-home": Row(staff(casemanager=OK, employer=OK, auditor=OK, admin=OK)),
    # Development only: 404 for everyone whenever DEBUG is off, as in tests (test_devmailbox.py)
    "dev-mailbox": Row(public(NOT_FOUND)),
    "logout": Row(public(Redirect("home")), method="post"),
    "set_language": Row(
        public(Redirect("home")), method="post", data=lambda w: {"language": "en", "next": "/"}
    ),
    # --- staff login and second factor (two-factor) ---
    "two_factor:login": Row(public(OK)),
    "two_factor:setup": Row(staff(every_staff=Redirect("two_factor:profile"))),
    # The QR code shows only the secret of a set-up in progress in this very session.
    "two_factor:qr": Row(expect(NOT_FOUND, anonymous=LOGIN, participant=LOGIN)),
    "two_factor:setup_complete": Row(staff(every_staff=OK)),
    # What changes how an account logs in asks for the password and a current code again first; after
    # that, only the owner's own backup phone is found (tests/test_staff_reauthentication.py).
    "two_factor:backup_tokens": Row(staff(every_staff=REAUTH)),
    "two_factor:profile": Row(staff(every_staff=OK)),
    "two_factor:reauth": Row(staff(every_staff=OK)),
    "two_factor:password_change": Row(staff(every_staff=REAUTH)),
    "two_factor:phone_create": Row(staff(every_staff=REAUTH)),
    "two_factor:phone_delete": Row(staff(every_staff=REAUTH), kwargs=lambda w: {"pk": w.backup_phone.pk}),
    # --- the Django admin: the pages that matter most, beyond the group below ---
    "admin:index": Row(staff(admin=OK)),
    "admin:participants_participant_changelist": Row(staff(admin=OK)),
    "admin:participants_staffuser_changelist": Row(staff(admin=OK)),
    "admin:participants_participant_add": Row(staff(admin=FORBIDDEN)),
    "admin:participants_participant_change": Row(
        staff(admin=OK), kwargs=lambda w: {"object_id": str(w.participant.pk)}
    ),
    "admin:participants_participant_delete": Row(
        staff(admin=FORBIDDEN), kwargs=lambda w: {"object_id": str(w.participant.pk)}
    ),
    # --- the participant's own account (participants/views/account.py) ---
    # Only the participant's session opens it; everyone else, staff included, is offered the e-mailed link.
    "participants:account": Row(expect(ACCOUNT_LINK, participant=OK)),
    "participants:account-export": Row(expect(ACCOUNT_LINK, participant=OK)),
    "participants:account-pause": Row(
        expect(ACCOUNT_LINK, participant=Redirect("participants:account")),
        method="post",
        data=lambda w: {"paused": "1"},
    ),
    "participants:account-rejoin": Row(
        expect(ACCOUNT_LINK, participant=Redirect("participants:account")), method="post"
    ),
    "participants:account-casemanager": Row(
        expect(ACCOUNT_LINK, participant=Redirect("participants:account")),
        method="post",
        data=lambda w: {"another": "1"},
    ),
    "participants:account-close": Row(expect(ACCOUNT_LINK, participant=Redirect("home")), method="post"),
    "participants:account-change": Row(
        expect(ACCOUNT_LINK, participant=Redirect("participants:account-change-confirm")),
        method="post",
        data=lambda w: {"name": "Sam Jansen", "email": "", "mobile": ""},
    ),
    # Without codes asked for first, the confirmation pages send the participant back.
    "participants:account-change-confirm": Row(
        expect(ACCOUNT_LINK, participant=Redirect("participants:account"))
    ),
    "participants:account-change-resend": Row(
        expect(ACCOUNT_LINK, participant=Redirect("participants:account")), method="post"
    ),
    "participants:account-stop": Row(expect(ACCOUNT_LINK, participant=OK)),
    "participants:account-stop-confirm": Row(
        expect(ACCOUNT_LINK, participant=Redirect("participants:account-stop"))
    ),
    "participants:account-stop-resend": Row(
        expect(ACCOUNT_LINK, participant=Redirect("participants:account")), method="post"
    ),
    "participants:account-stopped": Row(public(OK)),
    "participants:account-link": Row(public(OK)),
    "participants:account-link-confirm": Row(public(ACCOUNT_LINK)),
    # Every well-formed token, known or not, leads to the same token-free step: a decoy reads like a link.
    "participants:account-link-open": Row(
        public(Redirect("participants:account-link-confirm")), kwargs=lambda w: {"token": "A" * 43}
    ),
    # The SMS code step: only for a session that used an account link (tests/participants/test_account.py).
    "participants:account-code": Row(public(ACCOUNT_LINK)),
    "participants:account-code-resend": Row(public(ACCOUNT_LINK), method="post"),
    # --- enrolment (participants/views/enrolment.py) ---
    # The link opens for whoever holds it and leads to a token-free page; without an opened link in the
    # session every enrolment page answers like an unknown link.
    "participants:invitation": Row(
        public(Redirect("participants:enrol")), kwargs=lambda w: {"token": w.extra["invitation_token"]}
    ),
    # Both lead to the same neutral first page; what the invitation holds shows only after its SMS code.
    "participants:invitation-decline": Row(
        public(Redirect("participants:enrol")),
        kwargs=lambda w: {"token": w.extra["invitation_token"]},
    ),
    "participants:enrol": Row(public(NOT_FOUND)),
    "participants:enrol-open": Row(public(NOT_FOUND)),
    "participants:enrol-next": Row(public(NOT_FOUND)),
    "participants:enrol-consent": Row(public(NOT_FOUND)),
    "participants:enrol-details": Row(public(NOT_FOUND)),
    "participants:enrol-codes": Row(public(NOT_FOUND)),
    "participants:enrol-resend": Row(public(NOT_FOUND), method="post"),
    "participants:enrol-new-link": Row(public(NOT_FOUND), method="post"),
    "participants:enrol-decline": Row(public(NOT_FOUND)),
    "participants:enrol-welcome": Row(public(NOT_FOUND, participant=OK)),
    "participants:send-invitations": Row(
        staff(employer=Redirect("staff-home"), admin=Redirect("staff-home"), other_org=FORBIDDEN),
        method="post",
        data=lambda w: {"organisation": w.organisation.pk},
    ),
    # --- address-list import (participants/views/importing.py) ---
    # Each employer gets the form for their own organisation; an employer naming another one in a POST
    # gets 403 (tests/participants/test_import_views.py).
    "participants:import": Row(staff(employer=OK, admin=OK)),
    # What "send invitations" does, and its button (the POST is the send-invitations row above).
    # --- the casemanager's dossiers (casefiles/urls.py): one dossier, the casemanager's. Every other
    # casemanager, also one linked to the same organisation and the deputy outside the period: 404. ---
    # --- the employer's reports (scores/views_reports.py): its own organisation only; another
    # organisation's pages answer 404 like one that does not exist. The platform admin sees every one. ---
    "scores:reports": Row(staff(employer=Redirect("scores:report"), admin=OK)),
    "scores:report": Row(
        staff(employer=OK, admin=OK, other_org=NOT_FOUND),
        kwargs=lambda w: {"organisation_id": w.organisation.pk, "level": "quarter"},
    ),
    "scores:report-print": Row(
        staff(employer=OK, admin=OK, other_org=NOT_FOUND),
        kwargs=lambda w: {"organisation_id": w.organisation.pk, "level": "week"},
    ),
    "scores:report-csv": Row(
        staff(employer=OK, admin=OK, other_org=NOT_FOUND),
        kwargs=lambda w: {"organisation_id": w.organisation.pk, "level": "year"},
    ),
    "scores:report-settings": Row(
        staff(employer=OK, admin=OK, other_org=NOT_FOUND),
        kwargs=lambda w: {"organisation_id": w.organisation.pk},
    ),
    "casefiles:dashboard": Row(staff(casemanager=OK)),
    "casefiles:dossier": Row(
        staff(casemanager=OK, **NO_DOSSIER), kwargs=lambda w: {"number": w.extra["dossier"]}
    ),
    "casefiles:reveal-contact": Row(
        staff(casemanager=OK, **NO_DOSSIER), kwargs=lambda w: {"number": w.extra["dossier"]}, method="post"
    ),
    "casefiles:add-note": Row(
        staff(casemanager=Redirect("casefiles:dossier"), **NO_DOSSIER),
        kwargs=lambda w: {"number": w.extra["dossier"]},
        method="post",
        data=lambda w: {"note-kind": "session", "note-text": "Gesprek over werkdruk."},
    ),
    "casefiles:close": Row(
        staff(casemanager=Redirect("casefiles:dossier"), **NO_DOSSIER),
        kwargs=lambda w: {"number": w.extra["dossier"]},
        method="post",
        data=lambda w: {"close-text": "Afgerond."},
    ),
    "casefiles:start-trajectory": Row(
        staff(casemanager=Redirect("casefiles:dossier"), **NO_DOSSIER),
        kwargs=lambda w: {"number": w.extra["dossier"]},
        method="post",
        data=lambda w: {"trajectory-kind": "coaching", "trajectory-started_on": "2026-01-05"},
    ),
    "casefiles:add-session": Row(
        staff(casemanager=Redirect("casefiles:dossier"), **NO_DOSSIER),
        kwargs=lambda w: {"number": w.extra["dossier"], "trajectory_id": w.extra["trajectory"]},
        method="post",
        data=lambda w: {f"session-{w.extra['trajectory']}-planned_on": timezone.localdate().isoformat()},
    ),
    "casefiles:end-trajectory": Row(
        staff(casemanager=Redirect("casefiles:dossier"), **NO_DOSSIER),
        kwargs=lambda w: {"number": w.extra["dossier"], "trajectory_id": w.extra["trajectory"]},
        method="post",
        data=lambda w: {f"end-{w.extra['trajectory']}-ended_on": timezone.localdate().isoformat()},
    ),
    "casefiles:session-held": Row(
        staff(casemanager=Redirect("casefiles:dossier"), **NO_DOSSIER),
        kwargs=lambda w: {"number": w.extra["dossier"], "session_id": w.extra["session"]},
        method="post",
        data=lambda w: {f"held-{w.extra['session']}-held_on": timezone.localdate().isoformat()},
    ),
    "participants:invitations": Row(staff(employer=OK, admin=OK)),
    # --- the auditor's pages (notary/urls.py): the organisations that engaged the auditor only; any other
    # organisation answers 404 like one that does not exist (tests/notary/test_auditor_pages.py). ---
    "notary:dashboard": Row(staff(auditor=OK)),
    "notary:organisation": Row(staff(auditor=OK), kwargs=lambda w: {"organisation_id": w.organisation.pk}),
    "notary:spot-check": Row(
        staff(auditor=OK),
        kwargs=lambda w: {"organisation_id": w.organisation.pk, "reference": w.extra["reference"]},
    ),
    # --- weekly smiley page (scores/views.py) ---
    # Whoever holds the weekly link sees the smileys; no session is looked at or opened.
    "scores:week": Row(public(OK), kwargs=lambda w: {"token": w.extra["weekly_token"]}),
    # The thanks after a tap: the same for everyone holding the link (the help offer needs the tap's mark).
    "scores:thanks": Row(public(OK), kwargs=lambda w: {"token": w.extra["weekly_token"]}),
    "scores:stop": Row(public(OK)),
    # --- asking for contact (scores/views_help.py): whoever holds the weekly link, like the smileys ---
    "scores:help": Row(public(OK), kwargs=lambda w: {"token": w.extra["weekly_token"]}),
    # --- asking for contact from the account: both factors, like every account page ---
    "scores:account-help": Row(expect(ACCOUNT_LINK, participant=OK)),
    # --- the participant's sign-off (notary/views_signoff.py): both factors, like every account page ---
    "notary:sign-off": Row(expect(ACCOUNT_LINK, participant=OK)),
    # --- the employer's feedback (notary/views_feedback.py): employer staff only, the platform admin
    # included in the refusal; each employer its own organisation's, another's release answers 404. ---
    "notary:feedback": Row(staff(employer=OK)),
    "notary:feedback-release": Row(
        staff(employer=OK, other_org=NOT_FOUND), kwargs=lambda w: {"release_id": feedback_release(w)}
    ),
    # --- attestations (notary/views_attestations.py): the engaged auditor issues; the employer downloads
    # its own organisation's (another organisation's answers 404); anyone verifies. ---
    "notary:attestations": Row(staff(auditor=OK), kwargs=lambda w: {"organisation_id": w.organisation.pk}),
    # Issued in build_world already: the same statement again stands once (tests/notary/test_attestations.py).
    "notary:issue-attestation": Row(
        staff(auditor=Redirect("notary:attestations")),
        kwargs=lambda w: {"organisation_id": w.organisation.pk},
        method="post",
        data=lambda w: w.extra["period"],
    ),
    "notary:employer-attestations": Row(staff(employer=OK)),
    "notary:attestation-download": Row(
        staff(employer=OK, auditor=OK, other_org=NOT_FOUND),
        kwargs=lambda w: {"attestation_id": w.extra["attestation"].pk},
    ),
    "notary:verify": Row(public(OK)),
}


@dataclass(frozen=True)
class Group:
    """Every URL of a namespace not named in MATRIX, requested with sample arguments."""

    outcomes: dict[str, Outcome]
    samples: dict[str, str]


GROUPS: dict[str, Group] = {
    # Guarded as one site (preventicons.roles.PlatformAdminSite): what each ModelAdmin then allows the admin
    # is tested in tests/test_staff_login.py.
    "admin": Group(
        staff(admin=LET_IN),
        samples={
            "object_id": "0",
            "id": "0",
            "content_type_id": "0",
            "app_label": "participants",
            "url": "no-such-page/",
        },
    ),
}

# --- walking the URLconf ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    namespace: str | None
    name: str | None
    route: str
    arguments: tuple[str, ...]

    @property
    def key(self) -> str:
        """The name the table uses; an unnamed pattern is known by its route."""
        label = self.name if self.name is not None else f"<unnamed {self.route!r}>"
        return f"{self.namespace}:{label}" if self.namespace else label

    @property
    def group(self) -> Group | None:
        return GROUPS.get((self.namespace or "").split(":", 1)[0])


def arguments_of(pattern: Any) -> tuple[str, ...]:
    if isinstance(pattern, RoutePattern):
        return tuple(pattern.converters)
    if isinstance(pattern, RegexPattern):
        return tuple(pattern.regex.groupindex)
    return ()


def walk(
    patterns: list[Any], prefix: str = "", namespace: str | None = None, arguments: tuple[str, ...] = ()
) -> Iterator[Route]:
    for pattern in patterns:
        found = arguments + arguments_of(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = ":".join(part for part in (namespace, pattern.namespace) if part) or None
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner, found)
        elif isinstance(pattern, URLPattern):
            yield Route(namespace, pattern.name, prefix + str(pattern.pattern), found)


ROUTES = list(walk(get_resolver().url_patterns))


def sample_path(route: Route, samples: dict[str, str]) -> str:
    """The route with each argument replaced by its sample (for unnamed patterns and groups)."""
    missing = set(route.arguments) - set(samples)
    assert not missing, f"{route.key}: add samples for {missing} to its group"
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: samples[match[1]], route.route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda match: samples[match[1]], path)
    return "/" + path.replace("^", "").replace("$", "")


# --- reading an answer --------------------------------------------------------------------------------


def redirect_target(response: HttpResponseBase) -> str | None:
    if response.status_code not in (301, 302, 303, 307, 308):
        return None
    try:
        return resolve(urlsplit(response["Location"]).path).view_name
    except Resolver404:
        return f"<unresolvable {response['Location']}>"


def describe(response: HttpResponseBase) -> str:
    target = redirect_target(response)
    return f"redirect to {target}" if target else str(response.status_code)


def matches(outcome: Outcome, response: HttpResponseBase) -> bool:
    if isinstance(outcome, Redirect):
        return redirect_target(response) == outcome.to
    if isinstance(outcome, Answered):
        refused = response.status_code == 401 or redirect_target(response) == LOGIN.to
        if response.status_code == 403 and not outcome.forbidden_allowed:
            refused = True
        return not refused and response.status_code < 500
    return response.status_code == outcome


def request_as(client: Client, method: str, path: str, data: dict[str, Any]) -> HttpResponseBase:
    if method == "post":
        return client.post(path, data)
    return client.get(path, data)


# --- the tests ------------------------------------------------------------------------------------


def test_every_url_is_declared() -> None:
    undeclared = [route for route in ROUTES if route.key not in MATRIX and route.group is None]

    assert not undeclared, "declare these URLs in tests/test_authorization_matrix.py MATRIX:\n" + "\n".join(
        f"  {route.key}  (/{route.route})" for route in undeclared
    )


def test_every_url_outside_a_group_has_a_name_of_its_own() -> None:
    outside = [route for route in ROUTES if route.group is None]
    unnamed = [route.route for route in outside if route.name is None]
    keys = [route.key for route in outside]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})

    assert not unnamed, f"give these patterns a name so the table can address them: {unnamed}"
    assert not duplicated, f"these names are used by more than one pattern: {duplicated}"


def test_the_table_names_no_url_that_is_gone() -> None:
    existing = {route.key for route in ROUTES}

    assert not set(MATRIX) - existing, f"remove or rename: {sorted(set(MATRIX) - existing)}"


def test_the_matrix_notices_a_wrong_expectation() -> None:
    login_redirect = HttpResponse(status=302, headers={"Location": "/account/login/?next=/staff/"})

    assert matches(LOGIN, login_redirect)
    assert not matches(OK, login_redirect)
    assert not matches(ANSWERED, login_redirect)
    assert not matches(ANSWERED, HttpResponse(status=403))
    assert matches(ANSWERED, HttpResponse(status=404))
    assert matches(LET_IN, HttpResponse(status=403))
    assert not matches(LET_IN, login_redirect)
    assert not matches(LET_IN, HttpResponse(status=500))


DECLARED = [route for route in ROUTES if route.key in MATRIX]


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("route", DECLARED, ids=[route.key for route in DECLARED])
def test_url_answers_each_role_as_declared(route: Route) -> None:
    row = MATRIX[route.key]
    world = build_world()
    path = reverse(route.key, kwargs=row.kwargs(world) if row.kwargs else None)
    data = row.data(world) if row.data else {}

    wrong = []
    for role in ROLES:
        # A fresh client per role and URL: a row may log out, switch the language or stop an account.
        response = request_as(client_for(role, world), row.method, path, data)
        if not matches(row.outcomes[role], response):
            wrong.append(f"  {role:<14} expected {row.outcomes[role]}, got {describe(response)}")

    assert not wrong, f"{row.method.upper()} {path}:\n" + "\n".join(wrong)


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("namespace", sorted(GROUPS))
def test_every_url_of_a_group_answers_each_role_as_declared(namespace: str) -> None:
    group = GROUPS[namespace]
    routes = [route for route in ROUTES if route.group is group and route.key not in MATRIX]
    assert routes, f"no URL left in group {namespace!r}: remove it from GROUPS"
    world = build_world()
    # One world and one client per role for the whole group: a group's URLs are only read (GET).
    clients = {role: client_for(role, world) for role in ROLES}

    wrong = []
    for route in routes:
        path = sample_path(route, group.samples)
        for role in ROLES:
            response = clients[role].get(path)
            if not matches(group.outcomes[role], response):
                wrong.append(f"  {path} {role:<14} expected {group.outcomes[role]}, got {describe(response)}")

    assert not wrong, f"group {namespace!r}:\n" + "\n".join(wrong)
