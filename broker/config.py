"""The broker's configuration: where it listens, the agencies it asks, purposes and review rules."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import Field, field_validator

from lateral.config import Frozen, load_model
from policy.purposes import Purpose


class BrokerSection(Frozen):
    listen: str = "127.0.0.1:50051"
    # Used when the caller sets no deadline of its own.
    default_deadline_ms: int = Field(default=3000, ge=100, le=60_000)
    # No single agency call may take longer than this, whatever the caller allows.
    max_agency_timeout_ms: int = Field(default=2500, ge=50, le=60_000)
    # Kept back from the caller's deadline for aggregation and the reply.
    reserve_ms: int = Field(default=100, ge=0, le=5_000)


class AgencyEndpoint(Frozen):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1)
    address: str = Field(min_length=1, description="host:port of the agency's adapter")


class ReviewSection(Frozen):
    """Flag a check for multi-agency review when activity accumulates."""

    min_agencies: int = Field(default=2, ge=1)
    window_days: int = Field(default=365, ge=1, le=3650)


_Item = TypeVar("_Item", Purpose, AgencyEndpoint)


class BrokerConfig(Frozen):
    broker: BrokerSection = BrokerSection()
    review: ReviewSection = ReviewSection()
    purposes: list[Purpose] = Field(min_length=1)
    agencies: list[AgencyEndpoint] = Field(min_length=1)

    @field_validator("purposes", "agencies")
    @classmethod
    def _unique_ids(cls, items: list[_Item]) -> list[_Item]:
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
    return load_model(BrokerConfig, path)
