"""Rate limits per user and per organisation (a fake clock: pure logic)."""

from __future__ import annotations

import pytest

from broker.limits import LimitsSection, RateLimiter
from lateral.errors import OverloadedError
from tests.unit.fake_clock import FakeClock


def test_a_user_over_the_limit_waits_for_a_token_and_others_are_not_held_up() -> None:
    clock = FakeClock()
    limiter = RateLimiter(LimitsSection(per_user_per_minute=3, per_organisation_per_minute=100), clock)
    for _ in range(3):
        limiter.admit("council", "ann")
    with pytest.raises(OverloadedError) as refused:
        limiter.admit("council", "ann")
    assert str(refused.value) == "this user's rate limit is reached; try again in 20 s"
    assert refused.value.retry_after_seconds == pytest.approx(20.0)
    limiter.admit("council", "bob")  # another user is not held up
    clock.now = 20.0
    limiter.admit("council", "ann")  # a token has come back


def test_an_organisation_limit_covers_all_its_users() -> None:
    clock = FakeClock()
    limiter = RateLimiter(LimitsSection(per_user_per_minute=10, per_organisation_per_minute=2), clock)
    limiter.admit("police", "a")
    limiter.admit("police", "b")
    with pytest.raises(OverloadedError) as refused:
        limiter.admit("police", "c")
    assert str(refused.value) == "this organisation's rate limit is reached; try again in 30 s"
    limiter.admit("council", "c")
