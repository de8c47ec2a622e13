"""The fuzzing process: instruments the code under test as it is imported, then hands over to libFuzzer.

Run by `python -m fuzz` as `python -m fuzz._child TARGET [libFuzzer flags and corpus folders]`.
"""

from __future__ import annotations

import sys

import atheris

# Our packages, and the standard library's TOML parser (agreements arrive as TOML).
INSTRUMENTED = ("adapters", "audit", "broker", "fuzz", "lateral", "policy", "protos", "tomllib")


def main(argv: list[str]) -> None:
    name, flags = argv[1], argv[2:]
    # Let string comparisons (startswith, endswith) guide the mutations. Not "RegEx": its hook fails on the
    # bytes patterns some dependencies compile at import (atheris 3.0).
    atheris.enabled_hooks.add("str")
    with atheris.instrument_imports(include=list(INSTRUMENTED)):
        from fuzz.targets import TARGETS
    atheris.Setup([argv[0], *flags], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
