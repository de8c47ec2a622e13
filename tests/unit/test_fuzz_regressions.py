"""Every input the fuzzer ever crashed on (fuzz/regressions/<target>/) and every seed (fuzz/corpus/<target>/),
replayed through its target without atheris: each must now pass the target's checks. And how the runner
(python -m fuzz) reads libFuzzer's report."""

from pathlib import Path

import pytest

from fuzz.__main__ import TARGET_NAMES, read_report
from fuzz.targets import TARGETS

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
INPUTS = sorted(p for kind in ("regressions", "corpus") for p in (FUZZ / kind).glob("*/*") if p.is_file())


def test_inputs_are_kept_under_known_targets() -> None:
    assert {p.parent.name for p in INPUTS} <= set(TARGETS)
    assert {p.parent.name for p in INPUTS if p.parent.parent.name == "corpus"} == set(TARGETS)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_input_passes_its_target(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())


def test_the_runner_knows_every_target_without_importing_them() -> None:
    assert tuple(TARGETS) == TARGET_NAMES


# The end of a real atheris run that found a crash (shortened).
CRASHED = """\
 === Uncaught Python exception: ===
AssertionError: fold is not idempotent
Traceback (most recent call last):
#10	INITED cov: 123 ft: 172 corp: 9/149b exec/s: 0 rss: 171Mb
#76	REDUCE cov: 136 ft: 231 corp: 22/345b lim: 30 exec/s: 0 rss: 171Mb L: 9/30 MS: 3 ShuffleBytes-
==9441== ERROR: libFuzzer: fuzz target exited
artifact_prefix='/tmp/w/artifacts/'; Test unit written to /tmp/w/artifacts/crash-943dc28d
stat::number_of_executed_units: 88
stat::average_exec_per_sec:     0
"""


def test_the_runner_reads_what_libfuzzer_reports() -> None:
    run = read_report("normalise", CRASHED, 1, 4.0, Path("fuzz.log"))
    assert (run.executions, run.coverage, run.features, run.corpus) == (88, 136, 231, 22)
    assert (run.crashed, run.artifacts) == (True, ["/tmp/w/artifacts/crash-943dc28d"])
    assert run.error == "AssertionError: fold is not idempotent"
    assert not read_report("normalise", "stat::number_of_executed_units: 5\n", 0, 1.0, Path("x")).crashed
