"""Transitive closure on a hand-built graph gives exactly the expected pairs."""

from __future__ import annotations

import numpy as np

from selfsup.mining.transitive import transitive_pairs


def test_hand_built_graph() -> None:
    # Tracks: 0–1, 2–3, 4–5 (intra); inter edges 0–2 and 2–4 (start nodes clustered together).
    intra = np.array([[0, 1], [2, 3], [4, 5]])
    inter = np.array([[0, 2], [2, 4]])
    # 0–2 with A′=1, B′=3 → (0,3), (1,2), (1,3); 2–4 with A′=3, B′=5 → (2,5), (3,4), (3,5).
    expected = {(0, 3), (1, 2), (1, 3), (2, 5), (3, 4), (3, 5)}
    got = {tuple(map(int, row)) for row in transitive_pairs(intra, inter)}
    assert got == expected


def test_no_intra_neighbours_adds_nothing_and_existing_edges_are_not_repeated() -> None:
    assert len(transitive_pairs(np.zeros((0, 2), np.int64), np.array([[0, 1]]))) == 0
    # 0–1 intra, 0–2 inter, and 1–2 is already an inter edge: only (1,2) would be new → none.
    got = transitive_pairs(np.array([[0, 1]]), np.array([[0, 2], [1, 2]]))
    assert {tuple(map(int, r)) for r in got} == set()


def test_node_with_several_intra_neighbours() -> None:
    intra = np.array([[0, 1], [0, 2]])  # node 0 has two views
    got = {tuple(map(int, r)) for r in transitive_pairs(intra, np.array([[0, 3]]))}
    assert got == {(1, 3), (2, 3)}
