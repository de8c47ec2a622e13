"""The agency presets shipped with Lateral, by agency id."""

from adapters.core.preset import AgencyPreset
from adapters.fire import PRESET as FIRE
from adapters.nhs import PRESET as NHS
from adapters.police import PRESET as POLICE
from adapters.socialcare import PRESET as SOCIALCARE

PRESETS: dict[str, AgencyPreset] = {p.agency_id: p for p in (POLICE, FIRE, NHS, SOCIALCARE)}
