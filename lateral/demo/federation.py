"""A whole federation on this machine: four agency databases of synthetic people, their adapters and a
broker, all in one process. The demo runs it; integration tests use it too."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import tomli_w

from adapters.core.config import AdapterLinkage, load_adapter_config
from adapters.core.server import AdapterServer
from adapters.core.server import create_server as create_adapter_server
from audit.keys import AuditSection
from broker.config import load_broker_config
from broker.limits import LimitsSection
from broker.server import BrokerServer
from broker.server import create_server as create_broker_server
from lateral.asgi import AsgiServer
from lateral.client import broker_channel
from lateral.demo.agreement import AGREEMENT_FILE, DEMO_CALLER, write_signed_agreement
from lateral.demo.auditing import prepare_audit
from lateral.demo.certificates import DemoPki, add_sections, issue_demo_certificates
from lateral.demo.examples import Examples, pick_examples
from lateral.demo.web import start_demo_web
from lateral.identity import Caller
from lateral.rpc import insecure_channel, secure_channel
from lateral.telemetry import Telemetry
from linkage.keyfiles import write_shared_key, write_token_key
from linkage.service import LinkageServer, LinkageServiceConfig
from linkage.service import create_server as create_linkage_server
from linkage.service.config import LinkageServerSection, StoreSection
from pki.tls import Tls, TlsSection
from policy.agreement import load_agreement
from policy.trust import PolicySection
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
    pki: DemoPki
    audit: dict[str, AuditSection]
    # Each party's agreement signing key, as the parties would hand them to each other out of band.
    party_keys: dict[str, str]

    @property
    def linkage_folder(self) -> Path:
        """The linkage keys (the agencies' shared key and each one's token key) and the service's store."""
        return self.workdir / "linkage"


def prepare(
    workdir: Path,
    *,
    people: int = 20_000,
    seed: int = 1,
    today: dt.date | None = None,
    sources: dict[str, str] | None = None,
) -> Prepared:
    """Generates a synthetic population and writes each agency's database (afresh), its adapter configuration,
    the signed data-sharing agreement (dsa.toml, keys/), the federation's certificates (pki/) and, under
    truth/, the ground truth, into workdir.

    Args:
        sources: agency -> SQLAlchemy URL of an empty database to use instead of a SQLite file in workdir
            (e.g. police on PostgreSQL, social care on MariaDB over ODBC).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    agreement, _ = load_agreement(write_signed_agreement(workdir, today=today))
    data = generate(SynthConfig(people=people, seed=seed), today)
    urls = sqlite_urls(workdir) | (sources or {})
    write_databases(data, urls)
    write_truth(data, workdir / "truth")
    holders = {agency: party.id for agency in urls if (party := agreement.controller_of(agency)) is not None}
    pki = issue_demo_certificates(workdir, holders)
    audit = prepare_audit(workdir, ["broker", "linkage", *urls])
    _linkage_keys(workdir / "linkage", list(urls))
    party_keys = {p.id: p.signing_key for p in agreement.parties}
    configs = write_adapter_configs(workdir, urls)
    for agency, path in configs.items():
        policy = PolicySection(agreement=AGREEMENT_FILE, trusted_keys=(party_keys[holders[agency]],))
        add_sections(path, tls=pki.adapter_tls(agency), audit=audit[agency], policy=policy)
    return Prepared(workdir, configs, pick_examples(data), data, pki, audit, party_keys)


def _linkage_keys(folder: Path, agencies: list[str]) -> None:
    """The key the publishing agencies share and each agency's token key, afresh; and no old encodings."""
    shutil.rmtree(folder, ignore_errors=True)
    write_shared_key(folder / "linkage.key", epoch=1)
    for agency in agencies:
        write_token_key(folder / f"{agency}-tokens.key")


def write_broker_config(
    path: Path,
    agencies: dict[str, tuple[str, str]],
    listen: str,
    tls: TlsSection | None,
    audit: AuditSection | None,
    trusted_keys: tuple[str, ...] = (),
    limits: LimitsSection | None = None,
    linkage: str = "",
) -> None:
    """Writes a broker configuration for agencies given as id -> (name, address), under the agreement in the
    same folder, with mutual TLS, an audit log and a linkage service (host:port) when given."""
    data: dict[str, Any] = {
        **({"linkage": {"address": linkage}} if linkage else {}),
        "broker": {"listen": listen, "default_deadline_ms": 3000, "max_agency_timeout_ms": 2500},
        **({"tls": tls.model_dump()} if tls is not None else {}),
        **({"audit": audit.model_dump()} if audit is not None else {}),
        **({"limits": limits.model_dump()} if limits is not None else {}),
        "rest": {"listen": "127.0.0.1:0"},
        "policy": {"agreement": AGREEMENT_FILE, "trusted_keys": list(trusted_keys)},
        "agencies": [{"id": i, "name": name, "address": address} for i, (name, address) in agencies.items()],
    }
    path.write_text(tomli_w.dumps(data))


@dataclass
class Federation:
    """Running servers: stop() shuts every one down."""

    workdir: Path
    broker: BrokerServer
    broker_port: int
    pki: DemoPki | None
    adapters: dict[str, tuple[AdapterServer, int]] = field(default_factory=dict)
    web: AsgiServer | None = None
    linkage: tuple[LinkageServer, int] | None = None

    @property
    def broker_address(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def web_url(self) -> str:
        return self.web.url if self.web is not None else ""

    @property
    def rest_url(self) -> str:
        return self.broker.rest.url if self.broker.rest is not None else ""

    def client_tls(self, caller: Caller) -> Tls | None:
        """The TLS material of the caller's case system (None when the federation runs in plaintext)."""
        return None if self.pki is None else Tls(self.pki.client_tls(caller.organisation))

    def channel(self, caller: Caller) -> grpc.aio.Channel:
        """A channel to the broker from the caller's case system, each call asserting the caller."""
        return broker_channel(self.broker_address, caller, self.client_tls(caller))

    def adapter_channel(self, agency: str) -> grpc.aio.Channel:
        """A channel to an adapter as the broker (the only identity adapters answer)."""
        address = f"127.0.0.1:{self.adapters[agency][1]}"
        if self.pki is None:
            return insecure_channel(address)
        return secure_channel(address, Tls(self.pki.broker_tls).channel_credentials())

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
        await self.broker.stop(grace=1.0)
        await asyncio.gather(*(server.stop(grace=1.0) for server, _ in self.adapters.values()))
        if self.linkage is not None:
            await self.linkage[0].stop(grace=1.0)


async def start_federation(
    prepared: Prepared,
    *,
    broker_listen: str = "127.0.0.1:0",
    insecure_dev: bool = False,
    limits: LimitsSection | None = None,
    telemetry: Callable[[str], Telemetry] | None = None,
    audit: bool = True,
) -> Federation:
    """Starts the four adapters and a broker on 127.0.0.1 over prepared data: mutual TLS with the prepared
    certificates, or plaintext with insecure_dev. `telemetry` gives each service (by its service name,
    e.g. lateral-broker, lateral-adapter-police) its telemetry; by default, none. `audit=False` (with
    insecure_dev only, for benchmarks) runs every service without its audit log."""
    adapters: dict[str, tuple[AdapterServer, int]] = {}
    endpoints: dict[str, tuple[str, str]] = {}
    keys = tuple(prepared.party_keys.values())
    linkage = await _start_linkage(prepared, insecure_dev, audit, keys)
    try:
        for agency, path in prepared.configs.items():
            config = load_adapter_config(path)
            if not audit:
                config = config.model_copy(update={"audit": None})
            config = config.model_copy(
                update={
                    "linkage": AdapterLinkage(
                        service=f"127.0.0.1:{linkage[1]}",
                        key_file=str(prepared.linkage_folder / "linkage.key"),
                        token_key_file=str(prepared.linkage_folder / f"{agency}-tokens.key"),
                        first_after_seconds=0.0,
                    )
                }
            )
            server, port = await create_adapter_server(
                config,
                "127.0.0.1:0",
                insecure_dev=insecure_dev,
                telemetry=telemetry(f"lateral-adapter-{agency}") if telemetry is not None else None,
            )
            await server.start()
            adapters[agency] = (server, port)
            endpoints[agency] = (config.agency.name, f"127.0.0.1:{port}")
        # Ready means linked: every adapter has published once, and the service has linked what came.
        await asyncio.wait_for(
            asyncio.gather(*(server.first_publication.wait() for server, _ in adapters.values())), 120
        )
        await linkage[0].servicer.relink()
        broker_path = prepared.workdir / "broker.toml"
        tls = None if insecure_dev else prepared.pki.broker_tls
        broker_audit = prepared.audit["broker"] if audit and not insecure_dev else None
        write_broker_config(
            broker_path, endpoints, broker_listen, tls, broker_audit, keys, limits, f"127.0.0.1:{linkage[1]}"
        )
        broker, broker_port = await create_broker_server(
            load_broker_config(broker_path),
            insecure_dev=insecure_dev,
            telemetry=telemetry("lateral-broker") if telemetry is not None else None,
        )
        await broker.start()
    except BaseException:
        await asyncio.gather(*(server.stop(None) for server, _ in adapters.values()))
        await linkage[0].stop(None)
        raise
    pki = None if insecure_dev else prepared.pki
    web = await start_demo_web(
        prepared.workdir,
        f"127.0.0.1:{broker_port}",
        pki.client_tls(DEMO_CALLER.organisation) if pki is not None else None,
        DEMO_CALLER.organisation,
        None if insecure_dev else prepared.audit["broker"],
    )
    return Federation(prepared.workdir, broker, broker_port, pki, adapters, web, linkage)


async def _start_linkage(
    prepared: Prepared, insecure_dev: bool, audit: bool, trusted_keys: tuple[str, ...]
) -> tuple[LinkageServer, int]:
    """The linkage service of proactive identification, run by the council apart from the broker."""
    config = LinkageServiceConfig(
        linkage=LinkageServerSection(listen="127.0.0.1:0", relink_after_seconds=0.5),
        store=StoreSection(url=f"sqlite:///{(prepared.linkage_folder / 'encodings.db').resolve()}"),
        tls=None if insecure_dev else prepared.pki.linkage_tls(),
        audit=prepared.audit["linkage"] if audit and not insecure_dev else None,
        policy=PolicySection(
            agreement=str((prepared.workdir / AGREEMENT_FILE).resolve()), trusted_keys=trusted_keys
        ),
    )
    server, port = await create_linkage_server(config, "127.0.0.1:0", insecure_dev=insecure_dev)
    await server.start()
    return server, port
