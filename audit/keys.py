"""The audit log's keys and configuration.

log-signing.key / .pub   Ed25519: the service signs every event and checkpoint; auditors verify with .pub
pseudonym.key            32 secret bytes (hex): the HMAC key of subject pseudonyms
auditor.key / .pub       X25519: subject details are sealed to .pub; only auditors hold .key
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import Field

from lateral.config import ConfigError, Frozen
from pki.authority import write_private


class AuditSection(Frozen):
    """Where a service keeps its audit log, and its keys (paths relative to the configuration file)."""

    # Any SQLAlchemy URL; a relative SQLite path is relative to the configuration file.
    url: str = Field(min_length=1)
    signing_key: str = Field(min_length=1)
    pseudonym_key: str = Field(min_length=1)
    auditor_public_key: str = Field(min_length=1)
    # While rotating keys: the key in use until now, which hands over to signing_key.
    previous_signing_key: str = ""
    # A signed checkpoint after this many events (and every checkpoint_seconds).
    checkpoint_every: int = Field(default=100, ge=1, le=1_000_000)
    checkpoint_seconds: float = Field(default=60.0, ge=0.1, le=86_400)

    def resolved(self, base: Path) -> AuditSection:
        def absolute(path: str) -> str:
            return str((base / path).resolve())

        url = self.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            url = "sqlite:///" + absolute(url.removeprefix("sqlite:///"))
        return self.model_copy(
            update={
                "url": url,
                "signing_key": absolute(self.signing_key),
                "pseudonym_key": absolute(self.pseudonym_key),
                "auditor_public_key": absolute(self.auditor_public_key),
                "previous_signing_key": absolute(self.previous_signing_key)
                if self.previous_signing_key
                else "",
            }
        )


@dataclass(frozen=True)
class AuditKeys:
    signer: Ed25519PrivateKey
    pseudonym: bytes
    auditor: X25519PublicKey
    previous: Ed25519PrivateKey | None = None


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found (lateral audit keygen makes one)") from None


def load_keys(section: AuditSection) -> AuditKeys:
    """Reads a service's audit keys.

    Raises:
        ConfigError: a key is missing or of the wrong kind.
    """
    signer = _signing_key(section.signing_key)
    previous = _signing_key(section.previous_signing_key) if section.previous_signing_key else None
    try:
        pseudonym = bytes.fromhex(_read(section.pseudonym_key, "pseudonym key").decode().strip())
    except ValueError:
        raise ConfigError(f"{section.pseudonym_key}: not a hex key") from None
    if len(pseudonym) < 32:
        raise ConfigError(f"{section.pseudonym_key}: the pseudonym key must be at least 32 bytes")
    auditor = serialization.load_pem_public_key(_read(section.auditor_public_key, "auditor public key"))
    if not isinstance(auditor, X25519PublicKey):
        raise ConfigError(f"{section.auditor_public_key}: not an X25519 public key")
    return AuditKeys(signer, pseudonym, auditor, previous)


def _signing_key(path: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(_read(path, "log signing key"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an Ed25519 private key")
    return key


def read_public_signing_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(_read(str(path), "log public key"))
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: not an Ed25519 public key")
    return key


def read_auditor_key(path: Path) -> X25519PrivateKey:
    key = serialization.load_pem_private_key(_read(str(path), "auditor private key"), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ConfigError(f"{path}: not an X25519 private key")
    return key


def generate_service_keys(folder: Path) -> None:
    """A service's log signing key (and its public half) and pseudonym key."""
    signer = Ed25519PrivateKey.generate()
    write_private(
        folder / "log-signing.key",
        signer.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    (folder / "log-signing.pub").write_bytes(
        signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    write_private(folder / "pseudonym.key", os.urandom(32).hex().encode())


def generate_auditor_keys(folder: Path) -> None:
    """The auditors' key pair: subject details are sealed to auditor.pub."""
    key = X25519PrivateKey.generate()
    write_private(
        folder / "auditor.key",
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    (folder / "auditor.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
