"""Drawing a benchmark's latency against records, for docs/benchmarks.md.

matplotlib is imported inside the function (it is the optional `bench` extra, and slow to import), with the
Agg backend so that no display is needed. The SVG carries no date and a fixed id salt, so drawing the same
figures twice gives the same file and a re-run shows in a diff only when the figures move.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def latency_chart(latencies: Mapping[int, tuple[float, float]], path: Path) -> None:
    """Writes p50 and p99 latency (ms) per number of records, records on a log scale, as an SVG.

    Args:
        latencies: records -> (p50, p99) in milliseconds.
        path: where the SVG goes (its folder must exist).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(latencies)
    with plt.rc_context({"svg.hashsalt": "lateral", "font.size": 10}):
        figure, axes = plt.subplots(figsize=(6.4, 3.6))
        for label, column, marker in (("p50", 0, "o"), ("p99", 1, "s")):
            axes.plot(sizes, [latencies[s][column] for s in sizes], marker=marker, label=label)
        axes.set_xscale("log")
        axes.set_xlabel("records in the index")
        axes.set_ylabel("match latency (ms)")
        axes.set_ylim(bottom=0)
        axes.set_title("Match latency against index size")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
        figure.tight_layout()
        figure.savefig(path, format="svg", metadata={"Date": None})
        plt.close(figure)
