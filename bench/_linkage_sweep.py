"""The parameter measurements behind the linkage defaults (python -m bench.linkage --sweep).

Encodings are compared exhaustively on a smaller town (so blocking does not blur the comparison of
encodings), and blocking, thresholds and the per-agency limit on the main town.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from bench._linkage_measure import KEY, leakage, pairs_above
from linkage import (
    DEFAULT_K,
    DEFAULT_PARAMS,
    EncodingParams,
    LinkParams,
    LshBlocking,
    as_packed,
    candidate_pairs,
    cluster,
    dice_pairs,
    encode_many,
    pair_completeness,
    reduction_ratio,
)
from linkage.attack import frequency_attack, reidentified_share, true_names
from linkage.public_tables import tables_from_pools
from tests.unit.linkage_town import Town, linked_pairs, pair_quality, true_pairs

THRESHOLDS = (0.5, 0.52, 0.54, 0.56, 0.58, 0.6, 0.62, 0.64, 0.66, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


# Other weightings of the kinds, against DEFAULT_K.
_WEIGHTINGS: tuple[tuple[str, Mapping[str, int]], ...] = (
    (
        "dates and postcodes k x1.5",
        {
            k: DEFAULT_K[k] * 3 // 2
            for k in ("year", "month", "day", "day_month", "postcode", "sector", "district")
        },
    ),
    ("names k x0.75", {"name": 12, "formal": 9}),
    ("no formal names", {"formal": 0}),
    ("no gender", {"gender": 0}),
)


def _scaled(scale: float) -> Mapping[str, int]:
    return {kind: max(1, round(k * scale)) for kind, k in DEFAULT_K.items()}


def _best_f1(
    town: Town, encodings: npt.NDArray[np.uint8], truth: set[tuple[int, int]]
) -> tuple[float, float, float, float]:
    """Best F1 over THRESHOLDS (exhaustive candidates), with its precision, recall and threshold.

    Thresholds less than 0.1 above the median Dice of random pairs are skipped: they link strangers (a
    balanced encoding's random pairs sit near 0.75), and would hand the greedy loop millions of pairs."""
    packed = as_packed(encodings)
    rng = np.random.default_rng(0)
    sample = rng.integers(0, len(packed), (2, 20_000))
    floor = float(np.median(dice_pairs(packed, packed, sample[0], sample[1]))) + 0.1
    usable = [t for t in THRESHOLDS if t >= floor] or [max(THRESHOLDS)]
    pairs = pairs_above(encodings, town.agency_ids, min(usable))
    best = (0.0, 0.0, 0.0, 0.0)
    for threshold in usable:
        labels = cluster(encodings, town.agency_ids, LinkParams(threshold=threshold), pairs).labels
        p, r, f1 = pair_quality(linked_pairs(labels, town.agency_ids), truth)
        if f1 > best[0]:
            best = (f1, p, r, threshold)
    return best


def _encodings_table(town: Town) -> list[str]:
    truth, tables, names = true_pairs(town), tables_from_pools(), true_names(town.fields)
    configs = [
        ("none", EncodingParams(hardening="none")),
        ("salt (birth year)", EncodingParams(hardening="salt")),
        ("balance", EncodingParams(hardening="balance")),
        ("xor_fold", EncodingParams(hardening="xor_fold")),
        *[
            (f"diffusion t={t}, k x{scale:g}", EncodingParams(k=_scaled(scale), taps=t))
            for scale, t in ((0.5, 6), (0.5, 8), (0.5, 10), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8), (1.5, 4))
        ],
        *[(f"diffusion t=6, {label}", EncodingParams(k={**DEFAULT_K, **k})) for label, k in _WEIGHTINGS],
    ]
    rows = [
        "| encoding | best F1 | precision | recall | at Dice | re-identified | leakage (noise) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, params in configs:
        encodings = encode_many(KEY, town.fields, params)
        f1, p, r, threshold = _best_f1(town, encodings, truth)
        attack = frequency_attack(encodings, tables, params)
        share = reidentified_share(attack.guesses, names)[0]
        signal, noise = leakage(encodings, town)
        chosen = " (chosen)" if params == DEFAULT_PARAMS else ""
        rows.append(
            f"| {label}{chosen} | {f1:.4f} | {p:.4f} | {r:.4f} | {threshold:.2f} | {share:.2%} | "
            f"{signal:.3f} ({noise:.3f}) |"
        )
    return rows


def _main_town_tables(town: Town) -> list[str]:
    truth = true_pairs(town)
    encodings = encode_many(KEY, town.fields, DEFAULT_PARAMS)
    packed = as_packed(encodings)
    ordered = sorted(truth)
    scores = dice_pairs(packed, packed, *np.array(ordered, dtype=np.intp).reshape(-1, 2).T)
    linkable = {p for p, s in zip(ordered, scores.tolist(), strict=True) if s >= LinkParams().threshold}
    rows = [
        "| LSH bands x bits | candidates | reduction ratio | pair completeness | of linkable | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for bands, bits in ((256, 13), (512, 13), (1024, 15), (2048, 16), (4096, 17)):
        blocking = LshBlocking(bands=bands, bits_per_band=bits)
        started = time.perf_counter()
        found = candidate_pairs(encodings, town.agency_ids, blocking)
        seconds = time.perf_counter() - started
        chosen = " (chosen)" if blocking == LinkParams().blocking else ""
        ratio = reduction_ratio(found, town.agency_ids)
        complete, of_linkable = pair_completeness(found, truth), pair_completeness(found, linkable)
        rows.append(
            f"| {bands} x {bits}{chosen} | {len(found[0]):,} | {ratio:.4f} | {complete:.4f} | "
            f"{of_linkable:.4f} | {seconds:.1f} |"
        )
    candidates = candidate_pairs(encodings, town.agency_ids, LinkParams().blocking)
    rows += [
        "",
        "| Dice threshold | max per agency | precision | recall | F1 |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for threshold in (0.56, 0.58, 0.6, 0.62, 0.64, 0.66, 0.7):
        for limit in (1, 2):
            params = LinkParams(threshold=threshold, max_per_agency=limit)
            labels = cluster(encodings, town.agency_ids, params, candidates).labels
            p, r, f1 = pair_quality(linked_pairs(labels, town.agency_ids), truth)
            chosen = " (chosen)" if params == LinkParams() else ""
            rows.append(f"| {threshold:.2f}{chosen} | {limit} | {p:.4f} | {r:.4f} | {f1:.4f} |")
    return rows


def sweep(small: Town, town: Town, small_people: int, people: int) -> str:
    """The sweep's tables as markdown."""
    return "\n".join(
        [
            f"Encodings compared on a town of {small_people:,} people ({len(small.fields):,} records), every "
            "pair of records of different agencies compared (no blocking), with the best F1 over Dice "
            f"thresholds {', '.join(f'{t:g}' for t in THRESHOLDS)} (those at least 0.1 above the median Dice "
            "of random pairs); the frequency attack and the white-box "
            "leakage as in the main table. k x1 is DEFAULT_K (docs/linkage.md); x0.5 halves every k, and so "
            "on.",
            "",
            *_encodings_table(small),
            "",
            f"Blocking and linking thresholds on the main town ({people:,} people, {len(town.fields):,} "
            "records), chosen encoding:",
            "",
            *_main_town_tables(town),
        ]
    )
