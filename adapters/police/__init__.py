"""Police: nominals and occurrences (domestic abuse, missing persons, ASB, exploitation, ...)."""

from pathlib import Path

from adapters.core.preset import AgencyPreset
from adapters.police import schema

PRESET = AgencyPreset("police", schema.metadata, schema.write, Path(__file__).with_name("adapter.toml"))
