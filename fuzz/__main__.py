"""`python -m fuzz TARGET --seconds N [--corpus DIR]`, or `python -m fuzz all --seconds N`: runs targets
one after another, each in its own process under libFuzzer, and prints what each did.

Each target starts from its seed corpus (fuzz/corpus/<target>) and the inputs that once crashed it
(fuzz/regressions/<target>); the inputs it finds interesting go to a working corpus outside the repository
(--corpus, by default <tmp>/lateral-fuzz/<target>/corpus) so a later run resumes from them. A crash, an
unexpected exception or a hang stops that target and is written to <work>/artifacts/: replay it with the
target function, fix the code, and keep the input in fuzz/regressions/<target>/.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The target names, without importing the targets (and the code under test) into this process.
TARGET_NAMES = (
    "check_request",
    "household_request",
    "rest_json",
    "normalise",
    "agreement_toml",
    "agreement_fields",
    "audit_bundle_json",
    "audit_bundle_fields",
)
# A single input taking longer than this is a hang.
HANG_SECONDS = 10


@dataclass
class Run:
    target: str
    seconds: float
    executions: int
    coverage: int  # libFuzzer "cov": code edges reached
    features: int  # libFuzzer "ft": edges with hit counts, comparisons...
    corpus: int
    exit_code: int
    artifacts: list[str]
    error: str  # the uncaught exception, or libFuzzer's reason (a timeout, memory)
    log: Path

    @property
    def crashed(self) -> bool:
        return self.exit_code != 0 or bool(self.artifacts)


def _last(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


def fuzz(target: str, seconds: int, work: Path, corpus: Path | None = None) -> Run:
    """Runs one target for `seconds` in a child process and reads libFuzzer's report. New interesting inputs
    go to corpus (by default <work>/corpus); crashes to <work>/artifacts."""
    corpus, artifacts = corpus or work / "corpus", work / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    seeds = [str(d) for d in (HERE / "corpus" / target, HERE / "regressions" / target) if d.is_dir()]
    command = [
        sys.executable,
        "-m",
        "fuzz._child",
        target,
        f"-max_total_time={seconds}",
        f"-timeout={HANG_SECONDS}",
        "-rss_limit_mb=2048",
        "-max_len=8192",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
        str(corpus),
        *seeds,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own interpreter running our own module
        command, cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.monotonic() - started
    log = work / "fuzz.log"
    log.write_text(done.stdout + done.stderr)
    return read_report(target, done.stdout + done.stderr, done.returncode, elapsed, log)


def read_report(target: str, output: str, exit_code: int, seconds: float, log: Path) -> Run:
    """What libFuzzer (with -print_final_stats=1) and atheris printed, as a Run."""
    return Run(
        target=target,
        seconds=seconds,
        executions=_last(r"stat::number_of_executed_units:\s*(\d+)", output),
        coverage=_last(r"\bcov: (\d+)", output),
        features=_last(r"\bft: (\d+)", output),
        corpus=_last(r"\bcorp: (\d+)", output),
        exit_code=exit_code,
        artifacts=re.findall(r"Test unit written to (\S+)", output),
        error=_error(output),
        log=log,
    )


def _error(output: str) -> str:
    uncaught = re.search(r"=== Uncaught Python exception: ===\n(.*)", output)
    if uncaught:
        return uncaught.group(1)
    reason = re.search(r"ERROR: libFuzzer: (.*)", output)
    return reason.group(1) if reason else ""


def _line(run: Run) -> str:
    found = f"CRASH ({', '.join(run.artifacts) or f'exit {run.exit_code}'})" if run.crashed else "no crash"
    return (
        f"{run.target:<20} {run.executions:>9} execs in {run.seconds:5.0f} s "
        f"({run.executions / max(run.seconds, 1e-9):7.0f}/s)  cov {run.coverage:>5}  ft {run.features:>6}  "
        f"corpus {run.corpus:>5}  {found}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=[*TARGET_NAMES, "all"])
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz each target")
    parser.add_argument("--corpus", type=Path, default=None, help="working corpus folder (one target)")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "lateral-fuzz",
        help="where working corpora, crashes and logs go, one folder per target",
    )
    args = parser.parse_args(argv)
    if args.corpus is not None and args.target == "all":
        parser.error("--corpus is for one target; use --work with all")
    runs = []
    for target in TARGET_NAMES if args.target == "all" else (args.target,):
        run = fuzz(target, args.seconds, args.work / target, args.corpus)
        print(_line(run), flush=True)
        if run.crashed:
            print(f"  {run.error}\n  log: {run.log}", flush=True)
        runs.append(run)
    total = sum(r.executions for r in runs)
    print(f"{len(runs)} targets, {total} executions, {sum(r.crashed for r in runs)} crashed")
    return 1 if any(r.crashed for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
