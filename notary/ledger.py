"""The ledger: append-only facts that Anoniem Garant attests, each a leaf of a Merkle tree (RFC 9162).

An entry names a trajectory only by its reference (notary.references), an organisation by id and a week by
its Monday; its facts are code words and numbers. ``append`` is the only way in: it gives the entry the
next sequence number, its leaf hash and its seal, and stores a fact once however often it is appended (the
keyed ``source``), so the jobs that feed the ledger may run again after a crash without a double entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

from notary import signing
from notary.models import LedgerEntry
from preventicons.dbrouter import CASEFILES

Kind = LedgerEntry.Kind
# One PostgreSQL advisory lock key for appending (an arbitrary constant: "pvLEDGER" as bytes).
APPEND_LOCK = 0x7076_4C45_4447_4552


@dataclass(frozen=True)
class Fact:
    """One fact to append. ``source`` says what it came from, uniquely (``"session_held:<uuid>"``); it is
    stored only as a keyed hash."""

    kind: str
    source: str
    week: dt.date
    reference: str = ""
    organisation_id: int | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


def canonical(entry: LedgerEntry) -> bytes:
    """The entry as its leaf hash covers it: every column but the hashes, in a fixed order and notation."""
    return json.dumps(
        [
            entry.sequence,
            entry.kind,
            entry.reference,
            entry.organisation_id,
            entry.week.isoformat(),
            entry.facts,
        ],
        ensure_ascii=True,
        separators=(",", ":"),
        sort_keys=True,
    ).encode("ascii")


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162, 2.1.1: the hash of a leaf is SHA-256(0x00 || leaf)."""
    return hashlib.sha256(b"\x00" + data).digest()


def _lock_for_append() -> None:
    """Appends one after the other: two side by side would take the same sequence number. SQLite's
    transactions begin IMMEDIATE (the one write lock); the unique sequence catches anything else."""
    connection = connections[CASEFILES]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK])


def append(fact: Fact) -> LedgerEntry | None:
    """Append one fact; None when it was appended before (nothing is written then)."""
    appended = append_many([fact])
    return appended[0] if appended else None


def append_many(facts: Iterable[Fact]) -> list[LedgerEntry]:
    """Append facts in the order given, in one transaction; those appended before are skipped.

    An unknown kind, or a week that is not a Monday, is a ValueError and writes nothing.
    """
    wanted: dict[str, Fact] = {}
    for fact in facts:
        Kind(fact.kind)  # ValueError for a kind the ledger does not know
        if fact.week.weekday() != 0:
            raise ValueError(f"a ledger week is a Monday, not {fact.week}")
        wanted.setdefault(signing.source_of(fact.source), fact)
    if not wanted:
        return []
    with transaction.atomic(using=CASEFILES):
        _lock_for_append()
        known = set(LedgerEntry.objects.filter(source__in=list(wanted)).values_list("source", flat=True))
        last = LedgerEntry.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
        entries = []
        for source, fact in wanted.items():
            if source in known:
                continue
            last += 1
            entry = LedgerEntry(
                sequence=last,
                kind=fact.kind,
                reference=fact.reference,
                organisation_id=fact.organisation_id,
                week=fact.week,
                facts=dict(fact.facts),
                source=source,
            )
            entry.leaf_hash = leaf_hash(canonical(entry)).hex()
            entry.seal = signing.seal_of(entry.sequence, entry.leaf_hash)
            entries.append(entry)
        LedgerEntry.objects.bulk_create(entries, batch_size=2000)
    return entries


def was_appended(source: str) -> bool:
    return LedgerEntry.objects.filter(source=signing.source_of(source)).exists()
