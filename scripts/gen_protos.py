"""Regenerates the Python code and type stubs for protos/lateral/v1/*.proto.

Usage:
    python scripts/gen_protos.py          # rewrite the committed generated files
    python scripts/gen_protos.py --check  # exit 1 if the committed files are stale

protoc names imports after the proto path ("lateral.v1"); the code lives in the installed package
"protos.lateral.v1", so imports are rewritten after generation.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE_DIR = PROTO_ROOT / "lateral" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
_IMPORT = re.compile(r"^(from|import) lateral\.v1", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Generates code for every proto file into out_dir/lateral/v1 and returns the files written."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    # The mypy-protobuf plugins sit beside this interpreter, which need not be on PATH (an unactivated venv).
    plugins = Path(sys.executable).parent
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PACKAGE_DIR.glob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = sorted(p for p in (out_dir / "lateral" / "v1").iterdir() if p.name.endswith(GENERATED_SUFFIXES))
    for path in written:
        path.write_text(_IMPORT.sub(r"\1 protos.lateral.v1", path.read_text()))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="only report whether the committed files are stale"
    )
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        committed = sorted(p for p in PACKAGE_DIR.iterdir() if p.name.endswith(GENERATED_SUFFIXES))
        stale = [p.name for p in fresh if not (PACKAGE_DIR / p.name).exists()]
        stale += [
            p.name
            for p in fresh
            if (PACKAGE_DIR / p.name).exists() and not filecmp.cmp(p, PACKAGE_DIR / p.name, shallow=False)
        ]
        stale += [p.name for p in committed if p.name not in {f.name for f in fresh}]
        if check:
            if stale:
                print("generated protobuf code is stale: " + ", ".join(sorted(set(stale))), file=sys.stderr)
                print("run: python scripts/gen_protos.py", file=sys.stderr)
                return 1
            print("generated protobuf code is up to date")
            return 0
        for path in committed:
            path.unlink()
        for path in fresh:
            shutil.copyfile(path, PACKAGE_DIR / path.name)
        print(f"wrote {len(fresh)} files to {PACKAGE_DIR.relative_to(ROOT)}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
