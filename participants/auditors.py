"""Auditors and the organisations they audit: what the notary may read about them.

Anoniem Garant's engagements (notary.models.Engagement) hold ids into this store, not relations: stores are
not joined. The notary asks here who may be engaged (an active staff user with the auditor role), what an
auditor's username and an organisation's name are, and never reads these tables itself. Staff and
organisations only: nothing here touches a participant.
"""

from __future__ import annotations

from collections.abc import Iterable

from participants.models import Organisation, StaffUser
from preventicons.roles import Role


def _auditors() -> list[tuple[int, str]]:
    return list(
        StaffUser.objects.filter(is_active=True, groups__name=Role.AUDITOR.value)
        .distinct()
        .order_by("username")
        .values_list("pk", "username")
    )


def auditor_choices() -> list[tuple[int, str]]:
    """(id, username) of every active staff user holding the auditor role, for the admin's choice of one."""
    return _auditors()


def is_auditor(staff_id: int) -> bool:
    """Whether this staff user is active and holds the auditor role now."""
    return StaffUser.objects.filter(pk=staff_id, is_active=True, groups__name=Role.AUDITOR.value).exists()


def usernames(ids: Iterable[int]) -> dict[int, str]:
    """The username of each of these staff users that exists."""
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(StaffUser.objects.filter(pk__in=wanted).values_list("pk", "username"))


def organisation_choices() -> list[tuple[int, str]]:
    """(id, name) of every organisation, by name."""
    return list(Organisation.objects.order_by("name", "pk").values_list("pk", "name"))


def organisation_names(ids: Iterable[int]) -> dict[int, str]:
    """The name of each of these organisations that exists."""
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(Organisation.objects.filter(pk__in=wanted).values_list("pk", "name"))
