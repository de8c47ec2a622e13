"""Cryptographic long-term keys (CLKs, Schnell, Bachteler & Reiher 2011): one Bloom filter per record over
the q-grams and values of its fields, hardened against frequency attacks.

Each feature of a kind (``linkage.fields``) is hashed to k positions by BLAKE2b keyed with that kind's
sub-key (HKDF from the shared secret): random hashing, as Niedermeyer et al. (2014) recommend after
breaking double hashing, whose positions are an arithmetic progression an attacker can enumerate. k is
set per kind by its discriminating power, so agreeing on a date of birth counts for more than agreeing on
a gender (field weighting, as in Durham et al. 2014 and clkhash's per-field k). The filter is then
hardened (``linkage.hardening``); the default is diffusion, chosen by the measurements in docs/linkage.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from linkage.fields import KINDS, NAME_KINDS, RecordFields, features
from linkage.hardening import (
    HARDENINGS,
    Bits,
    balance,
    diffuse,
    diffusion_taps,
    keyed_permutation,
    xor_fold,
)
from linkage.keys import LinkageKey

# Positions per feature, by kind: roughly in proportion to the bits of evidence each kind carries in the
# matcher's weights, with name bigrams low each because a name has many of them; then doubled so the
# filter is about a third full, which diffusion needs to mask well. Measured in docs/linkage.md
# (python -m bench.linkage --sweep).
DEFAULT_K: Mapping[str, int] = {
    "name": 16,
    "formal": 12,
    "year": 40,
    "month": 20,
    "day": 24,
    "day_month": 16,
    "postcode": 40,
    "sector": 20,
    "district": 8,
    "gender": 12,
}

# Words' worth of positions that a given name's formal forms share (see positions()).
FORMAL_BUDGET = 4


@dataclass(frozen=True)
class EncodingParams:
    """How records are encoded. Every party of one linkage must use the same parameters and key.

    Attributes:
        length: bits of the Bloom filter (a power of two, 128 to 16384).
        q: the q of the name q-grams.
        k: positions per feature, by kind (kinds left out use DEFAULT_K).
        hardening: "diffusion" (the default), "none", "salt", "balance" or "xor_fold".
        taps: input bits XORed into each output bit, for diffusion (6: fewer leak measurably more, more
            lose recall; docs/linkage.md).
    """

    length: int = 1024
    q: int = 2
    k: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_K))
    hardening: str = "diffusion"
    taps: int = 6

    def __post_init__(self) -> None:
        if self.length not in {2**n for n in range(7, 15)}:
            raise ValueError("the filter length must be a power of two from 128 to 16384")
        if not 1 <= self.q <= 4:
            raise ValueError("q must be from 1 to 4")
        unknown = sorted(set(self.k) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown feature kinds: {', '.join(unknown)}")
        if any(not 0 <= k <= 64 for k in self.k.values()):
            raise ValueError("k must be from 0 to 64 for every kind")
        if self.hardening not in HARDENINGS:
            raise ValueError(f"hardening must be one of {', '.join(HARDENINGS)}")
        if not 1 <= self.taps <= 16:
            raise ValueError("diffusion taps must be from 1 to 16")

    def k_of(self, kind: str) -> int:
        return self.k.get(kind, DEFAULT_K[kind])

    @property
    def encoded_bits(self) -> int:
        """Length of the encoding in bits, after hardening."""
        if self.hardening == "balance":
            return 2 * self.length
        if self.hardening == "xor_fold":
            return self.length // 2
        return self.length

    @property
    def encoded_bytes(self) -> int:
        return self.encoded_bits // 8


DEFAULT_PARAMS = EncodingParams()
# The same fields and positions without hardening: what the attack is measured against.
UNHARDENED = EncodingParams(hardening="none")


@lru_cache(maxsize=200_000)
def _positions(kind_key: bytes, feature: str, k: int, length: int) -> tuple[int, ...]:
    # 16-bit draws modulo a power of two no larger than 2**16: no bias. 32 draws per digest.
    out: list[int] = []
    block = 0
    while len(out) < k:
        digest = hashlib.blake2b(
            block.to_bytes(2, "big") + feature.encode(), key=kind_key, digest_size=64
        ).digest()
        out.extend(v % length for v in np.frombuffer(digest, dtype="<u2").tolist())
        block += 1
    return tuple(out[:k])


def positions(key: LinkageKey, fields: RecordFields, params: EncodingParams = DEFAULT_PARAMS) -> set[int]:
    """The Bloom-filter positions a record sets, before hardening."""
    found = features(fields, params.q)
    # Salting (Christen et al. 2017): name features hashed with the birth year, so one bigram sets
    # different positions in different years. A record without a date of birth has an empty salt.
    salt = ""
    if params.hardening == "salt":
        salt = next(iter(found.get("year", ())), "") + "\x1f"
    out: set[int] = set()
    for kind, values in found.items():
        k = params.k_of(kind)
        if kind == "formal" and len(values) > FORMAL_BUDGET:
            # Many formal forms share the positions of FORMAL_BUDGET words, at least one each.
            k = max(1, round(k * FORMAL_BUDGET / len(values)))
        if not k:
            continue
        kind_key = key.sub_key(f"kind/{kind}")
        prefix = salt if kind in NAME_KINDS else ""
        for value in values:
            out.update(_positions(kind_key, prefix + value, k, params.length))
    return out


def bloom_filters(
    key: LinkageKey, records: Sequence[RecordFields], params: EncodingParams = DEFAULT_PARAMS
) -> Bits:
    """The unhardened filters of many records as a boolean matrix (one row a record)."""
    bits = np.zeros((len(records), params.length), dtype=np.bool_)
    for row, fields in enumerate(records):
        bits[row, list(positions(key, fields, params))] = True
    return bits


def harden(key: LinkageKey, bits: Bits, params: EncodingParams = DEFAULT_PARAMS) -> Bits:
    """Applies params.hardening to a matrix of filters."""
    if params.hardening == "balance":
        return balance(bits, _permutation(key.sub_key("balance"), 2 * params.length))
    if params.hardening == "xor_fold":
        return xor_fold(bits)
    if params.hardening == "diffusion":
        return diffuse(bits, _taps(key.sub_key("diffusion"), params.length, params.taps))
    return bits


@lru_cache(maxsize=16)
def _permutation(key: bytes, size: int) -> npt.NDArray[np.intp]:
    return keyed_permutation(key, size)


@lru_cache(maxsize=16)
def _taps(key: bytes, length: int, taps: int) -> npt.NDArray[np.intp]:
    return diffusion_taps(key, length, taps)


def encode_many(
    key: LinkageKey, records: Sequence[RecordFields], params: EncodingParams = DEFAULT_PARAMS
) -> npt.NDArray[np.uint8]:
    """Encodings of many records, packed: shape (records, params.encoded_bytes)."""
    hardened = harden(key, bloom_filters(key, records, params), params)
    return np.packbits(hardened, axis=1)


def encode(key: LinkageKey, fields: RecordFields, params: EncodingParams = DEFAULT_PARAMS) -> bytes:
    """A record's encoding: params.encoded_bytes bytes (128 with the defaults).

    Deterministic for one key and parameters; under another key (or epoch) every position and every
    diffusion tap changes, so the encodings are unrelated.
    """
    return bytes(encode_many(key, [fields], params)[0])
