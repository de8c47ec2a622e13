"""Telemetry's span helper, sampling and trace-context propagation (pure, in-memory exporters)."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lateral.telemetry import Telemetry, TelemetrySection, incoming_context, outgoing_metadata, sampler_for


def _telemetry(ratio: float) -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return Telemetry.exporting("t", SimpleSpanProcessor(exporter), [], sampler_for(ratio)), exporter


def test_a_sampled_check_makes_nested_spans_and_sends_a_sampled_context() -> None:
    telemetry, exporter = _telemetry(1.0)
    with telemetry.span("root", kind=trace.SpanKind.SERVER) as root, telemetry.span("child"):
        [(key, value)] = outgoing_metadata()
    assert key == "traceparent"
    version, trace_id, _, flags = value.split("-")
    assert version == "00"
    assert int(flags, 16) & 1 == 1  # sampled
    assert int(trace_id, 16) == root.get_span_context().trace_id
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"root", "child"}
    assert spans["child"].parent is not None
    assert spans["child"].parent.span_id == spans["root"].context.span_id


def test_an_unsampled_check_makes_no_nested_spans_and_sends_an_unsampled_context() -> None:
    telemetry, exporter = _telemetry(0.0)
    with telemetry.span("root") as root, telemetry.span("child") as child:
        assert child is root  # no span object for a step of an unsampled check
        [(_, value)] = outgoing_metadata()
    assert int(value.rsplit("-", 1)[1], 16) & 1 == 0  # not sampled
    assert exporter.get_finished_spans() == ()


def test_an_adapter_follows_the_callers_sampling_decision() -> None:
    broker, _ = _telemetry(1.0)
    adapter, exported = _telemetry(0.0)  # would trace nothing on its own
    with broker.span("check") as check:
        metadata = outgoing_metadata()
    with adapter.span("match", parent=incoming_context(metadata)) as served:
        assert served.is_recording()
    [span] = exported.get_finished_spans()
    assert span.parent is not None
    assert span.parent.span_id == check.get_span_context().span_id


def test_an_exception_marks_the_span_by_type_only() -> None:
    telemetry, exporter = _telemetry(1.0)
    with pytest.raises(ValueError, match="Zebedee"), telemetry.span("x"):
        raise ValueError("Zebedee Quuxworth 2011-02-28")
    [span] = exporter.get_finished_spans()
    assert span.status.description == "ValueError"
    assert span.events == ()


def test_off_records_nothing_and_sends_nothing() -> None:
    telemetry = Telemetry.off()
    with telemetry.span("x") as span:
        assert not span.is_recording()
        assert outgoing_metadata() == ()
    assert Telemetry.from_section(None, "s").tracing is False
    assert Telemetry.from_section(TelemetrySection(), "s").tracing is False


def test_section_paths_resolve_against_the_configuration_folder() -> None:
    section = TelemetrySection(otlp_endpoint="collector:4317", ca="pki/ca.crt").resolved(Path("/etc/lateral"))
    assert section.ca == "/etc/lateral/pki/ca.crt"
    assert section.cert is None
