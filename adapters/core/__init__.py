"""The shared adapter framework: configuration, source reading, index, matching, disclosure and server.

An agency is configured entirely by its TOML file; agency packages add only presets (schema, mapping,
vocabulary) and never need a change here.
"""

from adapters.core.config import AdapterConfig, load_adapter_config
from adapters.core.index import MatchIndex
from adapters.core.matching import Matcher, MatchResult
from adapters.core.preset import AgencyPreset
from adapters.core.records import SeedEvent, SeedPerson
from adapters.core.refresh import build_index, refresh_index
from adapters.core.server import AdapterServer, AdapterServicer, create_server

__all__ = [
    "AdapterConfig",
    "AdapterServer",
    "AdapterServicer",
    "AgencyPreset",
    "MatchIndex",
    "MatchResult",
    "Matcher",
    "SeedEvent",
    "SeedPerson",
    "build_index",
    "create_server",
    "load_adapter_config",
    "refresh_index",
]
