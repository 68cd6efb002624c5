"""The ledger: append-only facts that Anoniem Garant attests, each a leaf of a Merkle tree (RFC 9162).

An entry names a trajectory only by its reference (notary.references), an organisation by id and a week by
its Monday; its facts are code words and numbers. ``append`` is the only way in: it gives the entry the
next sequence number, its leaf hash and its seal, and stores a fact once however often it is appended (the
keyed ``source``), so the jobs that feed the ledger may run again after a crash without a double entry.

Integrity, in three layers. On PostgreSQL the tables refuse UPDATE, DELETE and TRUNCATE (migration 0005):
that stops the application's own mistakes, not an owner of the tables. Each entry's seal is a MAC under a
key the database does not hold, so an entry rewritten together with its leaf hash, or slipped in, is found.
And ``sign_head`` signs the Merkle root (notary.merkle) over the entries so far with the notary's Ed25519
key: anyone with the public key can check that an entry is in a signed tree (``inclusion_proof``) and that a
later head only added to an earlier one (``consistency_proof``). ``verify`` reads the whole ledger against
all of this and names every entry or head that no longer holds.

None of that catches an owner of the casefiles store who removes the last entries together with the heads
that cover them: what is left is a shorter ledger, intact. So every signed head is also named outside the
ledger's tables, and ``verify`` checks that the ledger still holds each head named there: a copy in the
identity store, another database (``anchor``, preventicons.models.LogAnchor), the head each issued
attestation rests on, and the head named by any attestation file given to it (an employer's copy, which no
database holds). The public /verify/ page asks the same of the one file uploaded there (``holds_head``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db import connections, transaction
from django.utils import timezone
from django.utils.translation import gettext

from notary import merkle, signing
from notary.models import Attestation, LedgerEntry, TreeHead
from preventicons.dbrouter import CASEFILES, DEFAULT
from preventicons.models import LogAnchor

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


# --- the tree and its signed heads ----------------------------------------------------------------------

# Rows read at a time: the ledger grows forever, and every read here walks it from the start.
READ_CHUNK = 5000
# What a head's signature covers starts with this, so that no signed head can pass for another document
# the same key signs (an attestation).
HEAD_LABEL = "preventicons notary tree head v1"


# The ledger's name among the logs whose heads the identity store keeps (preventicons.models.LogAnchor).
ANCHOR_LOG = "notary_ledger"


class LedgerShrunk(Exception):
    """The ledger holds fewer entries than a head already signed (or its copy in the identity store):
    entries were removed; no new head."""


def _stored_leaves(size: int | None = None) -> Iterator[bytes]:
    """The leaf hashes as appended, in sequence order (the first ``size`` of them)."""
    rows = LedgerEntry.objects.order_by("sequence").values_list("leaf_hash", flat=True)
    if size is not None:
        rows = rows[:size]
    for value in rows.iterator(chunk_size=READ_CHUNK):
        yield bytes.fromhex(value)


def _walk(size: int, wanted: Iterable[merkle.Range] = ()) -> merkle.TreeWalk:
    """One pass over the first ``size`` stored leaves; ValueError when the ledger holds fewer."""
    walk = merkle.TreeWalk(wanted=set(wanted)).add_all(_stored_leaves(size))
    if walk.size != size:
        raise ValueError(f"the ledger holds {walk.size} entries, not {size}")
    return walk


def ledger_size() -> int:
    return LedgerEntry.objects.count()


def tree_root(size: int | None = None) -> bytes:
    """The Merkle root over the first ``size`` entries (all by default), as their leaf hashes were stored."""
    if size is None:
        return merkle.tree_hash(_stored_leaves())
    return _walk(size).root()


def head_bytes(head: TreeHead) -> bytes:
    """What a head's signature covers: its size, root and time, in a fixed notation."""
    signed_at = head.signed_at.astimezone(dt.UTC).isoformat(timespec="seconds")
    return json.dumps(
        [HEAD_LABEL, head.tree_size, head.root_hash, signed_at], ensure_ascii=True, separators=(",", ":")
    ).encode("ascii")


def head_holds(head: TreeHead) -> bool:
    """Whether the head carries the notary's signature over exactly its size, root and time."""
    return signing.same(head.key_fingerprint, signing.fingerprint()) and signing.signature_holds(
        head_bytes(head), head.signature
    )


def latest_head() -> TreeHead | None:
    return TreeHead.objects.order_by("-tree_size").first()


def sign_head() -> TreeHead:
    """A signed head over every entry so far; the existing one when nothing was appended since.

    Appends wait while the root is computed (the append lock), so the size and the root describe the same
    entries. The root covers the leaf hashes as they were stored at appending: an entry changed since is not
    taken into a new head (``verify`` names it). LedgerShrunk when the ledger is shorter than its last head,
    or than the last head copied to the identity store (the heads in this store may have gone with the
    entries). Every head is then copied there (``anchor``).
    """
    anchored = largest_anchored_size()
    with transaction.atomic(using=CASEFILES):
        _lock_for_append()
        # Counted first: a nightly run with nothing new reads no leaf.
        size = ledger_size()
        if size < anchored:
            raise LedgerShrunk(f"the ledger holds {size} entries, a head copied elsewhere {anchored}")
        head = TreeHead.objects.filter(tree_size=size).first()
        if head is None:
            walk = merkle.TreeWalk().add_all(_stored_leaves())
            last = latest_head()
            if last is not None and last.tree_size > walk.size:
                raise LedgerShrunk(f"the ledger holds {walk.size} entries, its last head {last.tree_size}")
            head = TreeHead(
                tree_size=walk.size,
                root_hash=walk.root().hex(),
                # Whole seconds: the signature covers the time as the database gives it back.
                signed_at=timezone.now().replace(microsecond=0),
                key_fingerprint=signing.fingerprint(),
            )
            head.signature = signing.sign(head_bytes(head))
            head.save(force_insert=True)
    anchor()
    return head


# --- anchors: the heads named outside the ledger's tables ---------------------------------------------------


def largest_anchored_size() -> int:
    """The size of the largest head copied to the identity store; 0 when none is."""
    found = (
        LogAnchor.objects.filter(log=ANCHOR_LOG).order_by("-tree_size").values_list("tree_size", flat=True)
    ).first()
    return found or 0


def anchor() -> int:
    """Copy every signed head not copied yet to the identity store; how many were copied.

    After the head's own transaction, never inside it: the two stores cannot commit as one, and a copy of a
    head that then rolled back would still be true (a signed root over entries already appended), while the
    reverse order could lose the copy. A run that fails between the two copies the head the next night (and
    any head signed before the copies existed). A head whose signature does not hold is not copied.
    """
    copied = set(LogAnchor.objects.filter(log=ANCHOR_LOG).values_list("tree_size", flat=True))
    missing = [
        head
        for head in TreeHead.objects.exclude(tree_size__in=copied).order_by("tree_size")
        if head_holds(head)
    ]
    with transaction.atomic(using=DEFAULT):
        for head in missing:
            LogAnchor.objects.get_or_create(
                log=ANCHOR_LOG,
                tree_size=head.tree_size,
                defaults={
                    "root_hash": head.root_hash,
                    "signed_at": head.signed_at,
                    "key_fingerprint": head.key_fingerprint,
                    "signature": head.signature,
                },
            )
    return len(missing)


class Named(StrEnum):
    """Where a head is named outside the ledger's tables."""

    IDENTITY_STORE = "identity_store"
    ATTESTATION = "attestation"


@dataclass(frozen=True)
class NamedHead:
    """A tree size and root named outside the ledger's tables, that the ledger must still hold."""

    tree_size: int
    root_hash: str
    named_in: Named


def attested_head(statement: Mapping[str, Any]) -> NamedHead | None:
    """The signed head an attestation's statement rests on (notary.attestations), None when it names none."""
    head = statement.get("ledger")
    if not isinstance(head, Mapping) or head.get("signed_head") is not True:
        return None
    size, root = head.get("tree_size"), head.get("root_hash")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(root, str):
        return None
    return NamedHead(size, root, Named.ATTESTATION)


def holds_head(named: NamedHead) -> bool:
    """Whether the ledger holds the head named outside its tables, by ``check_ledger``'s rule for such a
    head: a signed head stored at its size with its root (its signature holding), or else the root over the
    ledger's first ``tree_size`` entries as their leaf hashes are stored.

    For the public /verify/ page: the stored head is one indexed row; the entries are read only when it is
    missing, which a genuinely signed attestation meets only in a ledger that lost heads. Whether the
    entries still match their stored heads is the whole ledger's check (``check_ledger``), not this one.
    """
    stored = TreeHead.objects.filter(tree_size=named.tree_size).first()
    if stored is not None:
        return signing.same(stored.root_hash, named.root_hash) and head_holds(stored)
    try:
        root = tree_root(named.tree_size)
    except ValueError:  # fewer entries than the head covered: they were removed
        return False
    return signing.same(root.hex(), named.root_hash)


def _copy_holds(copy: LogAnchor) -> bool:
    return head_holds(
        TreeHead(
            tree_size=copy.tree_size,
            root_hash=copy.root_hash,
            signed_at=copy.signed_at,
            key_fingerprint=copy.key_fingerprint,
            signature=copy.signature,
        )
    )


def named_heads() -> tuple[list[NamedHead], list[int]]:
    """Every head named outside the ledger's tables that carries the notary's signature: the identity
    store's copies and the heads of the issued attestations; and the sizes of copies whose signature does
    not hold (slipped into the identity store: named, never trusted)."""
    named: list[NamedHead] = []
    forged: list[int] = []
    for copy in LogAnchor.objects.filter(log=ANCHOR_LOG).order_by("tree_size"):
        if _copy_holds(copy):
            named.append(NamedHead(copy.tree_size, copy.root_hash, Named.IDENTITY_STORE))
        else:
            forged.append(copy.tree_size)
    for document, signature in Attestation.objects.values_list("document", "signature").iterator():
        if not signing.signature_holds(document.encode(), signature):
            continue
        try:
            statement = json.loads(document)
        except ValueError:
            continue
        found = attested_head(statement) if isinstance(statement, dict) else None
        if found is not None:
            named.append(found)
    return named, forged


# --- proofs -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    """That entry ``sequence`` is in the tree of ``tree_size`` entries (RFC 9162 PATH), hashes in hex."""

    sequence: int
    tree_size: int
    leaf_hash: str
    path: tuple[str, ...]

    def holds(self, root_hash: str) -> bool:
        """Whether the proof leads from the entry's leaf hash to ``root_hash`` (hex)."""
        try:
            leaf, root = bytes.fromhex(self.leaf_hash), bytes.fromhex(root_hash)
            path = [bytes.fromhex(value) for value in self.path]
        except ValueError:
            return False
        return merkle.inclusion_holds(self.sequence - 1, self.tree_size, leaf, path, root)


@dataclass(frozen=True)
class ConsistencyProof:
    """That the tree of ``new_size`` entries only appended to that of ``old_size`` (RFC 9162 PROOF)."""

    old_size: int
    new_size: int
    path: tuple[str, ...]

    def holds(self, old_root: str, new_root: str) -> bool:
        try:
            roots = bytes.fromhex(old_root), bytes.fromhex(new_root)
            path = [bytes.fromhex(value) for value in self.path]
        except ValueError:
            return False
        return merkle.consistency_holds(self.old_size, self.new_size, *roots, path)


def inclusion_proof(sequence: int, tree_size: int) -> InclusionProof:
    """The proof that entry ``sequence`` is in the tree of the first ``tree_size`` entries; ValueError when
    either is out of range. Entry n is leaf n - 1."""
    ranges = merkle.inclusion_ranges(sequence - 1, tree_size)
    leaf = LedgerEntry.objects.filter(sequence=sequence).values_list("leaf_hash", flat=True).first()
    if leaf is None:
        raise ValueError(f"the ledger has no entry {sequence}")
    walk = _walk(tree_size, ranges)
    return InclusionProof(sequence, tree_size, leaf, tuple(h.hex() for h in walk.hashes(ranges)))


def consistency_proof(old_size: int, new_size: int) -> ConsistencyProof:
    """The proof that the tree of the first ``new_size`` entries extends that of the first ``old_size``."""
    ranges = merkle.consistency_ranges(old_size, new_size)
    walk = _walk(new_size, ranges)
    return ConsistencyProof(old_size, new_size, tuple(h.hex() for h in walk.hashes(ranges)))


# --- verification ---------------------------------------------------------------------------------------


class Flaw(StrEnum):
    CHANGED = "changed"
    REWRITTEN = "rewritten"
    REMOVED = "removed"
    OUT_OF_PLACE = "out_of_place"
    HEAD_MISMATCH = "head_mismatch"
    HEAD_SIGNATURE = "head_signature"
    HEADS_INCONSISTENT = "heads_inconsistent"
    # A head named outside the ledger's tables (NamedHead) that the ledger no longer holds.
    NAMED_HEAD_LOST = "named_head_lost"
    # A copy in the identity store that does not carry the notary's signature.
    COPY_SIGNATURE = "copy_signature"


@dataclass(frozen=True)
class Problem:
    """One thing in the ledger that no longer holds: the entry it names (``sequence``, up to ``until`` for
    several removed in a row) or the signed head (``tree_size``; ``old_size`` too for two heads; ``named_in``
    for a head named outside the ledger's tables)."""

    flaw: Flaw
    sequence: int | None = None
    until: int | None = None
    tree_size: int | None = None
    old_size: int | None = None
    named_in: Named | None = None

    @property
    def sentence(self) -> str:
        """The problem in one sentence, in the reader's language; only numbers, never an entry's content."""
        values = {
            "sequence": self.sequence,
            "until": self.until,
            "size": self.tree_size,
            "old": self.old_size,
        }
        if self.flaw == Flaw.CHANGED:
            text = gettext("Entry %(sequence)s was changed: it no longer matches its leaf hash.")
        elif self.flaw == Flaw.REWRITTEN:
            text = gettext(
                "Entry %(sequence)s does not carry its seal: it was rewritten with its leaf hash, or slipped "
                "in, without the notary's key."
            )
        elif self.flaw == Flaw.REMOVED and self.until not in (None, self.sequence):
            text = gettext("Entries %(sequence)s to %(until)s are missing: they were removed.")
        elif self.flaw == Flaw.REMOVED:
            text = gettext("Entry %(sequence)s is missing: it was removed.")
        elif self.flaw == Flaw.OUT_OF_PLACE:
            text = gettext("An entry numbered %(sequence)s stands where entry %(until)s belongs.")
        elif self.flaw == Flaw.HEAD_MISMATCH:
            text = gettext(
                "The signed tree head at size %(size)s no longer matches the entries up to that size."
            )
        elif self.flaw == Flaw.HEAD_SIGNATURE:
            text = gettext("The signature of the tree head at size %(size)s does not hold.")
        elif self.flaw == Flaw.NAMED_HEAD_LOST and self.named_in == Named.ATTESTATION:
            text = gettext(
                "The ledger no longer holds the signed tree head at size %(size)s that an attestation rests "
                "on: entries were removed or changed since, and the heads with them."
            )
        elif self.flaw == Flaw.NAMED_HEAD_LOST:
            text = gettext(
                "The ledger no longer holds the signed tree head at size %(size)s copied to the identity "
                "store: entries were removed or changed since, and the heads with them."
            )
        elif self.flaw == Flaw.COPY_SIGNATURE:
            text = gettext(
                "The copy of a tree head at size %(size)s in the identity store does not carry the notary's "
                "signature: it was slipped in there."
            )
        else:
            text = gettext(
                "The signed tree heads at sizes %(old)s and %(size)s do not prove that the entries between "
                "them were only appended."
            )
        return text % values

    def __str__(self) -> str:
        return self.sentence


@dataclass
class LedgerCheck:
    """What ``check_ledger`` found: how many entries it read, the last signed head, and the problems."""

    entries: int
    last_head: TreeHead | None
    problems: list[Problem]

    @property
    def intact(self) -> bool:
        return not self.problems


def _entry_problem(entry: LedgerEntry, expected: int, leaf: bytes) -> Problem | None:
    """What is wrong with one entry, read where ``expected`` should be, whose canonical form hashes to
    ``leaf``; None when nothing is."""
    if entry.sequence < expected:
        return Problem(Flaw.OUT_OF_PLACE, sequence=entry.sequence, until=expected)
    if not signing.same(leaf.hex(), entry.leaf_hash):
        return Problem(Flaw.CHANGED, sequence=entry.sequence)
    if not signing.same(signing.seal_of(entry.sequence, entry.leaf_hash), entry.seal):
        return Problem(Flaw.REWRITTEN, sequence=entry.sequence)
    return None


def check_ledger(named: Iterable[NamedHead] = ()) -> LedgerCheck:
    """Read every entry and every signed head once, and name whatever no longer holds.

    An entry is checked against its leaf hash and its seal, and its place in the sequence (a gap is an entry
    removed; the end is checked against the last head). Each head's root is recomputed from the entries as
    they stand now (their canonical form, not the stored leaf hash), its signature checked, and each head
    proved consistent with the one before it. Read in chunks, one pass: the ledger grows forever.

    Then every head named outside the ledger's tables (``named_heads``, and ``named``: the heads of
    attestation files given) must still be the ledger's root at its size: removing the last entries and the
    heads that cover them leaves those behind. The end is checked against the largest of them too.
    """
    heads = list(TreeHead.objects.order_by("tree_size"))
    stored, forged = named_heads()
    outside = list(dict.fromkeys([*stored, *named]))
    pairs = list(itertools.pairwise(heads))
    ranges = {
        (old.tree_size, new.tree_size): merkle.consistency_ranges(old.tree_size, new.tree_size)
        for old, new in pairs
    }
    walk = merkle.TreeWalk(
        wanted={subtree for wanted in ranges.values() for subtree in wanted},
        sizes={head.tree_size for head in heads} | {head.tree_size for head in outside},
    )
    problems: list[Problem] = []
    expected = 1
    for entry in LedgerEntry.objects.order_by("sequence").iterator(chunk_size=READ_CHUNK):
        if entry.sequence > expected:
            problems.append(Problem(Flaw.REMOVED, sequence=expected, until=entry.sequence - 1))
        # The tree over the entries as they read now: a changed one changes every root that covers it.
        leaf = leaf_hash(canonical(entry))
        found = _entry_problem(entry, expected, leaf)
        if found is not None:
            problems.append(found)
        expected = max(expected, entry.sequence + 1)
        walk.add(leaf)
    largest = max([head.tree_size for head in heads] + [head.tree_size for head in outside], default=0)
    if largest >= expected:
        problems.append(Problem(Flaw.REMOVED, sequence=expected, until=largest))
    for head in heads:
        if not head_holds(head):
            problems.append(Problem(Flaw.HEAD_SIGNATURE, tree_size=head.tree_size))
        root = walk.roots.get(head.tree_size)
        if root is None or not signing.same(root.hex(), head.root_hash):
            problems.append(Problem(Flaw.HEAD_MISMATCH, tree_size=head.tree_size))
    for old, new in pairs:
        wanted = ranges[(old.tree_size, new.tree_size)]
        proof = (
            ConsistencyProof(
                old.tree_size, new.tree_size, tuple(walk.found[subtree].hex() for subtree in wanted)
            )
            if all(subtree in walk.found for subtree in wanted)
            else None
        )
        if proof is None or not proof.holds(old.root_hash, new.root_hash):
            problems.append(Problem(Flaw.HEADS_INCONSISTENT, tree_size=new.tree_size, old_size=old.tree_size))
    for size in forged:
        problems.append(Problem(Flaw.COPY_SIGNATURE, tree_size=size))
    # A head still stored here as it was named is checked above already: named once, as that head.
    kept = {(head.tree_size, head.root_hash) for head in heads}
    for elsewhere in outside:
        if (elsewhere.tree_size, elsewhere.root_hash) in kept:
            continue
        root = walk.roots.get(elsewhere.tree_size)
        if root is None or not signing.same(root.hex(), elsewhere.root_hash):
            problems.append(
                Problem(Flaw.NAMED_HEAD_LOST, tree_size=elsewhere.tree_size, named_in=elsewhere.named_in)
            )
    return LedgerCheck(entries=walk.size, last_head=heads[-1] if heads else None, problems=problems)


def verify(named: Iterable[NamedHead] = ()) -> list[Problem]:
    """Every problem in the ledger and its signed heads; empty when it is intact."""
    return check_ledger(named).problems
