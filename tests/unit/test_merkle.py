"""RFC 9162 Merkle trees: roots, inclusion and consistency proofs, verified for every size and position."""

from __future__ import annotations

from audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(str(i).encode()) for i in range(40)]


def _reference_root(leaves: list[bytes]) -> bytes:
    """MTH as RFC 9162 defines it, recursively."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k << 1 < len(leaves):
        k <<= 1
    return node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def test_roots_match_the_rfc_definition() -> None:
    assert root([]) == EMPTY_ROOT
    for n in range(1, 40):
        assert root(LEAVES[:n]) == _reference_root(LEAVES[:n])


def test_the_frontier_gives_the_rfc_root_after_every_append() -> None:
    frontier = Frontier()
    assert frontier.root() == EMPTY_ROOT
    for n, leaf in enumerate(LEAVES, start=1):
        frontier.append(leaf)
        assert (frontier.size, frontier.root()) == (n, _reference_root(LEAVES[:n]))


def test_every_inclusion_proof_verifies_and_a_wrong_leaf_does_not() -> None:
    for n in range(1, 40):
        tree = LEAVES[:n]
        for i in range(n):
            proof = inclusion_proof(i, tree)
            assert verify_inclusion(i, n, tree[i], proof, root(tree))
            assert not verify_inclusion(i, n, leaf_hash(b"forged"), proof, root(tree))


def test_every_consistency_proof_verifies_and_a_rewritten_history_does_not() -> None:
    for n in range(1, 40):
        for m in range(1, n + 1):
            proof = consistency_proof(m, LEAVES[:n])
            assert verify_consistency(m, n, root(LEAVES[:m]), root(LEAVES[:n]), proof)
            if m < n:
                rewritten = [leaf_hash(b"x"), *LEAVES[1:m]]
                assert not verify_consistency(m, n, root(rewritten), root(LEAVES[:n]), proof)
