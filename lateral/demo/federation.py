"""A whole federation on this machine: four agency databases of synthetic people, their adapters and a
broker, all in one process. The demo runs it; integration tests use it too."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from adapters.core.config import load_adapter_config
from adapters.core.server import AdapterServer
from adapters.core.server import create_server as create_adapter_server
from broker.config import load_broker_config
from broker.server import BrokerServer
from broker.server import create_server as create_broker_server
from lateral.demo.agreement import AGREEMENT_FILE, write_signed_agreement
from lateral.demo.examples import Examples, pick_examples
from synth import (
    SynthConfig,
    SyntheticData,
    generate,
    sqlite_urls,
    write_adapter_configs,
    write_databases,
    write_truth,
)


@dataclass(frozen=True)
class Prepared:
    """Agency databases and adapter configurations in a folder, and the showcase checks for them."""

    workdir: Path
    configs: dict[str, Path]
    examples: Examples
    data: SyntheticData


def prepare(workdir: Path, *, people: int = 20_000, seed: int = 1, today: dt.date | None = None) -> Prepared:
    """Generates a synthetic population and writes each agency's database (afresh), its adapter configuration,
    the signed data-sharing agreement (dsa.toml, keys/) and, under truth/, the ground truth, into workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_signed_agreement(workdir, today=today)
    data = generate(SynthConfig(people=people, seed=seed), today)
    urls = sqlite_urls(workdir)
    write_databases(data, urls)
    write_truth(data, workdir / "truth")
    return Prepared(workdir, write_adapter_configs(workdir, urls), pick_examples(data), data)


def write_broker_config(path: Path, agencies: dict[str, tuple[str, str]], listen: str) -> None:
    """Writes a broker configuration for agencies given as id -> (name, address), under the agreement in the
    same folder."""
    data = {
        "broker": {"listen": listen, "default_deadline_ms": 3000, "max_agency_timeout_ms": 2500},
        "policy": {"agreement": AGREEMENT_FILE},
        "agencies": [{"id": i, "name": name, "address": address} for i, (name, address) in agencies.items()],
    }
    path.write_text(tomli_w.dumps(data))


@dataclass
class Federation:
    """Running servers: stop() shuts every one down."""

    workdir: Path
    broker: BrokerServer
    broker_port: int
    adapters: dict[str, tuple[AdapterServer, int]] = field(default_factory=dict)

    @property
    def broker_address(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    async def stop(self) -> None:
        await self.broker.stop(grace=1.0)
        await asyncio.gather(*(server.stop(grace=1.0) for server, _ in self.adapters.values()))


async def start_federation(prepared: Prepared, *, broker_listen: str = "127.0.0.1:0") -> Federation:
    """Starts the four adapters and a broker on 127.0.0.1 (plaintext, development) over prepared data."""
    adapters: dict[str, tuple[AdapterServer, int]] = {}
    endpoints: dict[str, tuple[str, str]] = {}
    try:
        for agency, path in prepared.configs.items():
            config = load_adapter_config(path)
            server, port = await create_adapter_server(config, "127.0.0.1:0", insecure_dev=True)
            await server.start()
            adapters[agency] = (server, port)
            endpoints[agency] = (config.agency.name, f"127.0.0.1:{port}")
        broker_path = prepared.workdir / "broker.toml"
        write_broker_config(broker_path, endpoints, broker_listen)
        broker, broker_port = await create_broker_server(load_broker_config(broker_path), insecure_dev=True)
        await broker.start()
    except BaseException:
        await asyncio.gather(*(server.stop(None) for server, _ in adapters.values()))
        raise
    return Federation(prepared.workdir, broker, broker_port, adapters)
