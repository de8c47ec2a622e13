"""Matching quality and speed on synthetic agencies of 10k, 100k and 1M records.

    python -m bench.matching                       # 10k, 100k, 1M (about 10 minutes)
    python -m bench.matching --sizes 10000 100000  # quicker

For each size the parent generates a town whose police force knows three in four people (police keep no
NHS numbers, so names, dates and addresses must do the work), writes the force's database and a query
set, and a child process builds the index from that database and runs the queries, so the child's peak
memory is the index's own. Baseline in the same run: rapidfuzz alone, the best single string score over
the whole table.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.chart import latency_chart
from bench.record import DOC, record

AGENCY = "police"


COVERAGE = 0.75
# Written next to docs/benchmarks.md by a recorded run, and shown in its matching section.
CHART = DOC.parent / "matching-latency.svg"


def _prepare(records: int, folder: Path, queries: int) -> None:
    """A town in which the force knows three in four people (so the rest, and the twins, siblings and
    namesakes of those it knows, can be asked about), sized to give about `records` records."""
    from synth import SynthConfig, generate, make_queries, sqlite_urls, write_adapter_configs, write_queries
    from synth.config import police_knowing
    from synth.output import write_databases

    data = generate(SynthConfig(people=int(records / COVERAGE), seed=21, coverage=police_knowing(COVERAGE)))
    urls = {AGENCY: sqlite_urls(folder)[AGENCY]}
    write_databases(data, urls)
    write_adapter_configs(folder, urls)
    write_queries(make_queries(data, AGENCY, queries, seed=5), folder / "queries.csv", folder / "truth.csv")


def _child(folder: Path, baseline_queries: int) -> dict[str, Any]:
    from adapters.core import load_adapter_config
    from adapters.core.dryrun import subject_from_row
    from adapters.core.matching import Matcher, query_fields
    from adapters.core.refresh import build_index
    from protos.lateral.v1 import common_pb2

    config = load_adapter_config(folder / f"{AGENCY}.toml")
    started = time.perf_counter()
    index = build_index(config)
    build_s = time.perf_counter() - started
    matcher = Matcher(index)
    with (folder / "queries.csv").open() as q, (folder / "truth.csv").open() as t:
        rows = list(csv.DictReader(q))
        truth = {r["query_id"]: r for r in csv.DictReader(t)}
    latencies, answers, scored = [], {}, []
    for row in rows:
        subject = subject_from_row(row)
        t0 = time.perf_counter()
        result = matcher.match(subject)
        latencies.append((time.perf_counter() - t0) * 1000)
        scored.append(len(matcher.candidates(query_fields(subject))))
        answers[row["query_id"]] = (
            common_pb2.Outcome.Name(result.outcome).removeprefix("OUTCOME_"),
            set(result.record_keys),
        )
    rss_mb = _peak_rss_mb()
    step = max(1, len(rows) // max(1, baseline_queries))
    baseline = _baseline(index, rows[::step][:baseline_queries], truth)
    return {
        "records": index.record_count,
        "build_s": build_s,
        "rss_mb": rss_mb,
        "latencies": latencies,
        "candidates": scored,
        "answers": {k: [v[0], sorted(v[1])] for k, v in answers.items()},
        "truth": truth,
        "baseline": baseline,
    }


def _peak_rss_mb() -> float:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries that across fork and
    exec, so a child would report the parent's peak (2.8 GB of town generation, seen here)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline(index: Any, rows: list[dict[str, str]], truth: dict[str, dict[str, str]]) -> dict[str, float]:
    """rapidfuzz alone: the best whole-string score over every record, KNOWN at 95 or above."""
    from rapidfuzz import fuzz, process

    if not rows:  # --baseline-queries 0: not worth a million-string table
        return {"queries": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "p50_ms": 0.0}
    table = [
        f"{' '.join(g)} {f} {d}"
        for g, f, d in zip(index.given, index.family, index.dob.tolist(), strict=True)
    ]
    tp = fp = fn = 0
    latencies = []
    for row in rows:
        dob = row["date_of_birth"].replace("-", "")
        family = row["family_name"].lower().replace(" ", "").replace("-", "")
        query = f"{row['given_name'].lower()} {family} {dob}"
        t0 = time.perf_counter()
        best = process.extractOne(query, table, scorer=fuzz.ratio, score_cutoff=95)
        latencies.append((time.perf_counter() - t0) * 1000)
        expected = truth[row["query_id"]]
        true_keys = set(expected["record_ids"].split(";")) - {""}
        if best is not None:
            if index.keys[best[2]] in true_keys:
                tp += 1
            else:
                fp += 1
        elif true_keys:
            fn += 1
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {
        "queries": len(rows),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "p50_ms": statistics.median(latencies) if latencies else 0.0,
    }


def _quality(answers: dict[str, list[Any]], truth: dict[str, dict[str, str]]) -> dict[str, Any]:
    tp = fp = fn = found = 0
    # queries, KNOWN right, KNOWN or POSSIBLE; then the same for records with this error alone
    per_type: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    negatives: Counter[str] = Counter()
    negative_known: Counter[str] = Counter()
    negative_possible: Counter[str] = Counter()
    for query_id, expected in truth.items():
        outcome, keys = answers[query_id][0], set(answers[query_id][1])
        true_keys = set(expected["record_ids"].split(";")) - {""}
        if expected["expected"] == "KNOWN":
            right = outcome == "KNOWN" and bool(keys) and keys <= true_keys
            seen = right or (outcome == "POSSIBLE" and bool(keys & true_keys))
            tp += right
            fp += outcome == "KNOWN" and not right
            fn += not right
            found += seen
            tags = expected["tag"].split(";")
            for tag in tags:
                counts = per_type[tag]
                counts[0] += 1
                counts[1] += right
                counts[2] += seen
                if len(tags) == 1:
                    counts[3] += 1
                    counts[4] += right
                    counts[5] += seen
        else:
            kind = expected["tag"]
            negatives[kind] += 1
            negative_known[kind] += outcome == "KNOWN"
            negative_possible[kind] += outcome == "POSSIBLE"
            fp += outcome == "KNOWN"
    known_queries = sum(1 for e in truth.values() if e["expected"] == "KNOWN")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / known_queries
    return {
        "precision": precision,
        "recall": recall,
        "found": found / known_queries,
        "f1": _f1(precision, recall),
        "f1_found": _f1(precision, found / known_queries),
        "per_type": dict(per_type),
        "negatives": dict(negatives),
        "negative_known": dict(negative_known),
        "negative_possible": dict(negative_possible),
    }


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--baseline-queries", type=int, default=200)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--chart", type=Path, help=f"write the latency chart here (a recorded run writes {CHART.name})"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.baseline_queries)))
        return
    results = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            print(f"{size:,} people: generating...", file=sys.stderr, flush=True)
            _prepare(size, folder, args.queries)
            print(f"{size:,} people: building the index and matching...", file=sys.stderr, flush=True)
            out = subprocess.run(  # noqa: S603 - this same program, with a folder it made
                [
                    sys.executable,
                    "-m",
                    "bench.matching",
                    "--child",
                    str(folder),
                    "--baseline-queries",
                    str(args.baseline_queries),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            child = json.loads(out.stdout)
        child["quality"] = _quality(child.pop("answers"), child.pop("truth"))
        results[size] = child
    body = _report(results, args)
    print(body)
    latencies = {
        r["records"]: (_percentile(r["latencies"], 0.5), _percentile(r["latencies"], 0.99))
        for r in results.values()
    }
    if args.chart:
        latency_chart(latencies, args.chart)
    if not args.no_record:
        latency_chart(latencies, CHART)
        record(
            "matching",
            "python -m bench.matching " + " ".join(f"--sizes {' '.join(map(str, args.sizes))}".split()),
            body + f"\n\n![p50 and p99 match latency against records in the index]({CHART.name})",
        )


def _report(results: dict[int, dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"Agency: {AGENCY} knowing three in four people of a synthetic town (no NHS numbers); "
        f"{args.queries:,} queries per size "
        "(half known people with the generator's recording errors, the rest people it has never met and hard "
        "negatives). *Recall* counts a KNOWN answer naming only true records; *found* also counts a POSSIBLE "
        "answer that includes the true record (nothing is disclosed, the worker is told to check); *F1* is "
        "that of KNOWN answers, *F1 found* counts found answers as recalled. False positives are KNOWN "
        "answers for anyone else (a disclosure about the wrong person). *Scored* is the number of candidate "
        "records a query's blocking keys retrieve and the matcher scores (median / 99th percentile).",
        "",
        "| records | build | build rate | RSS | p50 | p99 | scored | precision | recall | found | F1 "
        "| F1 found | FP unknown | FP hard neg. | baseline P / R / F1 (p50) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| --- |",
    ]
    for r in results.values():
        q = r["quality"]
        lat = r["latencies"]
        hard = sum(v for k, v in q["negatives"].items() if k.startswith("hard"))
        hard_fp = sum(v for k, v in q["negative_known"].items() if k.startswith("hard"))
        unknown, unknown_fp = q["negatives"].get("unknown", 0), q["negative_known"].get("unknown", 0)
        b = r["baseline"]
        lines.append(
            f"| {r['records']:,} | {r['build_s']:.1f} s | {r['records'] / r['build_s']:,.0f}/s "
            f"| {r['rss_mb']:,.0f} MB "
            f"| {_percentile(lat, 0.5):.2f} ms | {_percentile(lat, 0.99):.2f} ms "
            f"| {_percentile(r['candidates'], 0.5):.0f} / {_percentile(r['candidates'], 0.99):.0f} "
            f"| {q['precision']:.4f} | {q['recall']:.4f} | {q['found']:.4f} | {q['f1']:.4f} "
            f"| {q['f1_found']:.4f} | {unknown_fp}/{unknown} "
            f"| {hard_fp}/{hard} | "
            f"{b['precision']:.3f} / {b['recall']:.3f} / {b['f1']:.3f} ({b['p50_ms']:.0f} ms) |"
        )
    smallest, biggest = results[min(results)], results[max(results)]
    if len(results) > 1:
        p50s = [_percentile(r["latencies"], 0.5) for r in (smallest, biggest)]
        lines += [
            "",
            f"Latency from {smallest['records']:,} to {biggest['records']:,} records: p50 "
            f"{p50s[0]:.2f} → {p50s[1]:.2f} ms ({p50s[1] / p50s[0]:.2f}×) over "
            f"{biggest['records'] / smallest['records']:.0f}× the records.",
        ]
    largest = biggest["quality"]
    lines += [
        "",
        f"By recording error at {max(results):,} records: every query whose record carries the error, and "
        "those whose record carries it alone (a record can carry several; most misses carry two or three):",
        "",
        "| error | queries | recall | found | alone: queries | recall | found |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for tag, (n, right, seen, n1, right1, seen1) in sorted(
        largest["per_type"].items(), key=lambda kv: -kv[1][0]
    ):
        alone = f"{n1} | {right1 / n1:.3f} | {seen1 / n1:.3f}" if n1 else "0 | - | -"
        lines.append(f"| {tag} | {n} | {right / n:.3f} | {seen / n:.3f} | {alone} |")
    lines += [
        "",
        "| negative kind | queries | KNOWN (false positive) | POSSIBLE |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind, n in sorted(largest["negatives"].items()):
        lines.append(
            f"| {kind} | {n} | {largest['negative_known'].get(kind, 0)} | "
            f"{largest['negative_possible'].get(kind, 0)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
