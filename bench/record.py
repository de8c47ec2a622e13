"""Recording a benchmark's figures in docs/benchmarks.md, each benchmark in its own marked section."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Each section is written by the benchmark named in it; run the command shown to measure again. Figures vary
by about ±30% from run to run on shared machines: compare figures from the same run only.
"""


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def record(name: str, command: str, body: str) -> None:
    """Replaces (or appends) the section for benchmark name."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = (
        f"{start}\n## {name}\n\nMeasured {dt.date.today().isoformat()} on {machine()} with:\n\n"
        f"```sh\n{command}\n```\n\n{body.strip()}\n{end}"
    )
    text = DOC.read_text() if DOC.exists() else HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)
