"""A frequency attack on linkage encodings, to measure what the hardening protects against.

The attacker holds every published encoding and public name-frequency tables, and knows the published
parameters (Kerckhoffs), but not the secret. Following the pattern-mining attack of Christen,
Ranbaduge, Vatsalan & Schnell (2018, "Precise and fast cryptanalysis for Bloom filter based
privacy-preserving record linkage"), it

1. mines the footprints of frequent features: sets of positions all set in the same frequent set of
   records (``_pattern_mining``);
2. aligns footprints with features by frequency and co-occurrence against a model built from the public
   tables (``_feature_model``, ``_alignment``);
3. guesses each record's given and family name from the footprints it holds.

Against balancing it first undoes it: every column has its exact complement among the others, and one of
each pair is kept (the sparser: the original wherever a position is set in under half the records).

The attack succeeds against unhardened filters (docs/linkage.md has the figures), which is what shows it
has teeth; the encoding's hardening is what it must fail against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapters.core.normalise import family_key, given_tokens
from linkage._alignment import align, guess_names
from linkage._feature_model import build_model
from linkage._pattern_mining import columns_of, mine_groups
from linkage.encoding import EncodingParams
from linkage.fields import RecordFields
from linkage.public_tables import NameTables

# Footprints must hold at least this share of records (and at least MIN_RECORDS): rarer patterns are
# mostly chance coincidences of common positions.
MIN_SUPPORT_SHARE = 0.003
MIN_RECORDS = 10


@dataclass(frozen=True)
class AttackResult:
    """What the attack found and guessed.

    Attributes:
        footprints: footprints mined.
        aligned: footprints taken for a name feature (bigram or formal name).
        guesses: each record's guessed (first given name, family name), normalised.
    """

    footprints: int
    aligned: int
    guesses: tuple[tuple[str, str], ...]


def undo_balancing(bits: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Keeps the sparser column of every pair of exactly complementary columns (the balanced filter's
    original position, unless it is set in over half the records); columns without a complement are kept
    as they are."""
    columns = columns_of(bits)
    tail = bits.shape[0] % 64
    mask = np.full(columns.shape[1], np.iinfo(np.uint64).max, dtype=np.uint64)
    if tail:
        mask[-1] = np.uint64((1 << tail) - 1)
    seen = {columns[i].tobytes(): i for i in range(columns.shape[0])}
    keep = []
    ones = bits.sum(axis=0)
    for i in range(columns.shape[0]):
        j = seen.get((~columns[i] & mask).tobytes())
        if j is None or ones[i] < ones[j] or (ones[i] == ones[j] and i < j):
            keep.append(i)
    return bits[:, keep]


def frequency_attack(
    encodings: npt.NDArray[np.uint8], tables: NameTables, params: EncodingParams
) -> AttackResult:
    """Runs the attack on packed encodings (one row a record, as ``encode_many`` returns them).

    Args:
        encodings: every published encoding.
        tables: the public name-frequency tables.
        params: the published encoding parameters.
    """
    records = encodings.shape[0]
    bits = np.unpackbits(encodings, axis=1).astype(np.bool_)
    if params.hardening == "balance":
        bits = undo_balancing(bits)
    min_support = max(MIN_RECORDS, int(MIN_SUPPORT_SHARE * records))
    groups = mine_groups(bits, min_support)
    model = build_model(tables, params, 0.5 * min_support / records)
    assignment = align(groups, model, records)
    guesses = guess_names(groups, assignment, model, records)
    named = sum(1 for a in assignment if a >= 0 and model.features[a][0] in ("name", "formal"))
    return AttackResult(len(groups), named, tuple(guesses))


def true_names(records: Sequence[RecordFields]) -> list[tuple[str, str]]:
    """The normalised (first given name, family name) each encoding was made from: what a guess must
    equal to count as a re-identification."""
    out = []
    for r in records:
        given = given_tokens(r.given_names)
        out.append((given[0] if given else "", family_key(r.family_name)))
    return out


def reidentified_share(
    guesses: Sequence[tuple[str, str]], truth: Sequence[tuple[str, str]]
) -> tuple[float, float, float]:
    """Shares of records whose (given and family name, given name, family name) the attack guessed."""
    if len(guesses) != len(truth):
        raise ValueError(f"{len(guesses)} guesses for {len(truth)} records")
    if not truth:
        return 0.0, 0.0, 0.0
    both = sum(g == t for g, t in zip(guesses, truth, strict=True))
    given = sum(g[0] == t[0] for g, t in zip(guesses, truth, strict=True))
    family = sum(g[1] == t[1] for g, t in zip(guesses, truth, strict=True))
    n = len(truth)
    return both / n, given / n, family / n
