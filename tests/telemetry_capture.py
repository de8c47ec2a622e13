"""The test exporter: every service's spans and metrics kept in memory, all spans sampled."""

from __future__ import annotations

from collections.abc import Iterator

from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from lateral.telemetry import Telemetry


class Captured:
    """Pass as `telemetry=` to start_federation: each service gets its own providers, exporting here."""

    def __init__(self) -> None:
        self._spans: dict[str, InMemorySpanExporter] = {}
        self.readers: dict[str, InMemoryMetricReader] = {}

    def __call__(self, service: str) -> Telemetry:
        self._spans[service] = InMemorySpanExporter()
        self.readers[service] = InMemoryMetricReader()
        return Telemetry.exporting(
            service, SimpleSpanProcessor(self._spans[service]), [self.readers[service]], ALWAYS_ON
        )

    def spans(self, service: str | None = None) -> list[ReadableSpan]:
        """Finished spans of one service, or of all, in the order they ended."""
        chosen = [self._spans[service]] if service else list(self._spans.values())
        return sorted((s for e in chosen for s in e.get_finished_spans()), key=lambda s: s.end_time or 0)

    def clear(self) -> None:
        for exporter in self._spans.values():
            exporter.clear()

    def metrics(self, service: str) -> Iterator[Metric]:
        data = self.readers[service].get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                yield from scope.metrics

    def metric(self, service: str, name: str) -> Metric:
        found = [m for m in self.metrics(service) if m.name == name]
        assert found, f"{service} exported no metric {name}"
        return found[0]
