"""A minimal OTLP/gRPC receiver that keeps what it is sent: a real collector endpoint for tests and
benchmarks (no OpenTelemetry Collector is packaged for this machine). Not for production use."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.json_format import MessageToJson
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass
class Received:
    """Every export request received, in arrival order."""

    traces: list[trace_service_pb2.ExportTraceServiceRequest] = field(default_factory=list)
    metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = field(default_factory=list)

    def span_names(self) -> list[str]:
        return [
            span.name
            for request in self.traces
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def metric_names(self) -> set[str]:
        return {
            metric.name
            for request in self.metrics
            for resource in request.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }

    def as_text(self) -> str:
        """Everything received, as JSON text and as raw bytes decoded leniently: for scanning."""
        parts: list[str] = []
        for message in [*self.traces, *self.metrics]:
            parts.append(MessageToJson(message))
            parts.append(message.SerializeToString().decode("utf-8", "replace"))
        return "\n".join(parts)


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self._received = received

    async def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._received.traces.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, received: Received) -> None:
        self._received = received

    async def Export(
        self,
        request: metrics_service_pb2.ExportMetricsServiceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self._received.metrics.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OtlpSink:
    """A plaintext OTLP/gRPC endpoint on 127.0.0.1 (port 0 picks a free one)."""

    def __init__(self) -> None:
        self.received = Received()
        self._server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(self.received), self._server)  # type: ignore[no-untyped-call]
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self.received), self._server)  # type: ignore[no-untyped-call]
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop(None)


async def _main() -> None:
    """Runs a sink until SIGTERM or Ctrl-C, printing its port, then how much it received."""
    import signal

    sink = OtlpSink()
    await sink.start()
    print(f"otlp sink listening on 127.0.0.1:{sink.port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await sink.stop()
    print(f"received {len(sink.received.span_names())} spans", flush=True)


if __name__ == "__main__":
    asyncio.run(_main())
