"""Traces and metrics of a real federation (mutual TLS, audit logs), captured in memory or received over
OTLP by a real gRPC endpoint; and the scan that proves no personal data leaves in telemetry or logs."""

from __future__ import annotations

import io
import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum
from opentelemetry.trace import SpanKind

from lateral.client import build_request
from lateral.demo import Federation, Prepared, start_federation
from lateral.demo.agreement import DEMO_CALLER
from lateral.logs import JsonFormatter
from lateral.otlp_sink import OtlpSink
from lateral.telemetry import Telemetry, TelemetrySection
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2
from tests.telemetry_capture import Captured

AGENCIES = {"police", "fire", "nhs", "socialcare"}


@pytest.fixture
async def traced(prepared: Prepared) -> AsyncIterator[tuple[Federation, Captured]]:
    captured = Captured()
    fed = await start_federation(prepared, telemetry=captured)
    yield fed, captured
    await fed.stop()


async def _check(fed: Federation, request: broker_pb2.CheckRequest) -> broker_pb2.CheckResponse:
    async with fed.channel(DEMO_CALLER) as channel:
        return await broker_pb2_grpc.LateralCheckStub(channel).Check(request, timeout=5)


async def test_one_check_is_one_trace_a_span_per_agency_with_the_adapters_work_inside(
    traced: tuple[Federation, Captured], prepared: Prepared
) -> None:
    fed, captured = traced
    response = await _check(fed, prepared.examples.three_agencies.request())
    spans = captured.spans()
    [check] = [s for s in spans if s.name == "lateral.check"]
    assert check.kind == SpanKind.SERVER
    assert check.resource.attributes["service.name"] == "lateral-broker"
    assert check.attributes is not None
    assert check.attributes["lateral.check_id"] == response.check_id
    assert check.attributes["lateral.purpose"] == "child-safeguarding"
    assert check.attributes["rpc.grpc.status_code"] == "OK"
    assert check.attributes["lateral.review_required"] is True
    trace_id = check.context.trace_id
    assert {s.context.trace_id for s in spans} == {trace_id}, "every span belongs to the check's trace"

    def children(parent_id: int) -> list[str]:
        return sorted(s.name for s in spans if s.parent is not None and s.parent.span_id == parent_id)

    assert Counter(children(check.context.span_id)) == {
        "lateral.validate": 1,
        "lateral.policy": 1,
        "lateral.audit.write": 2,  # received, completed
        "lateral.agency.call": 4,
    }
    outcomes = {r.agency_id: common_pb2.Outcome.Name(r.finding.outcome)[8:] for r in response.results}
    calls = {
        str(s.attributes["lateral.agency"]): s
        for s in spans
        if s.name == "lateral.agency.call" and s.attributes
    }
    assert set(calls) == AGENCIES
    for agency, call in calls.items():
        assert call.kind == SpanKind.CLIENT
        assert call.attributes is not None
        assert call.attributes["lateral.outcome"] == outcomes[agency]
        [served] = [s for s in spans if s.parent is not None and s.parent.span_id == call.context.span_id]
        assert served.name == "lateral.adapter.match"
        assert served.kind == SpanKind.SERVER
        assert served.resource.attributes["service.name"] == f"lateral-adapter-{agency}"
        assert served.attributes is not None
        assert served.attributes["lateral.check_id"] == response.check_id
        assert children(served.context.span_id) == [
            "lateral.audit.write",
            "lateral.index.lookup",
            "lateral.policy",
            "lateral.score",
        ]
        [lookup] = [s for s in spans if s.name == "lateral.index.lookup" and s.parent == served.context]
        assert lookup.attributes is not None
        found = int(str(lookup.attributes["lateral.candidates"]))
        assert found >= 1 or outcomes[agency] != "KNOWN"


def _points(metric: object) -> list[tuple[dict[str, object], float]]:
    """(attributes, value) per data point: a histogram's count, a sum's or gauge's value."""
    data = getattr(metric, "data")  # noqa: B009 - Metric.data is typed as a union
    assert isinstance(data, Histogram | Sum | Gauge)
    return [
        (dict(p.attributes or {}), float(p.count if isinstance(data, Histogram) else p.value))  # type: ignore[union-attr]
        for p in data.data_points
    ]


async def test_metrics_count_checks_answers_and_errors_and_report_index_and_audit(
    traced: tuple[Federation, Captured], prepared: Prepared
) -> None:
    fed, captured = traced
    answered = [await _check(fed, prepared.examples.three_agencies.request()) for _ in range(3)]
    bad = prepared.examples.three_agencies.request()
    bad.subject.date_of_birth = "2010-02-30"
    with pytest.raises(Exception, match="INVALID_ARGUMENT"):
        await _check(fed, bad)

    checks = {
        p["rpc.grpc.status_code"]: n
        for p, n in _points(captured.metric("lateral-broker", "lateral.check.duration"))
        if p["lateral.kind"] == "person" and p["lateral.purpose"] == "child-safeguarding"
    }
    assert checks == {"OK": 3, "INVALID_ARGUMENT": 1}
    outcomes = Counter(
        (r.agency_id, common_pb2.Outcome.Name(r.finding.outcome)[8:]) for a in answered for r in a.results
    )
    counted = {
        (str(p["lateral.agency"]), str(p["lateral.outcome"])): n
        for p, n in _points(captured.metric("lateral-broker", "lateral.agency.outcomes"))
    }
    assert counted == outcomes
    errors = _points(captured.metric("lateral-broker", "lateral.rpc.errors"))
    assert errors == [({"rpc.method": "Check", "rpc.grpc.status_code": "INVALID_ARGUMENT"}, 1.0)]

    for agency in AGENCIES:
        service = f"lateral-adapter-{agency}"
        matches = _points(captured.metric(service, "lateral.match.duration"))
        assert sum(n for _, n in matches) == 3
        sizes = {
            p["lateral.index.part"]: n for p, n in _points(captured.metric(service, "lateral.index.size"))
        }
        index = fed.adapters[agency][0].servicer.index
        assert sizes == {
            "records": index.record_count,
            "people": index.person_count,
            "activities": index.activity_count,
        }
        [(_, age)] = _points(captured.metric(service, "lateral.index.age"))
        assert 0 <= age < 600
        assert _points(captured.metric(service, "lateral.source.up")) == [({"lateral.agency": agency}, 1.0)]
        [(_, events)] = _points(captured.metric(service, "lateral.audit.size"))
        assert events >= 4  # its agreement and key, and three disclosures
    [(_, broker_events)] = _points(captured.metric("lateral-broker", "lateral.audit.size"))
    assert broker_events >= 2 + 3 * 2 + 1  # agreement, key; received+completed x3; the invalid check


# Distinctive synthetic details, sent in every field a caller can fill, then searched for in every byte of
# telemetry and every log line.
ZEBEDEE = {
    "given_name": "Zebedee",
    "family_name": "Quuxworth-Smythe",
    "date_of_birth": "2011-02-28",
    "nhs_number": "9434765919",
    "postcode": "NT1 4QT",
    "address": "17 Larkspur Mews",
    "justification": "Referral from Larkspur Academy",
    "case_ref": "MASH-ZQ-7731",
}


def _leaks(text: str, values: list[str]) -> list[str]:
    """The values found in text, compared without case and also without spaces or dashes."""
    squeezed = re.sub(r"[\s-]", "", text).lower()
    return [v for v in values if v.lower() in text.lower() or re.sub(r"[\s-]", "", v).lower() in squeezed]


async def test_no_personal_data_in_any_exported_span_metric_or_log_line(prepared: Prepared) -> None:
    sink = OtlpSink()
    await sink.start()
    section = TelemetrySection(otlp_endpoint=sink.endpoint, insecure=True, sampling=1.0)
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    fed = await start_federation(prepared, telemetry=lambda service: Telemetry.from_section(section, service))
    try:
        z = ZEBEDEE
        requests = [
            build_request(
                given_names=[z["given_name"]],
                family_name=z["family_name"],
                date_of_birth=z["date_of_birth"],
                nhs_number=z["nhs_number"],
                postcode=z["postcode"],
                address=z["address"],
                purpose="child-safeguarding",
                justification=z["justification"],
                case_ref=z["case_ref"],
            ),
            prepared.examples.three_agencies.request(),
            prepared.examples.withheld.request(),
            prepared.examples.possible.request(),
        ]
        # And the same details where they do not belong: free text in the purpose, a bad date.
        misplaced = build_request(
            given_names=[z["given_name"]],
            family_name=z["family_name"],
            date_of_birth=z["date_of_birth"],
            purpose=f"{z['family_name']} {z['nhs_number']}",
            justification=z["justification"],
            case_ref=z["case_ref"],
        )
        for request in requests:
            await _check(fed, request)
        with pytest.raises(Exception, match="INVALID_ARGUMENT"):
            await _check(fed, misplaced)
        household = broker_pb2.HouseholdRequest(
            address=common_pb2.Address(lines=[z["address"]], postcode=z["postcode"]),
            purpose="household-safeguarding",
            justification=z["justification"],
            case_ref=z["case_ref"],
        )
        async with fed.channel(DEMO_CALLER) as channel:
            await broker_pb2_grpc.LateralCheckStub(channel).CheckHousehold(household, timeout=5)
    finally:
        await fed.stop()  # flushes every service's telemetry to the sink
        await sink.stop()
        root.removeHandler(handler)
        root.setLevel(level)

    names = sink.received.span_names()
    assert names.count("lateral.check") == 6
    assert names.count("lateral.adapter.match") >= 20
    assert {"lateral.check.duration", "lateral.agency.outcomes", "lateral.index.size"} <= (
        sink.received.metric_names()
    )
    exported = sink.received.as_text()
    assert "(unknown)" in exported  # the misplaced purpose was named as unknown, not echoed

    known = [prepared.examples.three_agencies, prepared.examples.withheld, prepared.examples.possible]
    values = list(ZEBEDEE.values()) + [
        v for e in known for k, v in e.args.items() if k in ("dob", "postcode", "justification", "case-ref")
    ]
    names_sent = [v for e in known for k, v in e.args.items() if k in ("given-name", "family-name")]
    assert _leaks(exported, values) == []
    assert [n for n in names_sent if re.search(rf"\b{re.escape(n)}\b", exported)] == []
    logged = lines.getvalue()
    records = [json.loads(line) for line in logged.splitlines()]
    # Lines about a check carry its id and its trace.
    about = [r for r in records if r.get("check_id") and r.get("trace_id")]
    assert {r["logger"] for r in about} >= {"broker.server", "adapters.core.server"}
    assert len({r["trace_id"] for r in about}) == 6
    assert _leaks(logged, values) == []
    assert [n for n in names_sent if re.search(rf"\b{re.escape(n)}\b", logged)] == []
