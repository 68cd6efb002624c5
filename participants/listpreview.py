"""What an import of the address list will do, shown to the employer before anything is written.

Every import (the page, a command, the benchmark) leaves its list here through import_address_list; an
organisation's entries go with the nightly run once its contract has ended (participants.retention).

The counts compare the uploaded list with the list this organisation imported last (``ListedEntry``: keyed
hashes of the rows as the employer supplied them), never with the participants. The employer knows both
lists, so nothing here is news to it; a count drawn from the participants would be. Someone who stopped or
declined is gone from the participants but not from the employer's list; an enrolled participant's
corrected address is no longer the one on the list; the list no longer changes an enrolled person's name.
Each of those would make "new", "changed" or "no longer listed" differ between people who took part and
people who did not, and an employer who imports the same list twice, or moves one person, would read it.

New departments are named: departments are the employer's own words, created only by imports and the admin.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction

from participants.models import Department, ListedEntry, Organisation
from preventicons.crypto import keyed_hash, normalise_email

if TYPE_CHECKING:
    # participants.importing calls remember_imported_list; the rows are only annotated here.
    from participants.importing import Row

_BATCH = 1000


@dataclass(frozen=True)
class ImportPreview:
    """What importing the list would change, compared with the organisation's last imported list."""

    rows: int
    new: int
    changed: int
    unchanged: int
    # Only a complete list ends anyone's messages; None when the list is not marked complete.
    unlisted: int | None
    new_departments: list[str]
    # False for an organisation's first list (or the first since previews began): every row counts as new.
    has_earlier_list: bool


@dataclass(frozen=True)
class _Hashes:
    email: str
    mobile: str
    row: str


def _hashes(organisation_id: int, row: Row) -> _Hashes:
    email = normalise_email(row.email)
    return _Hashes(
        email=keyed_hash("blind_index", f"listed-email:{organisation_id}", email),
        mobile=keyed_hash("blind_index", f"listed-mobile:{organisation_id}", row.mobile),
        row=keyed_hash(
            "blind_index",
            f"listed-row:{organisation_id}",
            "\x1f".join((row.name, email, row.mobile, row.department.casefold())),
        ),
    )


def preview_import(*, organisation: Organisation, rows: list[Row], full_list: bool) -> ImportPreview:
    """Count what these (already checked) rows change against the organisation's last imported list."""
    earlier = list(ListedEntry.objects.filter(organisation=organisation))
    by_email = {entry.email_hash: entry for entry in earlier}
    by_mobile = {entry.mobile_hash: entry for entry in earlier}
    matched: set[object] = set()
    new = changed = unchanged = 0
    for row in rows:
        hashes = _hashes(organisation.pk, row)
        entry = by_email.get(hashes.email) or by_mobile.get(hashes.mobile)
        if entry is None:
            new += 1
            continue
        matched.add(entry.pk)
        if entry.row_hash == hashes.row:
            unchanged += 1
        else:
            changed += 1
    return ImportPreview(
        rows=len(rows),
        new=new,
        changed=changed,
        unchanged=unchanged,
        unlisted=sum(1 for entry in earlier if entry.pk not in matched) if full_list else None,
        new_departments=new_departments(organisation=organisation, names=(row.department for row in rows)),
        has_earlier_list=bool(earlier),
    )


def new_departments(*, organisation: Organisation, names: Iterable[str]) -> list[str]:
    """The department names of the list the organisation does not have yet, as first written, sorted.

    Matched without regard to case, as the import matches them (participants.importing._departments_for).
    """
    known = {
        name.casefold()
        for name in Department.objects.filter(organisation=organisation).values_list("name", flat=True)
    }
    found: dict[str, str] = {}
    for name in names:
        if name.casefold() not in known:
            found.setdefault(name.casefold(), name)
    return sorted(found.values(), key=str.casefold)


def remember_imported_list(*, organisation: Organisation, rows: list[Row], full_list: bool) -> None:
    """Keep the imported list as keyed hashes for the next preview (the import calls it in its transaction).

    A complete list replaces the last one; a partial list adds its rows and replaces the ones it matches.
    Stored in a random order, so the table's order says nothing about the file's.
    """
    with transaction.atomic():
        entries = [
            ListedEntry(organisation=organisation, email_hash=h.email, mobile_hash=h.mobile, row_hash=h.row)
            for h in (_hashes(organisation.pk, row) for row in rows)
        ]
        existing = ListedEntry.objects.filter(organisation=organisation)
        if full_list:
            existing.delete()
        else:
            emails = [entry.email_hash for entry in entries]
            mobiles = [entry.mobile_hash for entry in entries]
            for start in range(0, len(entries), _BATCH):
                existing.filter(email_hash__in=emails[start : start + _BATCH]).delete()
                existing.filter(mobile_hash__in=mobiles[start : start + _BATCH]).delete()
        secrets.SystemRandom().shuffle(entries)
        ListedEntry.objects.bulk_create(entries, batch_size=_BATCH)
