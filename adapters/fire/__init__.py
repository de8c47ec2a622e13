"""Fire and rescue: incidents at properties, home fire-safety visits, deliberate fires, hoarding."""

from pathlib import Path

from adapters.core.preset import AgencyPreset
from adapters.fire import schema

PRESET = AgencyPreset("fire", schema.metadata, schema.write, Path(__file__).with_name("adapter.toml"))
