"""Which casemanagers serve which organisation: linking them, and what other apps may read about it.

A casemanager is linked to an organisation by the platform admin (participants/admin.py), only while they
hold the casemanager role and their own signed processing agreement is recorded (participants.agreements):
no casemanager without one gets a dossier. ``casefiles`` asks ``casemanagers_serving`` / ``is_serving``
which casemanagers a dossier of the organisation may go to, and ``staff_display_names`` for the names it
shows beside a dossier; it never reads these tables itself. Ids and names of staff only: nothing here
touches a participant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from participants.agreements import require_casemanager_signed_agreement
from participants.models import CasemanagerLink, Organisation, ProcessingAgreement, StaffUser
from preventicons.roles import Role, has_role


def check_linkable(casemanager: StaffUser) -> None:
    """Return only if this staff user may serve an organisation: an active casemanager with an agreement.

    Raises ValidationError without the casemanager role (an inactive account holds no role), and
    participants.agreements.AgreementMissing without their recorded processing agreement.
    """
    if not has_role(casemanager, Role.CASEMANAGER):
        raise ValidationError(
            _("Only an active staff user with the casemanager role can be linked to an organisation."),
            code="not_a_casemanager",
        )
    require_casemanager_signed_agreement(casemanager)


def link_casemanager(
    *, organisation: Organisation, casemanager: StaffUser, on: dt.date | None = None
) -> CasemanagerLink:
    """Link the casemanager to the organisation (or return the existing link); refused, writing nothing,
    without the casemanager role or their signed processing agreement."""
    check_linkable(casemanager)
    with transaction.atomic():
        link, _created = CasemanagerLink.objects.get_or_create(
            organisation=organisation,
            casemanager=casemanager,
            defaults={"linked_on": on or timezone.localdate()},
        )
    return link


def unlink_casemanager(*, organisation: Organisation, casemanager: StaffUser) -> bool:
    """Remove the link, if any; whether there was one. Dossiers already assigned are casefiles' business."""
    deleted, _per_model = CasemanagerLink.objects.filter(
        organisation=organisation, casemanager=casemanager
    ).delete()
    return deleted > 0


def _serving(organisation_id: int) -> QuerySet[StaffUser]:
    """Active staff linked to the organisation who still hold the casemanager role and have an agreement.

    The same rule as check_linkable, in one query: a link outlives a lost role, a deactivated account or
    (were one ever removed) an agreement, and then no longer counts.
    """
    return (
        StaffUser.objects.filter(
            is_active=True,
            casemanager_links__organisation_id=organisation_id,
            groups__name=Role.CASEMANAGER.value,
        )
        .filter(agreements__party=ProcessingAgreement.Party.CASEMANAGER)
        .distinct()
    )


def casemanagers_serving(organisation_id: int) -> list[int]:
    """The ids of the casemanagers who may be given dossiers of this organisation now, sorted."""
    return sorted(_serving(organisation_id).values_list("pk", flat=True))


def is_serving(*, casemanager_id: int, organisation_id: int) -> bool:
    """Whether this staff user may be given dossiers of this organisation now (see casemanagers_serving)."""
    return _serving(organisation_id).filter(pk=casemanager_id).exists()


def notification_address(casemanager_id: int) -> str | None:
    """The e-mail address of an active staff user, for a message about their work; None without one."""
    address = (
        StaffUser.objects.filter(pk=casemanager_id, is_active=True).values_list("email", flat=True).first()
    )
    return address or None


def active_casemanagers() -> QuerySet[StaffUser]:
    """Active staff users holding the casemanager role (whether or not linked or signed), by username."""
    return (
        StaffUser.objects.filter(is_active=True, groups__name=Role.CASEMANAGER.value)
        .distinct()
        .order_by("username")
    )


def casemanager_choices() -> list[tuple[int, str]]:
    """(id, display name) of every active casemanager, for the admin's choice of one."""
    rows = active_casemanagers().values_list("pk", "first_name", "last_name", "username")
    return [
        (pk, _display_name(first_name, last_name, username)) for pk, first_name, last_name, username in rows
    ]


def _display_name(first_name: str, last_name: str, username: str) -> str:
    return f"{first_name} {last_name}".strip() or username


def staff_display_names(ids: Iterable[int]) -> dict[int, str]:
    """The full name, or else the username, of each of these staff users that exists (for "assigned to")."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = StaffUser.objects.filter(pk__in=wanted).values_list("pk", "first_name", "last_name", "username")
    return {
        pk: _display_name(first_name, last_name, username) for pk, first_name, last_name, username in rows
    }
