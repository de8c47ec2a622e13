"""The linkage service of proactive identification (docs/proactive.md): agencies publish hardened
encodings to it, it links them and lists review candidates to the broker, and never sees who anyone is.

    server, port = await create_server(load_linkage_config(Path("linkage.toml")))
"""

from linkage.service.config import LinkageServiceConfig, load_linkage_config
from linkage.service.server import LinkageServer, create_server

__all__ = ["LinkageServer", "LinkageServiceConfig", "create_server", "load_linkage_config"]
