"""Frequent bit-pattern mining over Bloom filters, after Christen, Ranbaduge, Vatsalan & Schnell (2018):
the positions a q-gram is hashed to are set together in every record that holds it, so the sets of
positions that are all set in the same, frequent, set of records are the q-grams' footprints.

Columns are held as bitsets over records (one 64-bit word per 64 records), so the support of a set of
positions is a popcount of an AND.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Columns = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class PositionGroup:
    """Positions that are all set in the same records: one feature's footprint, if the mining is right.

    Attributes:
        positions: the bit positions, sorted.
        records: the records holding all of them, as a bitset over records.
        support: how many records that is.
    """

    positions: tuple[int, ...]
    records: Columns
    support: int


def columns_of(bits: npt.NDArray[np.bool_]) -> Columns:
    """A (records x positions) boolean matrix as one bitset over records per position."""
    pad = (-bits.shape[0]) % 64
    padded = np.concatenate([bits, np.zeros((pad, bits.shape[1]), dtype=np.bool_)]) if pad else bits
    return np.ascontiguousarray(np.packbits(padded.T, axis=1, bitorder="little")).view(np.uint64)


def bitset_to_bool(bitset: Columns, records: int) -> npt.NDArray[np.bool_]:
    """A bitset over records back to a boolean vector."""
    return np.unpackbits(bitset.view(np.uint8), bitorder="little")[:records].astype(np.bool_)


def _support(columns: Columns) -> npt.NDArray[np.int64]:
    counts: npt.NDArray[np.int64] = np.bitwise_count(columns).sum(axis=-1, dtype=np.int64)
    return counts


def _all_set(columns: Columns, positions: list[int] | npt.NDArray[np.intp]) -> Columns:
    records: Columns = columns[positions[0]].copy()
    for p in positions[1:]:
        records &= columns[p]
    return records


def mine_groups(
    bits: npt.NDArray[np.bool_],
    min_support: int,
    tolerance: float = 0.03,
    max_size: int = 64,
    min_plateau: int = 3,
    overlap: float = 0.5,
) -> list[PositionGroup]:
    """Finds the footprints of the frequent features.

    From the position with the most records not yet explained, positions are added greedily, each the one
    whose records overlap the current ones most beyond what independence would give (so a frequent but
    unrelated position, such as one of a gender's, is not chosen). The support first shrinks (a position
    is set by several features) and then levels off: a run of at least min_plateau additions each losing
    under tolerance of the records is one feature's footprint. Every position set in (nearly) all of the
    footprint's records joins it, and those records no longer count towards the positions it covers, so
    the next seed finds the next feature (the conditional step of Christen et al.).

    Args:
        bits: the filters, one row a record.
        min_support: the fewest records a footprint may hold.
        tolerance: the share of records an addition may lose and still be on the plateau.
        max_size: the most positions tried from one seed.
        min_plateau: additions on the plateau needed to accept a footprint.
        overlap: a footprint sharing this share of its positions with earlier ones is a repeat.
    """
    columns = columns_of(bits)
    records = bits.shape[0]
    frequency = _support(columns)
    unexplained = columns.copy()
    tried = np.zeros(columns.shape[0], dtype=np.bool_)
    owned = np.zeros(columns.shape[0], dtype=np.bool_)
    groups: list[PositionGroup] = []
    while True:
        residual = _support(unexplained)
        residual[tried] = -1
        seed = int(np.argmax(residual))
        if residual[seed] < min_support:
            return groups
        tried[seed] = True
        core = _grow(
            columns,
            frequency / records,
            unexplained[seed],
            seed,
            (min_support, tolerance, max_size, min_plateau),
        )
        if len(core) < min_plateau:
            continue
        held = _all_set(columns, core)
        size = int(_support(held))
        if size < min_support:
            continue
        positions = np.flatnonzero(_support(columns & held) >= (1 - tolerance) * size)
        held = _all_set(columns, positions)
        size = int(_support(held))
        covered = _support(columns & held) >= (1 - tolerance) * size
        unexplained[covered] &= ~held
        if size < min_support or owned[positions].mean() >= overlap:
            continue
        owned[positions] = True
        groups.append(PositionGroup(tuple(int(p) for p in positions), held, size))


def _grow(
    columns: Columns,
    share: npt.NDArray[np.float64],
    start: Columns,
    seed: int,
    limits: tuple[int, float, int, int],
) -> list[int]:
    """The plateau's positions grown from seed, or none when there is no plateau."""
    min_support, tolerance, max_size, min_plateau = limits
    held = start.copy()
    members, support = [seed], [int(_support(held))]
    plateau: int | None = None
    while len(members) < max_size:
        overlap = _support(columns & held)
        excess = overlap - support[-1] * share
        excess[members] = -np.inf
        best = int(np.argmax(excess))
        if overlap[best] < min_support:
            break
        if overlap[best] >= (1 - tolerance) * support[-1]:
            plateau = len(members) - 1 if plateau is None else plateau
        elif plateau is not None and len(members) - plateau >= min_plateau:
            break
        else:
            plateau = None
        members.append(best)
        held &= columns[best]
        support.append(int(overlap[best]))
    return [] if plateau is None else members[plateau:]
