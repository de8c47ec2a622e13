"""Traces and metrics (OpenTelemetry), off unless a service's `[telemetry]` section names a collector.

Each service owns its providers (never the process-wide globals), so a demo running five services in one
process still reports five services, and tests capture what each one exports. Everything recorded here is
an id, an agency, a purpose, an outcome, a count or a duration: never a name, a date, an address or a
number that identifies a person (tests/integration/test_telemetry.py scans every export for them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from pydantic import Field

import lateral
from lateral.config import Frozen

# The default share of checks traced: bench/tracing.py measured the cost (docs/benchmarks.md).
DEFAULT_SAMPLING = 0.1

_PROPAGATOR = TraceContextTextMapPropagator()
_SCOPE = "lateral"
Attributes = Mapping[str, AttributeValue]


class TelemetrySection(Frozen):
    """`[telemetry]`: where to export traces and metrics (OTLP over gRPC), and how many checks to trace."""

    # The collector, e.g. "otel-collector.hub.internal:4317". Telemetry is off when empty.
    otlp_endpoint: str = ""
    # TLS to the collector: the CA that signed its certificate (default: the system's roots), and a client
    # certificate and key if the collector asks for one.
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    # Plaintext to a collector on the same host (development only).
    insecure: bool = False
    # Share of checks traced (0 to 1); an adapter follows the broker's choice for each check.
    sampling: float = Field(default=DEFAULT_SAMPLING, ge=0.0, le=1.0)
    # How often metrics are exported.
    metrics_interval_s: float = Field(default=30.0, ge=1.0, le=3600.0)

    def resolved(self, base: Path) -> TelemetrySection:
        """Relative file paths made absolute against the configuration file's folder."""
        update = {
            name: str(base / value)
            for name in ("ca", "cert", "key")
            if (value := getattr(self, name)) is not None
        }
        return self.model_copy(update=update)


@dataclass
class Telemetry:
    """One service's tracer and meter, and the providers to flush when it stops."""

    tracer: trace.Tracer
    meter: metrics.Meter
    _tracer_provider: TracerProvider | None = None
    _meter_provider: MeterProvider | None = None

    @classmethod
    def off(cls) -> Telemetry:
        """No-op tracer and meter: recording costs a function call."""
        return cls(trace.NoOpTracer(), metrics.NoOpMeter(_SCOPE))

    @classmethod
    def exporting(
        cls,
        service: str,
        spans: SpanProcessor | None,
        readers: Sequence[MetricReader] = (),
        sampler: Sampler | None = None,
    ) -> Telemetry:
        """A service's telemetry sending spans to a processor and metrics to readers (tests pass in-memory
        ones; `from_section` OTLP ones)."""
        resource = Resource.create({"service.name": service, "service.version": lateral.__version__})
        tracer_provider = None
        tracer: trace.Tracer = trace.NoOpTracer()
        if spans is not None:
            tracer_provider = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
            tracer_provider.add_span_processor(spans)
            tracer = tracer_provider.get_tracer(_SCOPE, lateral.__version__)
        meter_provider = None
        meter: metrics.Meter = metrics.NoOpMeter(_SCOPE)
        if readers:
            meter_provider = MeterProvider(
                metric_readers=list(readers), resource=resource, shutdown_on_exit=False
            )
            meter = meter_provider.get_meter(_SCOPE, lateral.__version__)
        return cls(tracer, meter, tracer_provider, meter_provider)

    @classmethod
    def from_section(cls, section: TelemetrySection | None, service: str) -> Telemetry:
        """OTLP export as configured; off without a section or an endpoint."""
        if section is None or not section.otlp_endpoint:
            return cls.off()
        credentials = None if section.insecure else _credentials(section)
        spans = (
            BatchSpanProcessor(
                OTLPSpanExporter(
                    endpoint=section.otlp_endpoint, insecure=section.insecure, credentials=credentials
                )
            )
            if section.sampling > 0
            else None
        )
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(
                endpoint=section.otlp_endpoint, insecure=section.insecure, credentials=credentials
            ),
            export_interval_millis=section.metrics_interval_s * 1000,
        )
        return cls.exporting(service, spans, [reader], sampler_for(section.sampling))

    @property
    def tracing(self) -> bool:
        return self._tracer_provider is not None

    @contextmanager
    def span(
        self,
        name: str,
        attributes: Attributes | None = None,
        *,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        parent: Context | None = None,
    ) -> Iterator[trace.Span]:
        """A span around a block, current inside it. Exceptions are marked on the span by type only (their
        messages can quote request data).

        Inside a trace that is not being recorded (a check the sampler left out) no span is made at all: the
        block runs under the current one, whose context (marked unsampled) is what travels to adapters.
        Unsampled checks then cost a few attribute look-ups rather than a span object per step; with tracing
        off, nothing is looked up at all.
        """
        if self._tracer_provider is None:
            yield trace.INVALID_SPAN
            return
        if parent is None:
            current = trace.get_current_span()
            if current.get_span_context().is_valid and not current.is_recording():
                yield current
                return
        with self.tracer.start_as_current_span(
            name,
            context=parent,
            kind=kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as error:
                if span.is_recording():
                    span.set_status(trace.StatusCode.ERROR, type(error).__name__)
                raise

    def gauges(
        self, name: str, unit: str, description: str, read: Callable[[], Iterable[tuple[float, Attributes]]]
    ) -> None:
        """An observable gauge read at each export."""

        def observe(_: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            return [metrics.Observation(value, attributes) for value, attributes in read()]

        self.meter.create_observable_gauge(name, callbacks=[observe], unit=unit, description=description)

    def force_flush(self) -> None:
        if self._tracer_provider is not None:
            self._tracer_provider.force_flush()
        if self._meter_provider is not None:
            self._meter_provider.force_flush()

    def shutdown(self) -> None:
        """Exports what is pending and stops the exporters."""
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
        if self._meter_provider is not None:
            self._meter_provider.shutdown()


def sampler_for(ratio: float) -> Sampler:
    """Follows the caller's decision when a check arrives with one; otherwise traces `ratio` of them."""
    return ParentBased(root=TraceIdRatioBased(ratio))


def _credentials(section: TelemetrySection) -> grpc.ChannelCredentials:
    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(read(section.ca), read(section.key), read(section.cert))


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """The current trace context as gRPC metadata (W3C traceparent), empty when nothing is traced."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return tuple(carrier.items())


def incoming_context(metadata: Iterable[tuple[str, str | bytes]] | None) -> Context:
    """The caller's trace context from gRPC metadata (an empty context when it sent none)."""
    carrier = {key: value for key, value in metadata or () if isinstance(value, str)}
    return _PROPAGATOR.extract(carrier)
