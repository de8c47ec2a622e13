"""Every input the fuzzer ever crashed on (fuzz/regressions/<target>/) and every seed (fuzz/corpus/<target>/),
replayed through its target without atheris: each must now pass the target's checks."""

from pathlib import Path

import pytest

from fuzz.targets import TARGETS

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
INPUTS = sorted(p for kind in ("regressions", "corpus") for p in (FUZZ / kind).glob("*/*") if p.is_file())


def test_inputs_are_kept_under_known_targets() -> None:
    assert {p.parent.name for p in INPUTS} <= set(TARGETS)
    assert {p.parent.name for p in INPUTS if p.parent.parent.name == "corpus"} == set(TARGETS)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_input_passes_its_target(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())
