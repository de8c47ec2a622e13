"""NHS: patients with NHS numbers and encounters (A&E, maternity, mental-health crisis, ...)."""

from pathlib import Path

from adapters.core.preset import AgencyPreset
from adapters.nhs import schema

PRESET = AgencyPreset("nhs", schema.metadata, schema.write, Path(__file__).with_name("adapter.toml"))
