"""Privacy-preserving linkage on a synthetic town: quality against the truth and against plain matching,
review candidates, timings, and the frequency attack.

    python -m bench.linkage                   # 100,000 people (a few minutes on 2 cores)
    python -m bench.linkage --people 30000 --no-record
    python -m bench.linkage --sweep           # also the parameter measurements behind the defaults

Only records with activity in the look-back window are encoded, as the agencies would publish them. In
one run: pairwise precision and recall of linking the hardened encodings; the same for the adapters' own
matcher on the clear fields (KNOWN, and KNOWN or POSSIBLE, as links); review candidates against the
people truly active at several agencies; encode, block and link times; and the frequency attack on the
unhardened and the hardened encodings.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from bench._linkage_measure import (
    ALWAYS_REVIEW,
    KEY,
    SECRETS,
    activity_of,
    candidate_quality,
    entities_of,
    leakage,
    plain_matching,
    tokens,
)
from bench.record import record
from linkage import (
    DEFAULT_PARAMS,
    UNHARDENED,
    LinkParams,
    ReviewRules,
    as_packed,
    candidate_pairs,
    cluster,
    dice_pairs,
    encode_many,
    pair_completeness,
    reduction_ratio,
    review_candidates,
)
from linkage.attack import frequency_attack, reidentified_share, true_names
from linkage.public_tables import tables_from_pools
from synth import AGENCIES
from tests.unit.linkage_town import Town, build_town, linked_pairs, pair_quality, true_pairs


def _timed(what: str, timings: dict[str, float], function: Any, *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    out = function(*args, **kwargs)
    timings[what] = time.perf_counter() - started
    return out


def measure(town: Town, min_agencies: int) -> dict[str, Any]:
    """Every figure of the main table for one town."""
    t: dict[str, float] = {}
    truth = true_pairs(town)
    hardened = _timed("encode", t, encode_many, KEY, town.fields, DEFAULT_PARAMS)
    baseline = encode_many(KEY, town.fields, UNHARDENED)
    params = LinkParams()
    candidates = _timed("block", t, candidate_pairs, hardened, town.agency_ids, params.blocking)
    packed = as_packed(hardened)
    ordered = sorted(truth)
    scores = dice_pairs(packed, packed, *np.array(ordered, dtype=np.intp).reshape(-1, 2).T)
    linkable = {p for p, s in zip(ordered, scores.tolist(), strict=True) if s >= params.threshold}
    clustering = _timed("link", t, cluster, hardened, town.agency_ids, params, candidates)
    linked = linked_pairs(clustering.labels, town.agency_ids)
    known, possible = _timed("plain", t, plain_matching, town)
    record_tokens = tokens(town, SECRETS)
    entities = entities_of(clustering.labels, town, record_tokens)
    rules = ReviewRules(min_agencies=min_agencies, window_days=town.window_days, always_review=ALWAYS_REVIEW)
    found = _timed(
        "candidates",
        t,
        review_candidates,
        entities,
        activity_of(town, record_tokens),
        town.reference_date,
        KEY.epoch,
        rules,
    )
    tables, names = tables_from_pools(), true_names(town.fields)
    attack_base = _timed("attack", t, frequency_attack, baseline, tables, UNHARDENED)
    attack_hard = frequency_attack(hardened, tables, DEFAULT_PARAMS)
    commonest = (
        max(tables.given, key=tables.given.__getitem__),
        max(tables.family, key=tables.family.__getitem__),
    )
    return {
        "records": len(town.fields),
        "per_agency": {a: town.agencies.count(a) for a in AGENCIES},
        "true_pairs": len(truth),
        "candidates": len(candidates[0]),
        "pc": pair_completeness(candidates, truth),
        "pc_linkable": pair_completeness(candidates, linkable),
        "rr": reduction_ratio(candidates, town.agency_ids),
        "private": pair_quality(linked, truth),
        "known": pair_quality(known, truth),
        "known_possible": pair_quality(known | possible, truth),
        "review": candidate_quality(town, record_tokens, found, min_agencies),
        "attack": {
            "baseline": reidentified_share(attack_base.guesses, names),
            "hardened": reidentified_share(attack_hard.guesses, names),
            "footprints": (attack_base.footprints, attack_hard.footprints),
            "chance": reidentified_share([commonest] * len(names), names),
        },
        "leakage": {"baseline": leakage(baseline, town), "hardened": leakage(hardened, town)},
        "times": t,
    }


def report(m: dict[str, Any], people: int, min_agencies: int, window: int) -> str:
    p, k, kp = m["private"], m["known"], m["known_possible"]
    r, t, a = m["review"], m["times"], m["attack"]
    per = ", ".join(f"{n:,} {agency}" for agency, n in m["per_agency"].items())
    lk = m["leakage"]
    return "\n".join(
        [
            f"A synthetic town of {people:,} people; encoded: the {m['records']:,} agency records with "
            f"activity in the last {window} days ({per}); {m['true_pairs']:,} true pairs of one person's "
            f"records at two agencies. Parameters as in docs/linkage.md (CLK of 1,024 bits, diffusion t = "
            f"{DEFAULT_PARAMS.taps}, Dice threshold {LinkParams().threshold}, LSH "
            f"{LinkParams().blocking.bands} bands x {LinkParams().blocking.bits_per_band} bits).",
            "",
            "| linkage of record pairs | precision | recall | F1 |",
            "| --- | ---: | ---: | ---: |",
            f"| hardened encodings (private) | {p[0]:.4f} | {p[1]:.4f} | {p[2]:.4f} |",
            f"| plain matching, KNOWN as a link | {k[0]:.4f} | {k[1]:.4f} | {k[2]:.4f} |",
            f"| plain matching, KNOWN or POSSIBLE as a link | {kp[0]:.4f} | {kp[1]:.4f} | {kp[2]:.4f} |",
            "",
            f"Blocking: {m['candidates']:,} candidate pairs, reduction ratio {m['rr']:.4f}; pair "
            f"completeness {m['pc']:.4f} of all true pairs, {m['pc_linkable']:.4f} of those at or above the "
            "threshold.",
            "",
            f"Review candidates (activity at {min_agencies} or more agencies within {window} days, or an "
            f"always-review category in an entity known to two agencies): {r.candidates:,} candidates, of "
            f"which {r.false:,} join more than one person and {r.by_category_only:,} come from a category "
            f"alone; {r.found:,} of the {r.true_people:,} people truly active at {min_agencies} or more "
            f"agencies found ({r.found / max(1, r.true_people):.1%}).",
            "",
            "| time | seconds |",
            "| --- | ---: |",
            *[
                f"| {what} | {t[key]:.2f} |"
                for what, key in (
                    ("encode (hardened, all records)", "encode"),
                    ("block (LSH)", "block"),
                    ("link (Dice of candidates, greedy, union-find)", "link"),
                    ("review candidates", "candidates"),
                    ("plain matching, every agency against every later one", "plain"),
                    ("frequency attack (unhardened)", "attack"),
                )
            ],
            "",
            "Frequency attack (pattern mining after Christen et al. 2018, public name tables = the "
            "generator's pools): share of records whose first given name and family name it re-identifies "
            "(both; given only; family only), and white-box leakage (median over the 40 most frequent name "
            "bigrams of the largest difference P(bit | bigram) - P(bit | no bigram); the noise floor in "
            "brackets).",
            "",
            "| encoding | footprints mined | re-identified (both) | given | family | leakage |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            *[
                f"| {label} | {a['footprints'][n]} | {a[key][0]:.2%} | {a[key][1]:.2%} | {a[key][2]:.2%} | "
                f"{lk[key][0]:.3f} ({lk[key][1]:.3f}) |"
                for n, (label, key) in enumerate((("unhardened", "baseline"), ("hardened", "hardened")))
            ],
            f"| (chance: the commonest given and family name for every record) | - | {a['chance'][0]:.2%} | "
            f"{a['chance'][1]:.2%} | {a['chance'][2]:.2%} | - |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--window-days", type=int, default=365)
    parser.add_argument("--min-agencies", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="also measure the parameter choices")
    parser.add_argument("--sweep-people", type=int, default=30_000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    print(f"{args.people:,} people: generating...", file=sys.stderr, flush=True)
    town = build_town(args.people, args.seed, args.window_days)
    print(f"{len(town.fields):,} records: measuring...", file=sys.stderr, flush=True)
    body = report(measure(town, args.min_agencies), args.people, args.min_agencies, args.window_days)
    print(body)
    command = f"python -m bench.linkage --people {args.people}"
    if not args.no_record:
        record("linkage", command, body)
    if args.sweep:
        from bench._linkage_sweep import sweep

        small = build_town(args.sweep_people, args.seed, args.window_days)
        sweep_body = sweep(small, town, args.sweep_people, args.people)
        print(sweep_body)
        if not args.no_record:
            record("linkage-sweep", command + f" --sweep --sweep-people {args.sweep_people}", sweep_body)


if __name__ == "__main__":
    main()
