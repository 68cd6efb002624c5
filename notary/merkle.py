"""Merkle trees in the manner of RFC 9162, section 2.1: the tree hash, inclusion and consistency proofs, and
their verification. Pure: hashes in, hashes out; the ledger (notary.ledger) feeds it its leaf hashes.

The leaves given here are leaf hashes already (SHA-256(0x00 || entry), notary.ledger.leaf_hash); an interior
node is SHA-256(0x01 || left || right) and the empty tree's hash is SHA-256 of nothing.

Nothing is recursive and no interior node is stored: the ledger grows forever, so a tree hash or a proof is
computed in one pass over the leaves in order, holding only the tree's current right edge (a stack of at most
log2(n) perfect subtrees, as Certificate Transparency's "compact range") and the few subtree hashes a proof
asks for. Which subtrees those are follows from the sizes alone (``inclusion_ranges`` and
``consistency_ranges``: the recursive definitions of 2.1.3.1, PATH, and 2.1.4.1, PROOF and SUBPROOF, unrolled
into loops).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# A range of leaves [start, end): a subtree of the tree (RFC 9162's D[start:end]).
Range = tuple[int, int]


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162, 2.1.1: an interior node is SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (size > 1): where RFC 9162 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def _is_perfect(start: int, end: int) -> bool:
    """Whether [start, end) is a full subtree of 2**k leaves at an aligned position."""
    width = end - start
    return width > 0 and width & (width - 1) == 0 and start % width == 0


# --- which subtrees a proof is made of ----------------------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes make PATH(index, D[size]) (2.1.3.1), in the proof's order (nearest the leaf
    first). ValueError unless 0 <= index < size."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    siblings: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            siblings.append((middle, end))
            end = middle
        else:
            siblings.append((start, middle))
            start = middle
    siblings.reverse()
    return siblings


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees whose hashes make PROOF(old_size, D[new_size]) (2.1.4.1), in the proof's order.

    Empty when old_size is 0 or equals new_size (nothing to prove); ValueError when old_size > new_size.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    subtrees: list[Range] = []
    start, end, whole = 0, new_size, True
    while True:
        # SUBPROOF(m, D[start:end], whole) with m = old_size - start.
        if old_size == end:
            if not whole:
                subtrees.append((start, end))
            break
        middle = start + _split(end - start)
        if old_size <= middle:
            subtrees.append((middle, end))
            end = middle
        else:
            subtrees.append((start, middle))
            start, whole = middle, False
    subtrees.reverse()
    return subtrees


# --- one pass over the leaves -----------------------------------------------------------------------


@dataclass
class _Edge:
    level: int
    start: int
    digest: bytes


@dataclass
class TreeWalk:
    """Hashes the leaves one by one, as an append-only tree grows, and keeps what was asked for on the way.

    ``wanted`` are subtrees whose hashes to keep: full ones are taken when they complete, the others (a tree's
    right edge, [start, end) with end the size it had) when the walk passes ``end``. ``sizes`` are tree sizes
    whose root to keep. Memory: the right edge (log2 n hashes) plus what was asked for.
    """

    wanted: set[Range] = field(default_factory=set)
    sizes: set[int] = field(default_factory=set)
    size: int = 0
    found: dict[Range, bytes] = field(default_factory=dict)
    roots: dict[int, bytes] = field(default_factory=dict)
    _edge: list[_Edge] = field(default_factory=list)
    _snapshots: dict[int, list[Range]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for start, end in self.wanted:
            if not _is_perfect(start, end):
                self._snapshots.setdefault(end, []).append((start, end))
        if 0 in self.sizes:
            self.roots[0] = EMPTY_ROOT

    def add(self, leaf: bytes) -> None:
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        level, start, digest = 0, self.size, leaf
        self._keep(start, start + 1, digest)
        while self._edge and self._edge[-1].level == level:
            left = self._edge.pop()
            digest, level, start = node_hash(left.digest, digest), level + 1, left.start
            self._keep(start, start + (1 << level), digest)
        self._edge.append(_Edge(level, start, digest))
        self.size += 1
        if self.size in self.sizes:
            self.roots[self.size] = self.root()
        for wanted in self._snapshots.get(self.size, ()):
            self.found[wanted] = self.root(wanted[0])

    def add_all(self, leaves: Iterable[bytes]) -> TreeWalk:
        for leaf in leaves:
            self.add(leaf)
        return self

    def _keep(self, start: int, end: int, digest: bytes) -> None:
        if (start, end) in self.wanted:
            self.found[(start, end)] = digest

    def root(self, start: int = 0) -> bytes:
        """MTH of the leaves [start, size) so far; ``start`` must begin one of the right edge's subtrees."""
        if self.size == start == 0:
            return EMPTY_ROOT
        digest: bytes | None = None
        for edge in reversed(self._edge):
            if edge.start < start:
                break
            digest = edge.digest if digest is None else node_hash(edge.digest, digest)
            if edge.start == start:
                return digest
        raise ValueError(f"[{start}, {self.size}) is not a subtree of a tree of size {self.size}")

    def hashes(self, ranges: Sequence[Range]) -> list[bytes]:
        """The hashes of ``ranges`` (each asked for in ``wanted``), in order; KeyError for one not reached."""
        return [self.found[wanted] for wanted in ranges]


def tree_hash(leaves: Iterable[bytes]) -> bytes:
    """MTH(D[n]) (RFC 9162, 2.1.1) over the leaf hashes given."""
    return TreeWalk().add_all(leaves).root()


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) over all the leaves given (n = their number)."""
    ranges = inclusion_ranges(index, len(leaves))
    return TreeWalk(wanted=set(ranges)).add_all(leaves).hashes(ranges)


def consistency_path(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) over all the leaves given (n = their number)."""
    ranges = consistency_ranges(old_size, len(leaves))
    return TreeWalk(wanted=set(ranges)).add_all(leaves).hashes(ranges)


# --- verification (RFC 9162, 2.1.3.2 and 2.1.4.2) ------------------------------------------------------


def _well_formed(*hashes: bytes) -> bool:
    return all(isinstance(value, bytes) and len(value) == HASH_SIZE for value in hashes)


def inclusion_holds(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    """Whether ``path`` proves that ``leaf`` is leaf ``index`` of the tree of ``size`` leaves and ``root``."""
    if not 0 <= index < size or not _well_formed(leaf, root, *path):
        return False
    fn, sn, digest = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            digest = node_hash(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and digest == root


def consistency_holds(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """Whether ``path`` proves that the tree of ``new_size`` leaves with ``new_root`` extends the tree of
    ``old_size`` leaves with ``old_root`` by appending only.

    As transparency-dev/merkle: equal sizes need an empty path and equal roots; every tree extends the empty
    one (an empty path); otherwise an empty path fails.
    """
    if not 0 <= old_size <= new_size or not _well_formed(old_root, new_root, *path):
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if old_size == 0:
        return not path
    if not path:
        return False
    hashes = list(path)
    if old_size & (old_size - 1) == 0:
        hashes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first = second = hashes[0]
    for value in hashes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first, second = node_hash(value, first), node_hash(value, second)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            second = node_hash(second, value)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and first == old_root and second == new_root
