"""Demo data of the participants app: five organisations, their people, and one staff login per role.

Called by ``manage.py seed_demo``; safe to run again (everything is found by a natural key before it is made).
Every name, address and number here is invented.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from participants.agreements import casemanager_has_signed_agreement, has_signed_agreement, record_agreement
from participants.casemanagers import link_casemanager
from participants.enrolment import invitation_days, record_consent
from participants.invitations import send_invitations
from participants.models import Department, Invitation, Organisation, Participant, StaffUser
from preventicons.crypto import blind_index_email, hash_token, new_pseudonym, new_token
from preventicons.roles import Role

DEMO_PASSWORD = "preventicons-demo"  # noqa: S105  # nosec B105  # demo only, refused in production
AGREEMENT_SIGNED_ON = dt.date(2026, 1, 5)


@dataclass(frozen=True)
class DemoOrganisation:
    name: str
    sector: str
    # The CBS SBI code: the reports compare an organisation with the others of its first two digits.
    sbi_code: str
    signer: str
    # Department -> people. "*" marks someone invited who has not enrolled yet.
    departments: dict[str, list[str]]


# De Linde's employer (demo-hr-zorg) sees every part of the reports: Verpleging is always over the reporting
# threshold of five, Thuiszorg hovers around it (shown one week, folded the next), and Facilitair has exactly
# four people, so its figures are never shown. Three small care organisations in the same SBI division (87,
# "verpleging, verzorging en thuiszorg") answer enough every week to pass the rules themselves: with them De
# Linde's report shows a sector comparison. The builder has no peers in its division (41): its report says
# why there is no sector figure. A transport company and a printer outside care complete all organisations.
ORGANISATIONS: tuple[DemoOrganisation, ...] = (
    DemoOrganisation(
        "Zorggroep De Linde",
        "zorg",
        "8710",
        "M. Verhoeven, bestuurder",
        {
            "Verpleging": [
                "Sanne de Vries",
                "Daan Jansen",
                "Lotte Bakker",
                "Bram Visser",
                "Fleur Smit",
                "Thijs Meijer",
                "Eva de Boer",
                "Julia Koster",
                "Tim Prins",
                "*Ruben Mulder",
            ],
            "Thuiszorg": [
                "Anouk de Groot",
                "Jesse Bos",
                "Iris Vos",
                "Stijn Peters",
                "Noor Hendriks",
                "*Lars van Leeuwen",
            ],
            "Facilitair": ["Femke Dekker", "Sem Brouwer", "Lieke de Wit", "Koen Dijkstra"],
        },
    ),
    DemoOrganisation(
        "Bouwbedrijf Van der Meer",
        "bouw",
        "4120",
        "P. van der Meer, directeur",
        {
            "Uitvoering": [
                "Jeroen Smits",
                "Mark de Graaf",
                "Joost van der Linden",
                "Kevin Kok",
                "Niels Jacobs",
                "Dennis de Haan",
                "Rick Vermeulen",
            ],
            "Kantoor": [
                "Marloes van den Berg",
                "Ingrid van Dijk",
                "Esther Schouten",
                "Wouter Willems",
                "*Annelies Hoekstra",
            ],
        },
    ),
    # Two more outside care, so that all organisations minus De Linde's sector is never one organisation
    # (the reports then withhold the all-organisations figure: the difference would be that one's figure).
    DemoOrganisation(
        "Transport Snel BV",
        "transport",
        "4941",
        "K. Snel, directeur",
        {
            "Chauffeurs": [
                "Ahmed Amrani",
                "Bart Hofman",
                "Chantal Verbeek",
                "Dirk Mol",
                "Ellen Zwart",
                "Frank Lubbers",
                "Gerda Boon",
                "Hugo Stam",
                "Inge Koopman",
                "Jan Ros",
                "Karin Vos",
                "Leon Smeets",
            ],
        },
    ),
    DemoOrganisation(
        "Drukkerij Het Blad",
        "drukkerij",
        "1812",
        "M. Blad, eigenaar",
        {
            "Productie": [
                "Mirjam de Lange",
                "Nick Verhoef",
                "Petra Ouwens",
                "Quinten Baas",
                "Rianne Hol",
                "Sander Meulman",
                "Tessa van Loon",
                "Ugo Ferri",
                "Vera Kluit",
                "Wim de Ruiter",
                "Xander Pool",
                "Yvonne Kroes",
            ],
        },
    ),
    DemoOrganisation(
        "Verpleeghuis Rozenhof",
        "zorg",
        "8710",
        "H. Kuipers, directeur",
        {
            "Zorg": [
                "Marieke Huisman",
                "Jasper Wolters",
                "Sophie Kramer",
                "Luuk van Wijk",
                "Maud Postma",
                "Gijs Kuiper",
                "Roos Veenstra",
                "Milan Bosman",
                "Hanna Evers",
                "Olaf Timmer",
                "Nina Brink",
                "Pim Scholten",
            ],
        },
    ),
    DemoOrganisation(
        "Stichting De Wissel",
        "zorg",
        "8720",
        "A. Mertens, bestuurder",
        {
            "Wonen": [
                "Yara van Beek",
                "Joris Haan",
                "Demi Lammers",
                "Bas Groen",
                "Lisa Wouters",
                "Teun Blom",
                "Amber Sanders",
                "Floris Verbeek",
                "Merel Boer",
                "Sven Maas",
                "Kim Dam",
                "Rik Hoogland",
            ],
        },
    ),
    DemoOrganisation(
        "Woonzorg Het Baken",
        "zorg",
        "8730",
        "E. Lubbers, bestuurder",
        {
            "Zorg": [
                "Loes Bakx",
                "Hugo Martens",
                "Vera Claassen",
                "Jelle Wijnands",
                "Ilse Kemper",
                "Mats Dekkers",
                "Tess Hermans",
                "Ruud Molenaar",
                "Anne Vink",
                "Kees Jonker",
                "Pleun Smeets",
                "Bart Zwart",
            ],
        },
    ),
)
NAMES = [organisation.name for organisation in ORGANISATIONS]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: Role
    organisation: str | None = None


LOGINS = (
    DemoLogin("demo-admin", Role.ADMIN),
    DemoLogin("demo-hr-zorg", Role.EMPLOYER, "Zorggroep De Linde"),
    DemoLogin("demo-hr-bouw", Role.EMPLOYER, "Bouwbedrijf Van der Meer"),
    DemoLogin("demo-casemanager", Role.CASEMANAGER),
    DemoLogin("demo-auditor", Role.AUDITOR),
)


def demo_email(name: str) -> str:
    first, _, rest = name.partition(" ")
    return f"{first}.{rest.replace(' ', '')}@example.nl".lower()


def demo_mobile(number: int) -> str:
    """A Dutch mobile number as a person types it (06-…), normalised to E.164 as the import would."""
    parsed = phonenumbers.parse(f"06-{12345600 + number}", "NL")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def demo_totp_key(username: str) -> str:
    """A fixed TOTP secret per demo login (40 hex digits): an authenticator set up once keeps working."""
    return hashlib.sha256(f"preventicons-demo-totp:{username}".encode()).hexdigest()[:40]


def seed_organisations() -> int:
    """Organisations, signed agreements, departments and people; returns how many people were added."""
    added = 0
    number = 0
    for demo in ORGANISATIONS:
        organisation, _ = Organisation.objects.get_or_create(
            name=demo.name, defaults={"sector": demo.sector, "sbi_code": demo.sbi_code}
        )
        if not organisation.sbi_code:
            # A demo database made before the reports had SBI codes.
            organisation.sbi_code = demo.sbi_code
            organisation.save(update_fields=["sbi_code"])
        if not has_signed_agreement(organisation):
            record_agreement(
                organisation=organisation,
                signed_on=AGREEMENT_SIGNED_ON,
                signer=demo.signer,
                document=f"Verwerkersovereenkomst {demo.name} (demo)".encode(),
            )
        for department_name, people in demo.departments.items():
            department, _ = Department.objects.get_or_create(organisation=organisation, name=department_name)
            for entry in people:
                number += 1
                invited_only = entry.startswith("*")
                added += seed_participant(
                    organisation=organisation,
                    department=department,
                    name=entry.lstrip("*"),
                    mobile=demo_mobile(number),
                    active=not invited_only,
                )
    return added


def seed_participant(
    *, organisation: Organisation, department: Department, name: str, mobile: str, active: bool
) -> int:
    """One person on the address list, found again by the blind index of their address; 1 if added."""
    email = demo_email(name)
    email_index = blind_index_email(email, organisation.index_salt)
    if Participant.objects.filter(organisation=organisation, email_index=email_index).exists():
        return 0
    # Plain saves for now; the participant journey will seed through the address-list import instead.
    participant = Participant(organisation=organisation, department=department, name=name)
    participant.set_email(email)
    participant.set_mobile(mobile)
    if active:
        participant.status = Participant.Status.ACTIVE
        participant.pseudonym = new_pseudonym()
        # As chosen at enrolment: the weekly message by SMS, never to the work address unasked.
        participant.weekly_channel = Participant.WeeklyChannel.SMS
        participant.was_invited = True
    participant.save()
    if active:
        record_consent(participant=participant)
    return 1


def seed_login(login: DemoLogin) -> TOTPDevice:
    """A staff login with the demo password, its role, and a confirmed TOTP device with a fixed secret."""
    organisation = Organisation.objects.get(name=login.organisation) if login.organisation else None
    is_admin = login.role is Role.ADMIN
    user, created = StaffUser.objects.get_or_create(
        username=login.username,
        defaults={"organisation": organisation, "is_staff": is_admin, "is_superuser": is_admin},
    )
    if created or not user.check_password(DEMO_PASSWORD):
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=login.role.value))
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="default")
    key = demo_totp_key(login.username)
    if device.key != key or not device.confirmed:
        device.key = key
        device.confirmed = True
        device.save()
    if login.role is Role.CASEMANAGER and not casemanager_has_signed_agreement(user):
        record_agreement(
            casemanager=user,
            signed_on=AGREEMENT_SIGNED_ON,
            signer="Demo casemanager",
            document=b"Verwerkersovereenkomst casemanager (demo)",
        )
    if login.role is Role.CASEMANAGER:
        # The demo casemanager serves every demo organisation: their help requests reach the dashboard.
        for organisation_name in NAMES:
            link_casemanager(organisation=Organisation.objects.get(name=organisation_name), casemanager=user)
    return device


def fresh_invitation() -> tuple[Participant, str] | None:
    """A new invitation link for the first demo person not enrolled yet, or None when everyone enrolled.

    The link the invitation schedule sends is in the development mailbox only once the worker has sent it
    (on a weekday between the sending hours); this one can be used at once. A new token on every run.
    """
    invited = (
        Participant.objects.filter(organisation__name__in=NAMES, is_listed=True)
        .with_status(Participant.Status.INVITED)
        .order_by("pk")
    )
    participant = invited.first()
    if participant is None:
        return None
    token = new_token()
    # As the schedule's links do: the number the employer supplied, sealed on the link, gets its SMS code.
    Invitation.objects.create(
        participant=participant,
        mobile=participant.mobile,
        token_hash=hash_token(token),
        expires_at=timezone.now() + invitation_days(),
    )
    return participant, token


def seed(*, write: Callable[[str], None]) -> None:
    """Add whatever of the participants app's demo data is missing, and print the demo logins."""
    with transaction.atomic():
        added = seed_organisations()
        devices = [(login, seed_login(login)) for login in LOGINS]
        # The real schedule for everyone listed and not invited yet (the demo's "*" people): invitation and
        # reminders land in the development mailbox when due, as they would in a real mailbox.
        for organisation in Organisation.objects.filter(name__in=NAMES):
            send_invitations(organisation=organisation)
        invitation = fresh_invitation()
    people = Participant.objects.filter(organisation__name__in=NAMES).count()
    write(f"participants: {people} people in {len(ORGANISATIONS)} organisations ({added} added)")
    write("")
    write(f'Demo logins (password "{DEMO_PASSWORD}"; second factor: add the otpauth:// URI to an')
    write("authenticator app, or print the current code with `python manage.py demo_code <username>`):")
    for login, device in devices:
        where = f" ({login.organisation})" if login.organisation else ""
        write(f"  {login.username:<18} {login.role.value}{where}")
        write(f"      {device.config_url}")
    write("")
    mailbox = f"{settings.SITE_URL}{reverse('dev-mailbox')}"
    if invitation is None:
        write("participants: every demo person has enrolled (make clean starts afresh)")
    else:
        participant, token = invitation
        link = settings.SITE_URL + reverse("participants:invitation", kwargs={"token": token})
        write(
            f"participants: {participant.name} ({participant.organisation.name}) is invited and not enrolled "
            f"yet; work address {participant.email}, mobile {participant.mobile}. Their invitation link:"
        )
        write(f"  {link}")
        write(
            "  Once enrolled, the request batch makes them a participant within "
            f"{settings.HELP_REQUEST_BATCH_MINUTES} minutes (or at once: "
            "`.venv/bin/python manage.py take_up_requests`); their first weekly link comes with the next "
            "round, or at once with "
            f"`.venv/bin/python manage.py run_weekly_round {participant.organisation_id}`."
        )
    write(f"Every e-mail and text message (codes, links) arrives in the development mailbox: {mailbox}")
