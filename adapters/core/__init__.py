"""The shared adapter framework: configuration, source reading, index, matching, disclosure and server.

An agency is configured entirely by its TOML file; agency packages add only presets (schema, mapping,
vocabulary) and never need a change here.
"""

from typing import TYPE_CHECKING, Any

from adapters.core.config import AdapterConfig, load_adapter_config
from adapters.core.index import MatchIndex
from adapters.core.matching import Matcher, MatchResult
from adapters.core.preset import AgencyPreset
from adapters.core.records import SeedEvent, SeedPerson
from adapters.core.refresh import build_index, refresh_index

if TYPE_CHECKING:
    from adapters.core.server import AdapterServer, AdapterServicer, create_server

# The server (and through it the linkage library it publishes with) loads only when asked for: the linkage
# library normalises with adapters.core.normalise, and importing that must not import the server back.
_SERVER = ("AdapterServer", "AdapterServicer", "create_server")


def __getattr__(name: str) -> Any:
    if name in _SERVER:
        from adapters.core import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
