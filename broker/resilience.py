"""What keeps one failing agency from costing the others: retries of calls that never reached it, and a
circuit breaker per agency that stops asking a dead one until a probe finds it back.

Retries are gRPC's own (a retryPolicy in the agency channels' service config): only UNAVAILABLE is retried,
the code of a call that did not reach the adapter or lost its connection. Every call the broker makes to
an adapter (Match, MatchHousehold, Describe, health) only reads, so a second attempt changes nothing. gRPC
waits between attempts with exponential backoff and full jitter, never past the call's deadline, and
throttles retries per channel when most calls fail (retryThrottling), so a dead agency is not hammered.

The circuit breaker opens after `failures` calls in a row fail (unavailable, timed out or broken). While
open, a check costs that agency nothing: its row says at once that it was not asked and why. The agency is
probed on its own (its health service, with growing, jittered intervals) and never through a caller's
check; once the probe says SERVING the next call goes through, and a single failure opens it again.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable

from pydantic import Field

from broker.admission import OverloadSection
from lateral.config import Frozen

log = logging.getLogger(__name__)


class RetrySection(Frozen):
    # Attempts per agency call in all, the first included (1: never retry).
    attempts: int = Field(default=3, ge=1, le=5)
    # The first retry waits up to this long (full jitter), doubling for each further one up to the maximum.
    initial_backoff_ms: int = Field(default=20, ge=1, le=10_000)
    max_backoff_ms: int = Field(default=200, ge=1, le=60_000)


class CircuitSection(Frozen):
    # Agency calls in a row that must fail (unavailable, timed out, broken) to open its circuit.
    failures: int = Field(default=5, ge=1, le=1000)
    # The first probe of an open circuit comes after this long; the wait doubles up to the maximum.
    probe_every_ms: int = Field(default=500, ge=10, le=600_000)
    max_probe_every_ms: int = Field(default=10_000, ge=10, le=3_600_000)
    # How long a probe may take.
    probe_timeout_ms: int = Field(default=1000, ge=10, le=60_000)


class ResilienceSection(Frozen):
    retry: RetrySection = RetrySection()
    circuit: CircuitSection = CircuitSection()
    overload: OverloadSection = OverloadSection()


def retry_options(retry: RetrySection) -> list[tuple[str, int | str]]:
    """Channel options for an agency: gRPC's own retries of UNAVAILABLE, and a prompt reconnection to an
    adapter that comes back (gRPC's default waits up to 120 s between reconnection attempts)."""
    if retry.attempts == 1:
        policy: dict[str, object] = {}
    else:
        policy = {
            "retryPolicy": {
                "maxAttempts": retry.attempts,
                "initialBackoff": f"{retry.initial_backoff_ms / 1000:.3f}s",
                "maxBackoff": f"{max(retry.max_backoff_ms, retry.initial_backoff_ms) / 1000:.3f}s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            }
        }
    config = {
        "methodConfig": [{"name": [{"service": "lateral.v1.AgencyAdapter"}], **policy}],
        # Retries stop while more than about one attempt in six fails (an agency failing that often is not
        # helped by more calls), and resume as calls succeed.
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.2},
    }
    return [
        ("grpc.enable_retries", 1 if retry.attempts > 1 else 0),
        ("grpc.service_config", json.dumps(config)),
        # (Not grpc.min_reconnect_backoff_ms: gRPC takes it as the connection timeout, 20 s by default.)
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class Circuit:
    """One agency's circuit breaker (not thread-safe: it lives on the broker's event loop)."""

    def __init__(
        self,
        agency: str,
        section: CircuitSection,
        probe: Callable[[float], Awaitable[bool]],
        on_change: Callable[[str, str], None] = lambda agency, state: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`probe(timeout)` says whether the agency serves again; `on_change` hears every transition."""
        self.agency = agency
        self._section = section
        self._probe = probe
        self._on_change = on_change
        self._clock = clock
        self.state = CircuitState.CLOSED
        self._failures = 0
        self.opened_at: float | None = None
        self._wait = section.probe_every_ms / 1000
        self._prober: asyncio.Task[None] | None = None

    @property
    def allows(self) -> bool:
        """Whether a call may go to the agency now."""
        return self.state is not CircuitState.OPEN

    def refusal(self) -> str:
        """What the row of an agency not asked because its circuit is open says."""
        since = self._clock() - (self.opened_at or self._clock())
        return f"not asked: its adapter kept failing and is probed until it serves (for {since:.0f} s)"

    def succeeded(self) -> None:
        self._failures = 0
        if self.state is CircuitState.HALF_OPEN:
            self._wait = self._section.probe_every_ms / 1000
            self._become(CircuitState.CLOSED)

    def failed(self) -> None:
        self._failures += 1
        if self.state is CircuitState.HALF_OPEN or (
            self.state is CircuitState.CLOSED and self._failures >= self._section.failures
        ):
            self._open()

    def _open(self) -> None:
        self.opened_at = self._clock()
        self._become(CircuitState.OPEN)
        if self._prober is None or self._prober.done():
            self._prober = asyncio.get_running_loop().create_task(self._probe_until_serving())

    def _become(self, state: CircuitState) -> None:
        self.state = state
        log.warning("agency %s: circuit %s", self.agency, state.value)
        self._on_change(self.agency, state.value)

    async def _probe_until_serving(self) -> None:
        """Probes until the agency serves. The wait grows with each failed probe and is kept when a call
        after a successful probe fails again (an adapter whose health says SERVING but whose answers fail
        is let through less and less often); it starts again from the shortest once a call succeeds."""
        s = self._section
        while self.state is CircuitState.OPEN:
            await asyncio.sleep(self._wait * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret
            self._wait = min(self._wait * 2, s.max_probe_every_ms / 1000)
            try:
                serving = await self._probe(s.probe_timeout_ms / 1000)
            except Exception as error:  # a probe that breaks is a failed probe, never a dead prober
                log.warning("agency %s: probe failed with %s", self.agency, type(error).__name__)
                serving = False
            if serving:
                self._failures = 0
                self._become(CircuitState.HALF_OPEN)

    async def close(self) -> None:
        """Stops probing (the broker is stopping or no longer asks this agency)."""
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
