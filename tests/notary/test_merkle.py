"""notary.merkle against RFC 9162 section 2.1 written out the way the RFC says it (recursively, here in the
test), for every tree of up to 64 leaves and every leaf and size pair; and proofs that fail once anything in
them, or what they are checked against, changes."""

from __future__ import annotations

import hashlib

import pytest

from notary import merkle

MAX_SIZE = 64


def leaf(n: int) -> bytes:
    return hashlib.sha256(b"\x00" + f"entry {n}".encode()).digest()


LEAVES = [leaf(n) for n in range(MAX_SIZE + 1)]


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """RFC 9162, 2.1.1, literally."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 9162, 2.1.3.1, literally."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162, 2.1.4.1, literally."""
    if m == len(d):
        return [] if whole else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*subproof(m, d[:k], whole), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def flipped(value: bytes, at: int = 0) -> bytes:
    return value[:at] + bytes([value[at] ^ 0x01]) + value[at + 1 :]


SIZES = range(MAX_SIZE + 1)
PAIRS = [(m, n) for n in range(1, MAX_SIZE + 1) for m in range(n)]
GROWTHS = [(m, n) for n in range(1, MAX_SIZE + 1) for m in range(1, n)]
# The RFC's root of the first n leaves, computed once.
ROOTS = [mth(LEAVES[:n]) for n in SIZES]


# --- the same as the RFC --------------------------------------------------------------------------------


def test_the_empty_tree_hashes_nothing() -> None:
    assert merkle.tree_hash([]) == hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


# Certificate Transparency's published test vectors (the same in transparency-dev/merkle): eight leaf
# inputs and the root of every tree from 0 to 8 of them. An independent check of our reading of the RFC.
VECTOR_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
VECTOR_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_the_published_test_vectors() -> None:
    leaves = [hashlib.sha256(b"\x00" + bytes.fromhex(data)).digest() for data in VECTOR_INPUTS]

    assert [merkle.tree_hash(leaves[:size]).hex() for size in range(9)] == VECTOR_ROOTS
    for old, new in GROWTHS[: 8 * 7 // 2]:
        proof = merkle.consistency_path(old, leaves[:new])
        roots = bytes.fromhex(VECTOR_ROOTS[old]), bytes.fromhex(VECTOR_ROOTS[new])
        assert merkle.consistency_holds(old, new, *roots, proof), (old, new)


@pytest.mark.parametrize("size", SIZES)
def test_tree_hash_is_the_rfcs(size: int) -> None:
    assert merkle.tree_hash(LEAVES[:size]) == mth(LEAVES[:size])


def test_inclusion_paths_are_the_rfcs_for_every_leaf_and_size() -> None:
    for index, size in PAIRS:
        assert merkle.inclusion_path(index, LEAVES[:size]) == path(index, LEAVES[:size]), (index, size)


def test_consistency_paths_are_the_rfcs_for_every_pair_of_sizes() -> None:
    for old, new in GROWTHS:
        assert merkle.consistency_path(old, LEAVES[:new]) == subproof(old, LEAVES[:new], True), (old, new)


def test_a_walk_keeps_the_root_of_every_size_it_passes_in_one_pass() -> None:
    walk = merkle.TreeWalk(sizes=set(SIZES)).add_all(LEAVES[:MAX_SIZE])

    assert walk.roots == {size: mth(LEAVES[:size]) for size in SIZES}


def test_a_tree_of_100_000_leaves_hashes_as_its_halves_say() -> None:
    leaves = [hashlib.sha256(n.to_bytes(4, "big")).digest() for n in range(100_000)]
    # 65,536 is the largest power of two under 100,000: the RFC's split at the root.
    left, right = merkle.tree_hash(leaves[:65_536]), merkle.tree_hash(leaves[65_536:])
    assert merkle.tree_hash(leaves) == merkle.node_hash(left, right)
    proof = merkle.inclusion_path(99_999, leaves)
    assert merkle.inclusion_holds(99_999, 100_000, leaves[-1], proof, merkle.tree_hash(leaves))


# --- proofs that hold, and fail once anything changes ---------------------------------------------------


def test_every_inclusion_proof_holds() -> None:
    for index, size in PAIRS:
        root = ROOTS[size]
        proof = merkle.inclusion_path(index, LEAVES[:size])
        assert merkle.inclusion_holds(index, size, LEAVES[index], proof, root), (index, size)


def test_an_inclusion_proof_fails_for_a_changed_byte_anywhere() -> None:
    for index, size in PAIRS:
        root, proof = ROOTS[size], merkle.inclusion_path(index, LEAVES[:size])
        assert not merkle.inclusion_holds(index, size, flipped(LEAVES[index], 31), proof, root)
        assert not merkle.inclusion_holds(index, size, LEAVES[index], proof, flipped(root, 5))
        for at in range(len(proof)):
            changed = [*proof[:at], flipped(proof[at], at % 32), *proof[at + 1 :]]
            assert not merkle.inclusion_holds(index, size, LEAVES[index], changed, root), (index, size, at)


def test_an_inclusion_proof_fails_for_another_index() -> None:
    for index, size in PAIRS:
        root, proof = ROOTS[size], merkle.inclusion_path(index, LEAVES[:size])
        for other in range(size + 2):
            if other != index:
                assert not merkle.inclusion_holds(other, size, LEAVES[index], proof, root), (
                    index,
                    size,
                    other,
                )


def test_an_inclusion_proof_fails_against_the_tree_of_another_size() -> None:
    # A root does not say its size (a proof for size 3 can pass as one for size 4 against size 3's root):
    # that is why a tree head signs the size with the root. Against the other size's own root it fails.
    for index, size in PAIRS:
        proof = merkle.inclusion_path(index, LEAVES[:size])
        for other in range(index + 1, MAX_SIZE + 1):
            if other != size:
                assert not merkle.inclusion_holds(index, other, LEAVES[index], proof, ROOTS[other]), (
                    index,
                    size,
                    other,
                )


def test_an_inclusion_proof_fails_with_a_hash_left_out_or_added() -> None:
    for index, size in PAIRS:
        root, proof = ROOTS[size], merkle.inclusion_path(index, LEAVES[:size])
        if proof:
            assert not merkle.inclusion_holds(index, size, LEAVES[index], proof[:-1], root)
        assert not merkle.inclusion_holds(index, size, LEAVES[index], [*proof, root], root)


def test_every_consistency_proof_holds() -> None:
    for old, new in GROWTHS:
        proof = merkle.consistency_path(old, LEAVES[:new])
        assert merkle.consistency_holds(old, new, ROOTS[old], ROOTS[new], proof), (old, new)


def test_a_consistency_proof_fails_for_a_changed_byte_anywhere() -> None:
    for old, new in GROWTHS:
        old_root, new_root = ROOTS[old], ROOTS[new]
        proof = merkle.consistency_path(old, LEAVES[:new])
        assert not merkle.consistency_holds(old, new, flipped(old_root), new_root, proof), (old, new)
        assert not merkle.consistency_holds(old, new, old_root, flipped(new_root, 9), proof), (old, new)
        for at in range(len(proof)):
            changed = [*proof[:at], flipped(proof[at], at % 32), *proof[at + 1 :]]
            assert not merkle.consistency_holds(old, new, old_root, new_root, changed), (old, new, at)


def test_a_consistency_proof_fails_against_the_trees_of_other_sizes() -> None:
    # As for inclusion: the sizes are bound by the signed heads, so a changed size is checked against the
    # root of the tree of that size.
    for old, new in GROWTHS:
        old_root, new_root = ROOTS[old], ROOTS[new]
        proof = merkle.consistency_path(old, LEAVES[:new])
        for other in range(1, new):
            if other != old:
                other_root = ROOTS[other]
                assert not merkle.consistency_holds(other, new, other_root, new_root, proof), (
                    old,
                    new,
                    other,
                )
        for other in range(old + 1, MAX_SIZE + 1):
            if other != new:
                other_root = ROOTS[other]
                assert not merkle.consistency_holds(old, other, old_root, other_root, proof), (
                    old,
                    new,
                    other,
                )


def test_a_rewritten_history_is_not_consistent_with_the_old_head() -> None:
    for old, new in GROWTHS:
        rewritten = [*LEAVES[:new]]
        rewritten[old - 1] = flipped(rewritten[old - 1])
        proof = merkle.consistency_path(old, rewritten)
        assert not merkle.consistency_holds(old, new, ROOTS[old], mth(rewritten), proof), (old, new)


def test_the_edge_cases_of_consistency() -> None:
    root = ROOTS[5]
    assert merkle.consistency_path(5, LEAVES[:5]) == [] == merkle.consistency_path(0, LEAVES[:5])
    assert merkle.consistency_holds(5, 5, root, root, [])
    assert not merkle.consistency_holds(5, 5, root, flipped(root), [])
    assert not merkle.consistency_holds(5, 5, root, root, [root])
    assert merkle.consistency_holds(0, 5, merkle.EMPTY_ROOT, root, [])
    assert not merkle.consistency_holds(0, 5, merkle.EMPTY_ROOT, root, [root])
    assert not merkle.consistency_holds(3, 5, ROOTS[3], root, [])
    assert not merkle.consistency_holds(6, 5, root, root, [])
    with pytest.raises(ValueError):
        merkle.consistency_ranges(6, 5)


def test_malformed_input_fails_instead_of_raising() -> None:
    root = ROOTS[4]
    proof = merkle.inclusion_path(1, LEAVES[:4])
    assert not merkle.inclusion_holds(1, 4, LEAVES[1][:31], proof, root)
    assert not merkle.inclusion_holds(1, 4, LEAVES[1], [proof[0][:16], proof[1]], root)
    assert not merkle.inclusion_holds(-1, 4, LEAVES[1], proof, root)
    assert not merkle.inclusion_holds(0, 0, LEAVES[0], [], merkle.EMPTY_ROOT)
    with pytest.raises(ValueError):
        merkle.inclusion_ranges(4, 4)
    with pytest.raises(ValueError):
        merkle.TreeWalk().add(b"short")
