"""The example systemd units in deploy/systemd/: notify, reload on SIGHUP, stop in time, run hardened.

Parsed with a small reader that keeps repeated keys (systemd's SystemCallFilter= appears twice); when
`systemd-analyze` is installed, each unit is also verified by systemd itself and its exposure scored.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
UNITS = [
    "lateral-broker.service",
    "lateral-adapter@.service",
    "lateral-web.service",
    "lateral-linkage.service",
]
# The broker and the adapters tell systemd when they serve (lateral/systemd.py). The web page does not
# (yet): under Type=notify systemd would kill it at TimeoutStartSec, so it is Type=exec.
NOTIFYING = {"lateral-broker.service", "lateral-adapter@.service", "lateral-linkage.service"}
COMMANDS = {
    "lateral-broker.service": "/opt/lateral/.venv/bin/lateral broker serve --config /etc/lateral/broker.toml",
    "lateral-adapter@.service": (
        "/opt/lateral/.venv/bin/lateral adapter serve --config /etc/lateral/adapter-%i.toml"
    ),
    "lateral-web.service": "/opt/lateral/.venv/bin/lateral web serve --config /etc/lateral/web.toml",
    "lateral-linkage.service": (
        "/opt/lateral/.venv/bin/lateral linkage serve --config /etc/lateral/linkage.toml"
    ),
}
DEFAULT_GRACE_S = 10.0
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    # Without it a refused call kills the service: NumPy's OpenBLAS calls mbind() (in @resources).
    "SystemCallErrorNumber": "EPERM",
    "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "UMask": "0077",
    "User": "lateral",
    "Group": "lateral",
    "StateDirectory": "lateral",
    "ConfigurationDirectory": "lateral",
}

Unit = dict[str, dict[str, list[str]]]


def parse(text: str) -> Unit:
    """Sections to keys to every value assigned, in order (systemd's syntax: no interpolation)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert equals, f"line {number} is neither a section nor key=value: {raw!r}"
        assert section is not None, f"line {number} comes before any section"
        assert not value.endswith("\\"), f"line {number}: continuation lines are not used here"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def seconds(span: str) -> float:
    """A systemd time span ("30s", "10min", "1min 30s", "90") in seconds."""
    scale = {"": 1, "s": 1, "sec": 1, "ms": 1e-3, "us": 1e-6, "m": 60, "min": 60, "h": 3600, "hr": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span)
    assert parts, f"not a time span: {span}"
    assert "".join(n + u for n, u in parts) == span.replace(" ", ""), f"not a time span: {span}"
    return sum(float(n) * scale[u] for n, u in parts)


def load(name: str) -> Unit:
    return parse((DEPLOY / name).read_text())


def one(unit: Unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}= should be set once, is {values}"
    return values[0]


def test_the_reader_keeps_repeated_keys_and_empty_values() -> None:
    text = "[Service]\n# comment\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged\nX=\n"
    unit = parse(text)
    assert unit == {"Service": {"SystemCallFilter": ["@system-service", "~@privileged"], "X": [""]}}
    assert seconds("1min 30s") == 90
    assert seconds("30s") == seconds("30") == 30


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_starts_the_right_command_and_stops_in_time(name: str) -> None:
    unit = load(name)
    assert one(unit, "Service", "ExecStart") == COMMANDS[name]
    assert one(unit, "Service", "KillSignal") == "SIGTERM"
    assert seconds(one(unit, "Service", "TimeoutStopSec")) > DEFAULT_GRACE_S + 10
    assert one(unit, "Service", "Restart") == "on-failure"
    assert int(one(unit, "Unit", "StartLimitBurst")) > 0
    assert seconds(one(unit, "Unit", "StartLimitIntervalSec")) > 0
    assert "LATERAL_LOG_FORMAT=json" in unit["Service"]["Environment"]
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("name", sorted(NOTIFYING))
def test_broker_and_adapters_notify_and_reload_on_sighup(name: str) -> None:
    unit = load(name)
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"


def test_the_adapter_has_time_to_build_its_index_before_ready() -> None:
    # About 20 s per million records; several million over a slow link must still fit.
    assert seconds(one(load("lateral-adapter@.service"), "Service", "TimeoutStartSec")) >= 300


def test_the_web_page_is_not_sent_sighup_it_cannot_handle() -> None:
    unit = load("lateral-web.service")
    assert one(unit, "Service", "Type") == "exec"
    assert "ExecReload" not in unit["Service"]


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_runs_hardened_as_the_lateral_user(name: str) -> None:
    service = load(name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], f"{name}: {key}={service.get(key)}, expected {value!r}"
    assert service["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]


def test_every_unit_carries_the_same_hardening_block() -> None:
    blocks = {}
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        start = text.index("# Hardening")
        blocks[name] = text[start : text.index("[Install]", start)]
    assert len(set(blocks.values())) == 1, "the hardening sections differ between units"


def test_the_lateral_user_and_its_configuration_directory() -> None:
    users = [line.split() for line in (DEPLOY / "lateral.sysusers.conf").read_text().splitlines()]
    assert any(fields[:2] == ["u", "lateral"] for fields in users if fields and fields[0] != "#")
    entries = [line.split() for line in (DEPLOY / "lateral.tmpfiles.conf").read_text().splitlines()]
    assert ["d", "/etc/lateral", "0750", "root", "lateral", "-", "-"] in entries


ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")


def runnable_copy(name: str, folder: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists here (verify insists on one); a
    template gets an instance name, as systemd would start it."""
    text = (DEPLOY / name).read_text().replace("/opt/lateral/.venv/bin/lateral", sys.executable)
    copy = folder / name.replace("@.", "@police.")
    copy.write_text(text)
    return copy


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify_finds_nothing_wrong_with_the_unit(name: str, tmp_path: Path) -> None:
    assert ANALYZE is not None
    copy = runnable_copy(name, tmp_path)
    result = subprocess.run(
        [ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    # Only what concerns this file: in a container without systemd as PID 1, verify may talk about others.
    about = [line for line in (result.stdout + result.stderr).splitlines() if copy.name in line]
    assert about == [], "\n".join(about)


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_systemd_rates_the_exposure_ok(name: str, tmp_path: Path) -> None:
    assert ANALYZE is not None
    usage = subprocess.run([ANALYZE, "security", "--help"], capture_output=True, text=True, check=False)
    if "--offline" not in usage.stdout:
        pytest.skip("this systemd-analyze cannot assess unit files offline (systemd < 250)")
    copy = runnable_copy(name, tmp_path)
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert score is not None, result.stdout + result.stderr
    assert float(score.group(1)) <= 2.0  # 1.2 when written; 10 is an unhardened service
