"""The broker's configuration: where it listens, the agencies it asks, and the agreement it enforces.

Purposes, permissions and review rules are the data-sharing agreement's (policy/), not the broker's.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from audit.keys import AuditSection
from broker.limits import LimitsSection
from broker.resilience import ResilienceSection
from lateral.config import Frozen, load_model
from lateral.telemetry import TelemetrySection
from pki.tls import TlsSection
from policy.trust import PolicySection


class BrokerSection(Frozen):
    listen: str = "127.0.0.1:50051"
    # Used when the caller sets no deadline of its own.
    default_deadline_ms: int = Field(default=3000, ge=100, le=60_000)
    # No single agency call may take longer than this, whatever the caller allows.
    max_agency_timeout_ms: int = Field(default=2500, ge=50, le=60_000)
    # Kept back from the caller's deadline for aggregation and the reply.
    reserve_ms: int = Field(default=100, ge=0, le=5_000)
    # Checks of one bulk stream (CheckMany) in flight at once.
    bulk_concurrency: int = Field(default=8, ge=1, le=256)
    # On SIGTERM: how long checks in flight may take to finish before they are cancelled.
    shutdown_grace_s: float = Field(default=10.0, ge=0.0, le=300.0)


class AgencyEndpoint(Frozen):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1)
    address: str = Field(min_length=1, description="host:port of the agency's adapter")


class RestSection(Frozen):
    # host:port of the REST/JSON API (HTTPS with the broker's certificate; callers identify themselves with
    # their certificate and a user assertion in headers). Port 0 picks a free one.
    listen: str = "127.0.0.1:8443"


class LinkageEndpoint(Frozen):
    # host:port of the linkage service (proactive identification, docs/proactive.md).
    address: str = Field(min_length=1)
    # A listing returns at most this many candidates unless the caller asks for fewer.
    default_candidates: int = Field(default=50, ge=1, le=1000)


class BrokerConfig(Frozen):
    broker: BrokerSection = BrokerSection()
    # Mutual TLS for case systems calling in and for calls out to adapters (lateral pki issue --role broker).
    tls: TlsSection | None = None
    limits: LimitsSection = LimitsSection()
    # Retries, circuit breakers and load shedding (broker/resilience.py, broker/admission.py).
    resilience: ResilienceSection = ResilienceSection()
    # The REST/JSON API for case systems that do not speak gRPC (off when absent).
    rest: RestSection | None = None
    # The tamper-evident log of every check (required outside --insecure-dev).
    audit: AuditSection | None = None
    # Traces and metrics over OTLP (off when absent).
    telemetry: TelemetrySection | None = None
    policy: PolicySection
    agencies: list[AgencyEndpoint] = Field(min_length=1)
    # The linkage service the review candidates come from (off when absent).
    linkage: LinkageEndpoint | None = None

    @field_validator("agencies")
    @classmethod
    def _unique_ids(cls, items: list[AgencyEndpoint]) -> list[AgencyEndpoint]:
        ids = [item.id for item in items]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"ids must be unique, repeated: {repeated}")
        return items


def load_broker_config(path: Path) -> BrokerConfig:
    """Loads and validates a broker configuration file.

    Raises:
        ConfigError: naming the file, the key and the problem.
    """
    config = load_model(BrokerConfig, path)
    tls = config.tls.resolved(path.parent) if config.tls is not None else None
    audit = config.audit.resolved(path.parent) if config.audit is not None else None
    telemetry = config.telemetry.resolved(path.parent) if config.telemetry is not None else None
    return config.model_copy(
        update={
            "policy": config.policy.resolved(path.parent),
            "tls": tls,
            "audit": audit,
            "telemetry": telemetry,
        }
    )
