"""The hub: validates lateral checks, fans them out to the agencies and aggregates their answers."""

from broker.config import BrokerConfig, load_broker_config
from broker.server import BrokerServer, create_server

__all__ = ["BrokerConfig", "BrokerServer", "create_server", "load_broker_config"]
