"""Hardenings of a Bloom filter against frequency and pattern-mining attacks, applied to a batch of filters
as a boolean matrix (one row a record).

- Balancing (Schnell & Borgs 2016): the filter and its complement, concatenated and permuted by the key;
  every encoding then holds exactly half ones, so its weight says nothing about the number of q-grams.
- XOR-folding (Schnell, Borgs & Encarnação 2016): the two halves XORed together, so no bit stands for one
  position of the original filter.
- Diffusion (Armknecht, Heng & Schnell 2023): each output bit the XOR of t input bits chosen by the key,
  so every q-gram changes many output bits and no output bit belongs to a q-gram.
- Salting (Christen et al. 2017/2018) is applied when q-grams are hashed (``linkage.encoding``), not here.

The key's choices (permutation, diffusion taps) come from a BLAKE2b key stream, never from a
non-cryptographic generator: whoever could predict them could undo the hardening.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

Bits = npt.NDArray[np.bool_]
HARDENINGS = ("none", "salt", "balance", "xor_fold", "diffusion")
# Rows hardened at once by diffusion: bounds the (rows x length x taps) temporary to ~16 MB.
_CHUNK_CELLS = 16 * 2**20


def key_stream(key: bytes) -> Iterator[int]:
    """Endless pseudo-random 32-bit numbers: BLAKE2b keyed with key, in counter mode."""
    for counter in itertools.count():
        block = hashlib.blake2b(counter.to_bytes(8, "big"), key=key, digest_size=64).digest()
        yield from np.frombuffer(block, dtype="<u4").tolist()


def keyed_permutation(key: bytes, size: int) -> npt.NDArray[np.intp]:
    """A permutation of range(size) drawn by Fisher-Yates from the key stream (32-bit draws: the modulo's
    bias is below 2**-16 for any size used here)."""
    draws = key_stream(key)
    order = np.arange(size)
    for i in range(size - 1, 0, -1):
        j = next(draws) % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def diffusion_taps(key: bytes, length: int, taps: int) -> npt.NDArray[np.intp]:
    """For each of length output bits, taps distinct input positions chosen by the key: shape
    (length, taps)."""
    if not 1 <= taps <= 16:
        raise ValueError("diffusion taps must be from 1 to 16")
    draws = key_stream(key)
    out = np.empty((length, taps), dtype=np.intp)
    for j in range(length):
        chosen: list[int] = []
        while len(chosen) < taps:
            position = next(draws) % length
            # A repeated tap would cancel itself in the XOR: draw again.
            if position not in chosen:
                chosen.append(position)
        out[j] = chosen
    return out


def balance(bits: Bits, permutation: npt.NDArray[np.intp]) -> Bits:
    """Each row followed by its complement, columns permuted: twice the length, half ones."""
    return np.concatenate([bits, ~bits], axis=1)[:, permutation]


def xor_fold(bits: Bits) -> Bits:
    """Each row's first half XOR its second half: half the length."""
    half = bits.shape[1] // 2
    return bits[:, :half] ^ bits[:, half:]


def diffuse(bits: Bits, taps: npt.NDArray[np.intp]) -> Bits:
    """Output bit j of a row is the XOR of the row's input bits taps[j]."""
    rows = max(1, _CHUNK_CELLS // taps.size)
    out = np.empty((bits.shape[0], taps.shape[0]), dtype=np.bool_)
    for start in range(0, bits.shape[0], rows):
        chunk = bits[start : start + rows]
        out[start : start + rows] = np.bitwise_xor.reduce(chunk[:, taps], axis=2)
    return out
