"""The soak's arithmetic (bench/_soak.py) and its open loop (bench/load.py), without sockets: which failures
a restart explains, when a series counts as grown, and that the loop keeps its schedule and its bound on
outstanding calls whatever the answers do."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import grpc
import pytest

from bench._soak import Answer, Interval, Restart, Row, Sample, Timeline, slope, trends
from bench.load import Call, Footprint, open_loop
from protos.lateral.v1 import broker_pb2, common_pb2

ANSWERED = ("KNOWN", "OK", "PERMITTED")
DOWN = ("UNAVAILABLE", "UNAVAILABLE", "")


def _answer(
    sent: float, police: tuple[str, str, str] = ANSWERED, fire: tuple[str, str, str] = ANSWERED
) -> Answer:
    return Answer(sent, 10.0, "OK", f"c{sent}", (Row("police", *police), Row("fire", *fire)))


def _timeline() -> Timeline:
    return Timeline(
        deadline=2.0, settle=10.0, restarts=[Restart("police", "SIGKILL", stopped=100.0, ready=102.0)]
    )


def test_a_restart_explains_only_its_own_agency_and_only_inside_its_window() -> None:
    timeline = _timeline()
    assert not timeline.unexpected(_answer(98.0, police=DOWN))  # in flight when it was stopped
    assert not timeline.unexpected(_answer(111.9, police=DOWN))  # still reconnecting
    assert timeline.unexpected(_answer(97.9, police=DOWN))
    assert timeline.unexpected(_answer(112.1, police=DOWN))
    assert timeline.unexpected(_answer(101.0, fire=DOWN))  # fire was not restarting
    failed = Answer(101.0, 2000.0, "DEADLINE_EXCEEDED", "", ())
    assert timeline.unexpected(failed)  # a restart never fails the call: partial failure is data
    assert not timeline.unexpected(_answer(50.0))


def test_recovery_is_the_first_check_sent_after_listening_that_the_agency_answered() -> None:
    timeline = _timeline()
    answers = [_answer(101.0, police=DOWN), _answer(102.5, police=DOWN), _answer(103.5), _answer(103.0)]
    timeline.recover(answers)
    assert timeline.restarts[0].recovered == 103.0


def test_rows_are_counted_per_agency_with_those_not_asked_while_a_circuit_was_open() -> None:
    open_circuit = ("UNAVAILABLE", "UNAVAILABLE", "CIRCUIT_OPEN")
    interval = Interval.of([_answer(1.0), _answer(2.0, police=DOWN), _answer(3.0, police=open_circuit)])
    assert interval.by_agency == Counter(
        {
            ("police", "answered"): 1,
            ("police", "UNAVAILABLE"): 2,
            ("police", "CIRCUIT_OPEN"): 1,
            ("fire", "answered"): 3,
        }
    )
    assert (interval.rows, interval.bad_rows) == (Counter({"answered": 4, "UNAVAILABLE": 2}), 2)
    assert (interval.sent, interval.answered, interval.p50) == (3, 3, 10.0)


def _samples(rss: list[float], fds: int = 24) -> list[Sample]:
    return [
        Sample(10.0 * (n + 1), Footprint(mb, fds, 10), Footprint(400.0, 60, 40)) for n, mb in enumerate(rss)
    ]


def test_trends_say_flat_within_the_noise_and_grew_beyond_it() -> None:
    answers = [_answer(float(t)) for t in range(100)]
    flat, rss_slope = trends(_samples([110.0] * 5 + [111.0] * 5), answers, _timeline(), 100.0)
    assert [(t.name, t.grew) for t in flat] == [
        ("broker RSS", False),
        ("broker open fds", False),
        ("broker threads", False),
        ("latency p50", False),
        ("latency p99", False),
        ("error rate outside restarts", False),
    ]
    assert rss_slope == pytest.approx(
        slope([(s.at / 60, s.broker.rss_mb) for s in _samples([110.0] * 5 + [111.0] * 5)][1:])
    )
    grown, _ = trends(_samples([110.0 + 2 * n for n in range(10)]), answers, _timeline(), 100.0)
    assert grown[0].grew
    assert (grown[0].first, grown[0].last) == (111.0, 126.0)
    failing = answers[:80] + [_answer(float(t), fire=DOWN) for t in range(80, 100)]
    errors, _ = trends(_samples([110.0] * 10), failing, _timeline(), 100.0)
    assert (errors[-1].first, errors[-1].last, errors[-1].grew) == (0.0, 100.0, True)


def test_a_run_too_short_for_a_sample_per_fifth_compares_its_first_and_last_samples() -> None:
    short, _ = trends(_samples([110.0, 111.0, 112.0]), [_answer(1.0)], _timeline(), 45.0)
    assert (short[0].first, short[0].last, short[0].grew) == (110.0, 112.0, False)


def test_slope_is_the_least_squares_fit() -> None:
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
    assert slope([(1.0, 4.0)]) == 0.0


class _Stub:
    """Answers every check only once released, the tenth with UNAVAILABLE."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.asked = 0

    async def Check(self, request: broker_pb2.CheckRequest, timeout: float) -> broker_pb2.CheckResponse:
        self.asked += 1
        n = self.asked
        await self.release.wait()
        if n == 10:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())
        row = common_pb2.AgencyResult(agency_id="police", status=common_pb2.AgencyStatus(code="OK"))
        return broker_pb2.CheckResponse(check_id=f"c{n}", results=[row])


async def test_the_open_loop_keeps_sending_while_answers_wait_up_to_its_bound() -> None:
    stub, calls = _Stub(), list[Call]()
    stubs: Any = [stub]
    asyncio.get_running_loop().call_later(0.3, stub.release.set)
    skipped = await open_loop(
        stubs,
        [broker_pb2.CheckRequest()],
        rate=200,
        seconds=0.2,
        timeout=2,
        done=calls.append,
        outstanding=15,
    )
    assert (stub.asked, skipped, len(calls)) == (15, 25, 15)  # 40 due in 0.2 s, none answered before 0.3 s
    codes = sorted(c.code.name for c in calls)
    assert codes == ["OK"] * 14 + ["UNAVAILABLE"]
    assert all(c.ms >= 0 for c in calls)
    assert {c.response.check_id for c in calls if c.response is not None} == {
        f"c{n}" for n in range(1, 16)
    } - {"c10"}
