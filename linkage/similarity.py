"""Dice coefficients of packed encodings, vectorised: 2|A∩B| / (|A| + |B|), counted with
``np.bitwise_count`` on 64-bit words."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Packed = npt.NDArray[np.uint64]
Scores = npt.NDArray[np.float64]
# Rows of the right-hand side compared at once in many-to-many: bounds the temporary to about 32 MB.
_BLOCK_CELLS = 4 * 2**20


def as_packed(encodings: Sequence[bytes] | npt.NDArray[np.uint8]) -> Packed:
    """Encodings (bytes each, or a uint8 matrix from ``encode_many``) as a matrix of 64-bit words.

    Raises:
        ValueError: the encodings differ in length, or their length is not a whole number of 64-bit words.
    """
    if isinstance(encodings, np.ndarray):
        matrix = np.ascontiguousarray(encodings, dtype=np.uint8)
        if matrix.ndim != 2:
            raise ValueError("encodings must be a matrix, one row per encoding")
    else:
        lengths = {len(e) for e in encodings}
        if len(lengths) > 1:
            raise ValueError(f"encodings differ in length: {sorted(lengths)} bytes")
        width = lengths.pop() if lengths else 8
        matrix = np.frombuffer(b"".join(encodings), dtype=np.uint8).reshape(len(encodings), width)
    if matrix.shape[1] % 8:
        raise ValueError(f"an encoding must be a whole number of 64-bit words (got {matrix.shape[1]} bytes)")
    return np.ascontiguousarray(matrix).view(np.uint64)


def popcounts(packed: Packed) -> npt.NDArray[np.int64]:
    """Ones in each row."""
    counts: npt.NDArray[np.int64] = np.bitwise_count(packed).sum(axis=1, dtype=np.int64)
    return counts


def _dice(common: npt.NDArray[np.int64], total: npt.NDArray[np.int64]) -> Scores:
    # Two empty encodings have nothing in common: 0, not a division by zero.
    out = np.zeros(common.shape, dtype=np.float64)
    np.divide(2.0 * common, total, out=out, where=total > 0)
    return out


def dice(a: bytes, b: bytes) -> float:
    """The Dice coefficient of two encodings of equal length."""
    packed = as_packed([a, b])
    return float(dice_one_to_many(packed[0], packed[1:])[0])


def dice_one_to_many(query: Packed, matrix: Packed) -> Scores:
    """Dice of one packed encoding (a row of words) against every row of a packed matrix."""
    common = np.bitwise_count(matrix & query).sum(axis=1, dtype=np.int64)
    total = popcounts(matrix) + int(np.bitwise_count(query).sum())
    return _dice(common, total)


def dice_pairs(left: Packed, right: Packed, i: npt.NDArray[np.intp], j: npt.NDArray[np.intp]) -> Scores:
    """Dice of left[i[n]] and right[j[n]] for every n (candidate pairs from blocking)."""
    out = np.empty(len(i), dtype=np.float64)
    left_ones, right_ones = popcounts(left), popcounts(right)
    step = max(1, _BLOCK_CELLS // max(1, left.shape[1]))
    for start in range(0, len(i), step):
        a, b = i[start : start + step], j[start : start + step]
        common = np.bitwise_count(left[a] & right[b]).sum(axis=1, dtype=np.int64)
        out[start : start + step] = _dice(common, left_ones[a] + right_ones[b])
    return out


def dice_matrix(left: Packed, right: Packed) -> Scores:
    """Dice of every row of left against every row of right: shape (len(left), len(right)), computed in
    blocks so memory stays bounded."""
    out = np.empty((left.shape[0], right.shape[0]), dtype=np.float64)
    left_ones, right_ones = popcounts(left), popcounts(right)
    step = max(1, _BLOCK_CELLS // max(1, right.shape[0] * right.shape[1]))
    for start in range(0, left.shape[0], step):
        block = left[start : start + step]
        common = np.bitwise_count(block[:, None, :] & right[None, :, :]).sum(axis=2, dtype=np.int64)
        out[start : start + step] = _dice(common, left_ones[start : start + step, None] + right_ones[None, :])
    return out
