"""Candidate pairs without comparing everything: Hamming locality-sensitive hashing over the encodings.

Each band samples some bit positions; two records whose sampled bits all agree fall into one bucket, and
only records of different agencies sharing a bucket in some band are compared. Two encodings differing in
a share p of their bits share a band with probability (1 - p)^r for r bits a band, so near pairs meet in
some band almost surely and far ones rarely (Indyk & Motwani 1998). The diffused encodings hold about
half ones, which is what bit sampling needs (a sparse filter's all-zero samples would collide).

The sample positions need no secret: they select bits of encodings that already are keyed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Index = npt.NDArray[np.intp]


@dataclass(frozen=True)
class LshBlocking:
    """Bit-sampling LSH parameters.

    Attributes:
        bands: number of bands; more find more pairs and cost more.
        bits_per_band: bits sampled in each band (at most 63); more make buckets smaller.
        seed: chooses the sampled positions (public).
        max_bucket: buckets larger than this are skipped (one signature shared by too many records says
            little and would cost the square of its size).
    """

    bands: int = 2048
    bits_per_band: int = 16
    seed: int = 0
    max_bucket: int = 500

    def __post_init__(self) -> None:
        if self.bands < 1:
            raise ValueError("bands must be at least 1")
        if not 1 <= self.bits_per_band <= 63:
            raise ValueError("bits_per_band must be from 1 to 63")
        if self.max_bucket < 2:
            raise ValueError("max_bucket must be at least 2")

    def samples(self, length: int) -> Index:
        """The sampled positions of every band: shape (bands, bits_per_band)."""
        if self.bits_per_band > length:
            raise ValueError(f"bits_per_band ({self.bits_per_band}) exceeds the encoding's {length} bits")
        rng = np.random.default_rng(self.seed)
        return np.stack([rng.choice(length, self.bits_per_band, replace=False) for _ in range(self.bands)])


def _signatures(columns: npt.NDArray[np.bool_], positions: Index) -> npt.NDArray[np.unsignedinteger[Any]]:
    """Each record's sampled bits as one number; columns is the encodings transposed (one row a bit), so
    each sampled bit is one contiguous read."""
    packed = np.packbits(columns[positions], axis=0, bitorder="little")
    width = -(-len(positions) // 8)
    # Up to 16 bits as uint16: numpy sorts 16-bit keys by radix sort, much faster than a comparison sort.
    dtype = np.dtype("<u2") if width <= 2 else np.dtype("<u4") if width <= 4 else np.dtype("<u8")
    padded = np.zeros((dtype.itemsize, columns.shape[1]), dtype=np.uint8)
    padded[:width] = packed
    return np.ascontiguousarray(padded.T).view(dtype).ravel()


def _bucket_pairs(signatures: npt.NDArray[np.unsignedinteger[Any]], max_bucket: int) -> tuple[Index, Index]:
    """Every pair of records with equal signatures, in buckets no larger than max_bucket."""
    order = np.argsort(signatures, kind="stable")
    ordered = signatures[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(ordered)])
    bucket = np.repeat(np.arange(len(starts)), sizes)
    small = sizes[bucket] <= max_bucket
    left, right = [], []
    # Pairs (i, i + d) within a run of equal signatures: one vectorised step per distance d.
    for d in range(1, int(sizes[sizes <= max_bucket].max(initial=1))):
        same = (bucket[:-d] == bucket[d:]) & small[:-d]
        if not same.any():
            continue
        left.append(order[:-d][same])
        right.append(order[d:][same])
    if not left:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    return np.concatenate(left), np.concatenate(right)


def candidate_pairs(
    encodings: npt.NDArray[np.uint8], agencies: npt.NDArray[np.intp], blocking: LshBlocking | None = None
) -> tuple[Index, Index]:
    """Pairs (i, j), i < j, of records of different agencies that share a bucket in some band.

    Args:
        encodings: packed encodings, one row a record (``encode_many``).
        agencies: each record's agency as a small integer.
        blocking: the LSH parameters (defaults when None).
    """
    blocking = blocking or LshBlocking()
    if len(agencies) != encodings.shape[0]:
        raise ValueError(f"{len(agencies)} agencies for {encodings.shape[0]} encodings")
    columns = np.ascontiguousarray(np.unpackbits(encodings, axis=1).astype(np.bool_).T)
    found = []
    records = np.int64(encodings.shape[0])
    for positions in blocking.samples(columns.shape[0]):
        i, j = _bucket_pairs(_signatures(columns, positions), blocking.max_bucket)
        cross = agencies[i] != agencies[j]
        low, high = np.minimum(i[cross], j[cross]), np.maximum(i[cross], j[cross])
        found.append(low.astype(np.int64) * records + high)
    if not found:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    # Sorted, then duplicates dropped: faster than np.unique's hashing for the millions of repeats (a close
    # pair meets in most bands).
    every = np.sort(np.concatenate(found))
    unique = every[np.r_[True, every[1:] != every[:-1]]] if len(every) else every
    return (unique // records).astype(np.intp), (unique % records).astype(np.intp)


def pair_completeness(found: tuple[Index, Index], true_pairs: set[tuple[int, int]]) -> float:
    """Share of the true pairs (i < j) among the candidates."""
    if not true_pairs:
        return 1.0
    truth = np.array(sorted(true_pairs), dtype=np.int64)
    # Pairs as single numbers, compared in numpy: a Python set of millions of candidate pairs costs GBs.
    width = int(max(truth.max(), found[0].max(initial=0), found[1].max(initial=0))) + 1
    kept = found[0].astype(np.int64) * width + found[1]
    return float(np.isin(truth[:, 0] * width + truth[:, 1], kept).mean())


def reduction_ratio(found: tuple[Index, Index], agencies: npt.NDArray[np.intp]) -> float:
    """1 - candidates / all pairs of records of different agencies."""
    counts = np.bincount(agencies).astype(np.float64)
    every = (counts.sum() ** 2 - (counts**2).sum()) / 2
    return 1.0 - len(found[0]) / every if every else 1.0
