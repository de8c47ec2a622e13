"""The linkage service's configuration: where it listens and keeps encodings, its certificate, the broker
identities it answers, its audit log and the agreement it runs under."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from audit.keys import AuditSection
from lateral.config import Frozen, load_model
from linkage.link import DEFAULT_THRESHOLD
from pki.tls import TlsSection
from policy.trust import PolicySection


class LinkageServerSection(Frozen):
    listen: str = "127.0.0.1:50070"
    # Encodings at or above this Dice coefficient link (docs/linkage.md says how it was chosen).
    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0.0, le=1.0)
    # A listing returns at most this many candidates, best first.
    max_candidates: int = Field(default=500, ge=1, le=100_000)
    # After a publication ends, link again once no other has ended for this long.
    relink_after_seconds: float = Field(default=2.0, ge=0.0, le=3600.0)
    # On SIGTERM: how long calls in flight may take to finish.
    shutdown_grace_s: float = Field(default=10.0, ge=0.0, le=300.0)


class StoreSection(Frozen):
    # Any SQLAlchemy URL; a relative SQLite path is relative to the configuration file.
    url: str = Field(default="sqlite:///linkage.db", min_length=1)

    def resolved(self, base: Path) -> StoreSection:
        url = self.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            url = "sqlite:///" + str((base / url.removeprefix("sqlite:///")).resolve())
        return self.model_copy(update={"url": url})


class LinkageTls(TlsSection):
    # The identities allowed to read candidates: the federation's broker(s). Publishers are the adapters
    # of the agencies the agreement's [linkage] names, each from the party that holds it.
    brokers: tuple[str, ...] = Field(min_length=1)

    def resolved(self, base: Path) -> LinkageTls:
        files = TlsSection.resolved(self, base)
        return LinkageTls(**files.model_dump(), brokers=self.brokers)


class LinkageServiceConfig(Frozen):
    linkage: LinkageServerSection = LinkageServerSection()
    store: StoreSection = StoreSection()
    # Mutual TLS (lateral pki issue --role linkage): its certificate must carry the identity the agreement's
    # [linkage] service names.
    tls: LinkageTls | None = None
    # The tamper-evident log of every publication, linking and listing (required outside --insecure-dev).
    audit: AuditSection | None = None
    policy: PolicySection


def load_linkage_config(path: Path) -> LinkageServiceConfig:
    """Loads and validates a linkage service configuration file.

    Raises:
        ConfigError: naming the file, the key and the problem.
    """
    config = load_model(LinkageServiceConfig, path)
    return config.model_copy(
        update={
            "store": config.store.resolved(path.parent),
            "policy": config.policy.resolved(path.parent),
            "tls": config.tls.resolved(path.parent) if config.tls is not None else None,
            "audit": config.audit.resolved(path.parent) if config.audit is not None else None,
        }
    )
