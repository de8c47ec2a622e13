"""`lateral broker serve --workers N`: N broker processes serving one port, and the supervisor that runs them.

The supervisor (the process systemd started) starts N single-process `lateral broker serve` commands, the
workers, all listening on the same host:port with SO_REUSEPORT: the kernel spreads new connections among
them, and a connection stays with the worker that accepted it. The supervisor serves nothing and creates no
gRPC object (the workers are fresh interpreters, fork then exec, and it stays a small single-threaded
loop). It speaks for the workers:

- to systemd: each worker sends what it would tell systemd to a socket of the supervisor's, private to it;
  the supervisor says READY=1 once all of them serve, RELOADING=1 then READY=1 around a reload of them all,
  STOPPING=1 when it stops them;
- to the operator: "broker listening on HOST:PORT (N workers)" on stderr, as a single broker says it;
- for signals: SIGTERM or SIGINT stops every worker gracefully, then the supervisor exits 0; SIGHUP is
  passed on to every worker.

A worker that ends while the broker serves is started again after a pause (1 s, doubling to 30 s while it
keeps ending soon after starting), the others serving meanwhile. A worker that ends before the broker first
served (a bad configuration, a port taken) stops the whole broker with its exit status: starting it again
would not mend it. The first worker starts alone and the others once it serves, so that a configuration
that cannot start fails once, with one message (opening the audit log together would be safe: see
audit.store.exclusive).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from lateral import systemd
from lateral._workers import (
    describe_exit,
    die_with,
    parse_notification,
    pause,
    reserve_port,
    reuse_port_from_environment,
    split_listen,
    worker_command,
    worker_environment,
    worker_from_environment,
)
from lateral.config import ConfigError

if TYPE_CHECKING:
    from broker.config import BrokerConfig

__all__ = ["Plan", "reuse_port_from_environment", "supervise", "worker_from_environment"]

log = logging.getLogger(__name__)

# A worker that served this long before it ended is started again after the first pause, not a longer one.
STEADY_S = 60.0
# How long a reload may take before the supervisor tells systemd READY=1 without the slow workers.
RELOAD_TIMEOUT_S = 60.0
# On SIGTERM, beyond the grace period: the workers' last audit checkpoints and telemetry flushes.
STOP_MARGIN_S = 15.0

_CLEAN_STOP = {0, -signal.SIGTERM, -signal.SIGINT}  # a worker still starting dies of the signal itself
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Plan:
    """What the supervisor runs: `workers` brokers of one configuration file on one address."""

    config_path: Path
    host: str
    port: int  # 0: a free port, reserved by the supervisor for its whole life
    workers: int
    grace: float  # [broker] shutdown_grace_s
    insecure_dev: bool
    log_level: str | None
    log_format: str

    @classmethod
    def of(
        cls,
        config: BrokerConfig,
        config_path: Path,
        address: str,
        *,
        workers: int,
        insecure_dev: bool,
        log_level: str | None,
        log_format: str,
    ) -> Plan:
        """Checks that `workers` brokers of this configuration can share `address`.

        Raises:
            ConfigError: not on Linux, an address that is not host:port, or a REST API on port 0 (each
                worker would pick its own port).
        """
        if not sys.platform.startswith("linux"):
            raise ConfigError(
                "--workers needs Linux: elsewhere SO_REUSEPORT does not spread connections among processes"
            )
        host, port = split_listen(address, "listen address")
        if config.rest is not None and split_listen(config.rest.listen, "[rest] listen")[1] == 0:
            raise ConfigError(
                f"{config_path}: [rest] listen {config.rest.listen!r} picks a free port, a different one in "
                "each worker: give [rest] listen a fixed port to run several workers"
            )
        return cls(
            config_path,
            host,
            port,
            workers,
            config.broker.shutdown_grace_s,
            insecure_dev,
            log_level,
            log_format,
        )


def supervise(plan: Plan) -> int:
    """Runs the workers until SIGTERM or SIGINT (from the main thread: it handles signals).

    Returns:
        The supervisor's exit status: 0 when every worker stopped cleanly; a worker's own exit status when
        it could not start (1 if it was killed); 1 when a worker had to be killed at stop.

    Raises:
        OSError: no free port could be reserved on the host, or the supervisor's sockets not be made.
    """
    try:
        reserved = reserve_port(plan.host) if plan.port == 0 else None
    except OSError as error:
        raise OSError(
            f"the broker cannot reserve a free port on {plan.host}: {error.strerror or type(error).__name__}"
        ) from None
    port = int(reserved.getsockname()[1]) if reserved is not None else plan.port
    folder = Path(tempfile.mkdtemp(prefix="lateral-broker-"))  # 0700: only this user may notify
    try:
        with _Signals() as signals:
            return _Supervisor(plan, port, folder, signals).run()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if reserved is not None:
            reserved.close()


def _noted(signum: int, frame: FrameType | None) -> None:
    """A handler that does nothing: the signal's number reaches the loop through the wake-up socket."""


class _Signals:
    """The signals the supervisor acts on, read as bytes from a socket (signal.set_wakeup_fd) by its one
    loop, between two events rather than in the middle of one."""

    def __enter__(self) -> _Signals:
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._previous: dict[signal.Signals, Any] = {sig: signal.signal(sig, _noted) for sig in _SIGNALS}
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._previous_fd)
        self.reader.close()
        self._writer.close()

    def read(self) -> list[int]:
        numbers: list[int] = []
        with contextlib.suppress(BlockingIOError):
            while data := self.reader.recv(256):
                numbers += data
        return numbers


class _Phase(enum.Enum):
    STARTING = "starting"  # not every worker has served yet: one ending is fatal
    SERVING = "serving"
    STOPPING = "stopping"


class _Worker:
    """One worker's slot: the process in it now (if any), and what the supervisor knows of it."""

    def __init__(self, index: int, folder: Path) -> None:
        self.index = index
        self.address = str(folder / f"worker-{index}.sock")
        self.inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.inbox.bind(self.address)
        self.inbox.setblocking(False)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready = False  # said READY=1 since it started: it serves
        self.failures = 0  # exits in a row, each soon after starting
        self.start_at: float | None = None  # when to start it again
        # A reload: SIGHUP to send once it serves; when it was sent (CLOCK_MONOTONIC, µs); whether the
        # worker has said RELOADING=1 since; what it said when done.
        self.hup_pending = False
        self.hup_sent_us: int | None = None
        self.reloading = False
        self.said = ""

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def notifications(self) -> list[dict[str, str]]:
        """What the worker has sent since last asked."""
        found = []
        with contextlib.suppress(BlockingIOError):
            while True:
                found.append(parse_notification(self.inbox.recv(4096)))
        return found


class _Supervisor:
    def __init__(self, plan: Plan, port: int, folder: Path, signals: _Signals) -> None:
        self.plan = plan
        self.port = port
        self.signals = signals
        self.workers = [_Worker(i, folder) for i in range(1, plan.workers + 1)]
        self.phase = _Phase.STARTING
        self.others_started = False
        self.reload_deadline: float | None = None
        self.stop_deadline = 0.0
        self.killed = False
        self.failed: int | None = None  # a worker could not start: its exit status
        self.unclean = False
        self.preexec = die_with(os.getpid())

    @property
    def listen(self) -> str:
        return f"{self.plan.host}:{self.port}"

    def run(self) -> int:
        selector = selectors.DefaultSelector()
        selector.register(self.signals.reader, selectors.EVENT_READ, None)
        for worker in self.workers:
            selector.register(worker.inbox, selectors.EVENT_READ, worker)
        try:
            self._start(self.workers[0])
            while not (self.phase is _Phase.STOPPING and all(w.proc is None for w in self.workers)):
                for key, _ in selector.select(self._timeout()):
                    if key.data is None:
                        for number in self.signals.read():
                            self._on_signal(number)
                    else:
                        for fields in key.data.notifications():
                            self._on_notification(key.data, fields)
                self._reap()
                self._tick()
        finally:
            selector.close()
            self._kill_what_is_left()
            for worker in self.workers:
                worker.inbox.close()
        if self.failed is not None:
            return self.failed
        _say("broker stopped")
        return 1 if self.unclean else 0

    # --- events -----------------------------------------------------------------------------------------

    def _on_signal(self, number: int) -> None:
        if number in (signal.SIGTERM, signal.SIGINT):
            self._stop()
        elif number == signal.SIGHUP:
            self._reload()

    def _on_notification(self, worker: _Worker, fields: dict[str, str]) -> None:
        if worker.proc is None:
            return
        if fields.get("RELOADING") == "1" and worker.hup_sent_us is not None:
            try:
                at = int(fields.get("MONOTONIC_USEC", ""))
            except ValueError:
                at = worker.hup_sent_us
            # Not a reload begun before this SIGHUP was sent, whose READY=1 would end the wait too soon.
            worker.reloading = worker.reloading or at >= worker.hup_sent_us
        if fields.get("READY") != "1":
            return
        if worker.reloading:
            worker.reloading, worker.hup_sent_us, worker.said = False, None, fields.get("STATUS", "")
        if not worker.ready:
            worker.ready = True
            if self.phase is _Phase.SERVING:
                log.info("broker worker %d (pid %d) serves again", worker.index, worker.proc.pid)
                systemd.status(self._serving())
        if worker.hup_pending:
            self._hangup(worker)

    def _reap(self) -> None:
        for worker in self.workers:
            if worker.proc is None or (code := worker.proc.poll()) is None:
                continue
            worker.notifications()  # what it said before it ended no longer holds
            self._ended(worker, code, worker.proc.pid)

    def _ended(self, worker: _Worker, code: int, pid: int | None) -> None:
        worker.proc, worker.ready = None, False
        worker.hup_pending, worker.hup_sent_us, worker.reloading = False, None, False
        how = describe_exit(code)
        if self.phase is _Phase.STOPPING:
            if code not in _CLEAN_STOP:
                self.unclean = True
                log.error("broker worker %d (pid %s) did not stop cleanly: %s", worker.index, pid, how)
            return
        if self.phase is _Phase.STARTING:
            _say(f"broker worker {worker.index} could not start ({how}): stopping")
            self.failed = code if code > 0 else 1
            self._stop()
            return
        now = time.monotonic()
        worker.failures = 1 if now - worker.started_at >= STEADY_S else worker.failures + 1
        delay = pause(worker.failures)
        worker.start_at = now + delay
        log.warning(
            "broker worker %d (pid %s) ended (%s): starting it again in %g s", worker.index, pid, how, delay
        )
        serving = sum(w.ready for w in self.workers)
        systemd.status(f"serving on port {self.port}: {serving} of {len(self.workers)} workers")

    def _tick(self) -> None:
        """What is due: the other workers once the first serves, READY=1 once all serve, restarts, the end
        of a reload, killing what has not stopped in time."""
        now = time.monotonic()
        if self.phase is _Phase.STARTING:
            if self.workers[0].ready and not self.others_started:
                self.others_started = True
                for worker in self.workers[1:]:
                    self._start(worker)
            if self.phase is _Phase.STARTING and all(w.ready for w in self.workers):
                self.phase = _Phase.SERVING
                _say(f"broker listening on {self.listen} ({len(self.workers)} workers)")
                systemd.ready(self._serving())
        elif self.phase is _Phase.SERVING:
            for worker in self.workers:
                if worker.start_at is not None and worker.start_at <= now:
                    self._start(worker)
            if self.reload_deadline is not None:
                self._reload_progress(now, self.reload_deadline)
        elif self.phase is _Phase.STOPPING and not self.killed and now >= self.stop_deadline:
            self.killed = True
            for worker in self.workers:
                if worker.proc is not None:
                    log.error(
                        "broker worker %d (pid %d) did not stop in time: killed",
                        worker.index,
                        worker.proc.pid,
                    )
                    worker.proc.kill()

    def _timeout(self) -> float:
        now = time.monotonic()
        due = [now + 1.0, *(w.start_at for w in self.workers if w.start_at is not None)]
        if self.reload_deadline is not None:
            due.append(self.reload_deadline)
        if self.phase is _Phase.STOPPING and not self.killed:
            due.append(self.stop_deadline)
        return max(0.0, min(due) - now)

    # --- actions ----------------------------------------------------------------------------------------

    def _start(self, worker: _Worker) -> None:
        worker.start_at = None
        worker.notifications()  # anything left from the process that was in this slot
        command = worker_command(
            self.plan.config_path,
            self.listen,
            insecure_dev=self.plan.insecure_dev,
            log_level=self.plan.log_level,
            log_format=self.plan.log_format,
        )
        try:
            worker.proc = subprocess.Popen(  # noqa: S603 - our own command line
                command,
                stdin=subprocess.DEVNULL,
                env=worker_environment(os.environ, worker.index, worker.address),
                # Safe between fork and exec here: the supervisor runs no other thread.
                preexec_fn=self.preexec,
            )
        except OSError as error:
            log.error("broker worker %d could not be run: %s", worker.index, error.strerror or "OSError")
            self._ended(worker, 1, None)
            return
        worker.started_at, worker.ready = time.monotonic(), False
        log.info("broker worker %d started (pid %d)", worker.index, worker.proc.pid)

    def _stop(self) -> None:
        if self.phase is _Phase.STOPPING:
            return
        serving = self.phase is _Phase.SERVING
        self.phase = _Phase.STOPPING
        self.stop_deadline = time.monotonic() + self.plan.grace + STOP_MARGIN_S
        self.reload_deadline = None
        systemd.stopping()
        if serving:
            n, grace = len(self.workers), self.plan.grace
            _say(f"broker stopping ({n} workers, up to {grace:g} s for work in flight)")
        for worker in self.workers:
            worker.start_at = None
            worker.signal(signal.SIGTERM)

    def _reload(self) -> None:
        if self.phase is _Phase.STOPPING:
            return
        if self.phase is _Phase.SERVING:
            systemd.reloading()
            self.reload_deadline = time.monotonic() + RELOAD_TIMEOUT_S
        for worker in self.workers:
            if worker.proc is None:
                continue  # one waiting to start again will read the files as they are then
            worker.said = ""
            if worker.ready:
                self._hangup(worker)
            else:
                worker.hup_pending = True  # it may have read the files already: SIGHUP once it serves

    def _hangup(self, worker: _Worker) -> None:
        worker.hup_pending, worker.reloading = False, False
        worker.hup_sent_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        worker.signal(signal.SIGHUP)

    def _reload_progress(self, now: float, deadline: float) -> None:
        waiting = [w for w in self.workers if w.hup_pending or w.hup_sent_us is not None]
        said = "; ".join(sorted({w.said for w in self.workers if w.said}))
        if not waiting:
            _say(f"broker reload finished in {len(self.workers)} workers: {said or 'done'}")
            systemd.ready(f"{self._serving()}; {said}" if said else self._serving())
        elif now >= deadline:
            late = ", ".join(str(w.index) for w in waiting)
            log.warning("broker reload: worker(s) %s did not finish within %g s", late, RELOAD_TIMEOUT_S)
            systemd.ready(f"{self._serving()}; worker(s) {late} did not finish reloading in time")
        else:
            return
        self.reload_deadline = None

    def _kill_what_is_left(self) -> None:
        """Only after an error in the loop itself: no worker may outlive its supervisor."""
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait()

    def _serving(self) -> str:
        return f"serving on port {self.port} with {len(self.workers)} workers"
