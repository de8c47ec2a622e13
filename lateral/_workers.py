"""The pure parts of `lateral broker serve --workers N` (lateral/workers.py): how a worker is started and
told it is one, how long to wait before starting it again, what its notifications say, how it ended."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from lateral import systemd
from lateral.config import ConfigError

# Set by the supervisor in each worker's environment: its number (1..N), for its log lines and messages,
# and that its gRPC and REST sockets share their ports with the other workers (SO_REUSEPORT).
WORKER_ENV = "LATERAL_WORKER"
REUSE_PORT_ENV = "LATERAL_REUSE_PORT"

FIRST_PAUSE_S = 1.0
MAX_PAUSE_S = 30.0

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def pause(failures: int) -> float:
    """Seconds to wait before starting a worker again after its `failures`-th exit in a row: 1, 2, 4, 8,
    16, then 30 s, so that a worker that cannot start costs little while the others serve."""
    doublings = min(max(failures - 1, 0), 10)
    return min(FIRST_PAUSE_S * (1 << doublings), MAX_PAUSE_S)


def split_listen(address: str, what: str) -> tuple[str, int]:
    """The host and port of a `host:port` (the host may be `[::]`).

    Raises:
        ConfigError: naming `what` (e.g. "[rest] listen") when it is not host:port.
    """
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{what} {address!r}: give host:port, e.g. 0.0.0.0:50051")
    return host, int(port)


def reserve_port(host: str) -> socket.socket:
    """A TCP socket bound to a free port of `host` with SO_REUSEPORT, and never listening.

    While it stays open, no other program can take the port (only sockets that also set SO_REUSEPORT, as
    the same user, may bind it), the workers can bind it, and it is handed no connection: the kernel spreads
    connections among listening sockets only.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def worker_command(
    config: Path, listen: str, *, insecure_dev: bool, log_level: str | None, log_format: str
) -> list[str]:
    """The command line of one worker: a single-process `lateral broker serve` on the shared address."""
    command = [sys.executable, "-m", "lateral"]
    if log_level is not None:
        command += ["--log-level", log_level]
    command += ["--log-format", log_format, "broker", "serve", "--config", str(config), "--listen", listen]
    if insecure_dev:
        command.append("--insecure-dev")
    return command


def worker_environment(base: Mapping[str, str], index: int, notify_socket: str) -> dict[str, str]:
    """The environment of worker `index`: the supervisor's, plus who it is, that it shares its ports, and
    where to send what it would tell systemd (a socket of the supervisor's, private to this worker).

    Each worker is its own OpenTelemetry service instance: N processes exporting metrics as one would
    overwrite each other's counters at the collector.
    """
    environment = dict(base)
    environment[WORKER_ENV] = str(index)
    environment[REUSE_PORT_ENV] = "1"
    environment[systemd.ENVIRONMENT] = notify_socket
    # Later keys win in OTEL_RESOURCE_ATTRIBUTES: ours override an operator's service.instance.id, which N
    # workers must not share.
    ours = f"service.instance.id={uuid.uuid4()},lateral.worker={index}"
    theirs = base.get("OTEL_RESOURCE_ATTRIBUTES", "")
    environment["OTEL_RESOURCE_ATTRIBUTES"] = f"{theirs},{ours}" if theirs else ours
    return environment


def worker_from_environment(environ: Mapping[str, str]) -> int | None:
    """This process's worker number when a supervisor started it, else None."""
    value = environ.get(WORKER_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def reuse_port_from_environment(environ: Mapping[str, str]) -> bool:
    """Whether this process shares its listening ports with others of its kind (SO_REUSEPORT)."""
    return environ.get(REUSE_PORT_ENV, "") == "1"


def parse_notification(datagram: bytes) -> dict[str, str]:
    """The `KEY=VALUE` lines of an sd_notify datagram (lateral/systemd.py); anything else is ignored."""
    fields: dict[str, str] = {}
    for line in datagram.decode("utf-8", "replace").splitlines():
        key, equals, value = line.partition("=")
        if equals and key:
            fields[key] = value
    return fields


def describe_exit(code: int) -> str:
    """How a process ended, from its Popen return code: "exit status 2" or "killed by SIGKILL"."""
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def die_with(supervisor: int) -> Callable[[], None] | None:
    """What a worker runs between fork and exec, on Linux: it is sent SIGTERM (a graceful stop) if the
    supervisor dies without stopping it (SIGKILL, a crash), rather than serving on as an orphan."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != supervisor:  # it died before the line above: nobody would stop this worker
            os._exit(1)

    return preexec
