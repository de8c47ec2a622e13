"""The demo federation's PKI: a CA, a certificate for the broker, each adapter and two case systems, so
the demo runs over mutual TLS with user assertions exactly as a real deployment must."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from adapters.core.config import AdapterTls
from lateral.config import Frozen, read_toml
from linkage.service.config import LinkageTls
from pki.authority import Authority, Issued
from pki.tls import TlsSection

FEDERATION = "northshire"
BROKER_ORGANISATION, BROKER_NAME = "northshire-council", "hub"
# The linkage service the agreement's [linkage] names: the council runs it, apart from the broker.
LINKAGE_NAME = "mash-linkage"
# The case systems the demo's users work in: the council's MASH system and the police's.
CLIENTS = {"northshire-council": "case-system", "northshire-police": "case-system"}


@dataclass(frozen=True)
class DemoPki:
    folder: Path
    broker: Issued
    adapters: dict[str, Issued] = field(default_factory=dict)
    clients: dict[str, Issued] = field(default_factory=dict)
    linkage: Issued | None = None

    def section(self, issued: Issued) -> TlsSection:
        return TlsSection(
            ca=str(self.folder / "ca.crt"),
            cert=str(issued.certificate),
            key=str(issued.key),
            crl=str(self.folder / "crl.pem"),
        )

    @property
    def broker_tls(self) -> TlsSection:
        return self.section(self.broker)

    def adapter_tls(self, agency: str) -> AdapterTls:
        return AdapterTls(
            **self.section(self.adapters[agency]).model_dump(), brokers=(self.broker.identity.uri,)
        )

    def client_tls(self, organisation: str) -> TlsSection:
        return self.section(self.clients[organisation])

    def linkage_tls(self) -> LinkageTls:
        """The linkage service's: its own certificate, answering the broker only."""
        assert self.linkage is not None
        return LinkageTls(**self.section(self.linkage).model_dump(), brokers=(self.broker.identity.uri,))


def issue_demo_certificates(workdir: Path, adapters: dict[str, str]) -> DemoPki:
    """A fresh CA in workdir/pki and the demo's certificates; adapters maps agency id to its organisation."""
    folder = workdir / "pki"
    shutil.rmtree(folder, ignore_errors=True)
    authority = Authority.init(folder, FEDERATION)
    return DemoPki(
        folder,
        authority.issue(BROKER_ORGANISATION, "broker", BROKER_NAME),
        {agency: authority.issue(org, "adapter", agency) for agency, org in adapters.items()},
        {org: authority.issue(org, "client", name) for org, name in CLIENTS.items()},
        authority.issue(BROKER_ORGANISATION, "linkage", LINKAGE_NAME),
    )


def add_sections(config: Path, **sections: Frozen) -> None:
    """Adds (or replaces) sections of a TOML configuration file, e.g. tls=..., audit=..."""
    data: dict[str, Any] = read_toml(config)
    data.update({name: section.model_dump() for name, section in sections.items()})
    config.write_text(tomli_w.dumps(data, multiline_strings=True))
