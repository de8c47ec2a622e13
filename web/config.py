"""`web.toml`: where the web page listens, which broker it asks and as which case system, its accounts."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from audit.keys import AuditSection
from lateral.config import ConfigError, Frozen, load_model
from pki.tls import TlsSection


class WebConfig(Frozen):
    listen: str = "127.0.0.1:8080"
    # The broker's host:port (gRPC), asked as the case system whose certificate is [tls].
    broker: str = Field(min_length=1)
    tls: TlsSection | None = None
    # The local accounts file (lateral web add-user), and a file holding the session-signing secret.
    accounts: str = Field(min_length=1)
    session_secret_file: str = Field(min_length=1)
    # Browsers reach the page over HTTPS (the council's TLS proxy in front): cookies go over HTTPS only.
    https: bool = True
    # The broker's audit log and the auditors' private key, for the auditor pages (optional).
    audit: AuditSection | None = None
    auditor_key: str = ""
    # Plaintext development only: the organisation to state, as no certificate says it.
    organisation: str = ""


def load_web_config(path: Path) -> WebConfig:
    config = load_model(WebConfig, path)
    base = path.parent

    def absolute(value: str) -> str:
        return str((base / value).resolve()) if value else ""

    secret = Path(absolute(config.session_secret_file))
    if not secret.exists() or len(secret.read_text().strip()) < 32:
        raise ConfigError(
            f"{path}: session_secret_file: {secret} must hold a secret of at least 32 characters"
        )
    return config.model_copy(
        update={
            "tls": config.tls.resolved(base) if config.tls is not None else None,
            "accounts": absolute(config.accounts),
            "session_secret_file": str(secret),
            "audit": config.audit.resolved(base) if config.audit is not None else None,
            "auditor_key": absolute(config.auditor_key),
        }
    )
