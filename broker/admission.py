"""Load shedding: above capacity the broker refuses the excess at once (RESOURCE_EXHAUSTED with a
google.rpc.RetryInfo) instead of queueing until every check misses its deadline.

The limit is the number of checks in flight. Adaptive (the default), it follows the answers' latency the way
TCP follows loss (additive increase, multiplicative decrease): while checks are answered within the target
latency and the limit is reached, it grows by one per limit's worth of answers; an answer slower than the
target cuts it by a quarter, at most once per target interval. So the broker keeps about as many checks in
flight as the federation can answer within the target, on any hardware and any number of agencies, without
being told its capacity. A check slowed only by one agency timing out is not a sign of overload (that
agency's circuit breaker deals with it) and does not cut the limit.

A refusal costs less than any check: it comes before the caller's assertion is verified, before the audit
log and before any agency is asked, so nothing is recorded or disclosed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from pydantic import Field, model_validator

from lateral.config import Frozen
from lateral.errors import OverloadedError

_CUT = 0.75  # the limit kept when an answer is too slow


class OverloadSection(Frozen):
    # Checks in flight at most, whatever the adaptive limit says (and the limit when not adaptive).
    max_in_flight: int = Field(default=256, ge=1, le=100_000)
    # The adaptive limit never falls below this.
    min_in_flight: int = Field(default=4, ge=1, le=100_000)
    # Adapt the limit to the answers' latency (false: a fixed limit of max_in_flight).
    adaptive: bool = True
    # Answers slower than this mean too much is in flight.
    target_latency_ms: int = Field(default=500, ge=10, le=60_000)

    @model_validator(mode="after")
    def _ordered(self) -> OverloadSection:
        if self.adaptive and self.min_in_flight > self.max_in_flight:
            raise ValueError("min_in_flight must not exceed max_in_flight")
        return self


class Admission:
    """Admits a check while fewer than the limit are in flight (not thread-safe: one event loop)."""

    def __init__(self, section: OverloadSection, clock: Callable[[], float] = time.monotonic) -> None:
        self._section = section
        self._clock = clock
        self._target = section.target_latency_ms / 1000
        # Adaptive, it starts where a small federation is comfortable and finds the rest within seconds.
        start = max(section.min_in_flight, min(section.max_in_flight, 64))
        self.limit = float(start if section.adaptive else section.max_in_flight)
        self.in_flight = 0
        self._last_cut = float("-inf")

    def enter(self) -> None:
        """Takes a place for one check.

        Raises:
            OverloadedError: the limit is reached; the check must not go ahead.
        """
        if self.in_flight >= int(self.limit):
            raise OverloadedError(
                "the broker is at capacity and did not start this check; try again shortly",
                retry_after_seconds=self._target * random.uniform(1.0, 2.0),  # noqa: S311 - jitter, not a secret
            )
        self.in_flight += 1

    def leave(self, seconds: float, *, one_agency_slow: bool = False) -> None:
        """Gives the place back; `seconds` is how long the check took, `one_agency_slow` that some but not
        all of its agencies ran out of time (their own trouble, not the broker's load)."""
        at_limit = self.in_flight >= int(self.limit)
        self.in_flight -= 1
        s = self._section
        if not s.adaptive:
            return
        if seconds > self._target and not one_agency_slow:
            now = self._clock()
            if now - self._last_cut >= self._target:
                self.limit = max(float(s.min_in_flight), self.limit * _CUT)
                self._last_cut = now
        elif seconds <= self._target and at_limit:
            self.limit = min(float(s.max_in_flight), self.limit + 1.0 / self.limit)
