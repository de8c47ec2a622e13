"""Social care: children's and adults' persons with referrals, assessments, plans and s42 enquiries."""

from pathlib import Path

from adapters.core.preset import AgencyPreset
from adapters.socialcare import schema

PRESET = AgencyPreset("socialcare", schema.metadata, schema.write, Path(__file__).with_name("adapter.toml"))
