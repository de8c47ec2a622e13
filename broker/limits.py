"""Rate limits per user and per organisation: token buckets, refilled continuously.

A lateral check is a disclosure; a user or system making far more of them than any caseload needs is a
sign of misuse (or a runaway script), and must not starve everyone else. Over the limit, the broker
answers RESOURCE_EXHAUSTED with a google.rpc.RetryInfo saying when to try again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import Field

from lateral.config import Frozen
from lateral.errors import OverloadedError


class LimitsSection(Frozen):
    # Checks a user may make per minute (bursts up to this many at once).
    per_user_per_minute: int = Field(default=60, ge=1, le=100_000)
    # Checks all users of one organisation may make per minute.
    per_organisation_per_minute: int = Field(default=1200, ge=1, le=1_000_000)


class _Buckets:
    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)

    def wait_for(self, key: str) -> float:
        """Seconds until key may go again (0: it may go now)."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate
        self._buckets[key] = (tokens, now)
        return 0.0

    def take(self, key: str) -> None:
        tokens, last = self._buckets[key]
        self._buckets[key] = (tokens - 1.0, last)
        if len(self._buckets) > 100_000:  # forget the idle: a full bucket needs no memory
            now = self._clock()
            self._buckets = {
                k: (t, at)
                for k, (t, at) in self._buckets.items()
                if t + (now - at) * self._rate < self._capacity
            }


class RateLimiter:
    """Admits a check when both the user's and the organisation's buckets allow it."""

    def __init__(self, limits: LimitsSection, clock: Callable[[], float] = time.monotonic) -> None:
        self._users = _Buckets(limits.per_user_per_minute, clock)
        self._organisations = _Buckets(limits.per_organisation_per_minute, clock)

    def admit(self, organisation: str, user: str) -> None:
        """Takes one check from both buckets.

        Raises:
            OverloadedError: a limit is reached; retry_after_seconds says when one frees up.
        """
        user_key = f"{organisation}/{user}"
        wait_user = self._users.wait_for(user_key)
        wait_org = self._organisations.wait_for(organisation)
        if wait_user or wait_org:
            who = "this user's" if wait_user >= wait_org else "this organisation's"
            raise OverloadedError(
                f"{who} rate limit is reached; try again in {max(wait_user, wait_org):.0f} s",
                retry_after_seconds=max(wait_user, wait_org),
            )
        self._users.take(user_key)
        self._organisations.take(organisation)
