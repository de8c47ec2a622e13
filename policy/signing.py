"""Signing a data-sharing agreement: Ed25519 keys per party, signatures over the agreement's canonical form.

The canonical form is the parsed TOML as JSON with sorted keys and no spacing, so comments and layout may
change freely but any change of meaning breaks every signature. Signatures live next to the agreement in
`<name>.signatures.toml`, one entry per party; the party's public key is in the agreement itself (and so
covered by every signature).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomli_w
import tomlkit
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lateral.config import ConfigError, read_toml
from policy.agreement import Agreement

_CONTEXT = b"lateral-dsa-signature-v1\n"
Status = Literal["valid", "missing", "invalid", "no-key"]


def canonical(data: dict[str, Any]) -> bytes:
    """The agreement's meaning as bytes: JSON, sorted keys, dates as ISO text."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=lambda v: v.isoformat()
    ).encode()


def digest(data: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(data)).hexdigest()


def signatures_path(agreement_path: Path) -> Path:
    return agreement_path.with_name(agreement_path.stem + ".signatures.toml")


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + base64.b64encode(raw).decode()


def _public_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.removeprefix("ed25519:")))


def generate_key(path: Path) -> str:
    """Writes a new Ed25519 private key (PEM, owner-only permissions) and returns its public key text."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return public_key_text(key.public_key())


def read_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except ValueError:
        raise ConfigError(f"{path}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an Ed25519 key (lateral dsa keygen makes one)")
    return key


def set_signing_key(agreement_path: Path, party: str, key: str) -> None:
    """Writes a party's public key into the agreement file, keeping its comments and layout."""
    document = tomlkit.parse(agreement_path.read_text())
    parties = document.get("parties", [])
    for entry in parties:
        if entry.get("id") == party:
            entry["signing_key"] = key
            agreement_path.write_text(tomlkit.dumps(document))
            return
    raise ConfigError(f"{agreement_path}: parties: no party with id {party!r}")


@dataclass(frozen=True)
class Signature:
    party: str
    agreement: str
    version: int
    digest: str
    signed_at: dt.datetime
    signature: str


def read_signatures(path: Path) -> list[Signature]:
    """The signatures file's entries; none when it does not exist."""
    if not path.exists():
        return []
    data = read_toml(path)
    try:
        return [Signature(**entry) for entry in data.get("signatures", [])]
    except TypeError:
        raise ConfigError(
            f"{path}: signatures: each entry needs exactly {list(Signature.__annotations__)}"
        ) from None


def sign(agreement: Agreement, data: dict[str, Any], party: str, key: Ed25519PrivateKey) -> Signature:
    """One party's signature over the agreement.

    Raises:
        ConfigError: when the party is unknown or the key is not the one the agreement names for it.
    """
    if party not in {p.id for p in agreement.parties}:
        raise ConfigError(f"parties: no party with id {party!r}")
    declared = agreement.party(party).signing_key
    if declared != public_key_text(key.public_key()):
        raise ConfigError(
            f"parties ({party}): signing_key: this private key does not match the key the agreement names "
            "for the party (run lateral dsa keygen, or use the party's own key)"
        )
    return Signature(
        party=party,
        agreement=agreement.id,
        version=agreement.version,
        digest=digest(data),
        signed_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        signature=base64.b64encode(key.sign(_CONTEXT + canonical(data))).decode(),
    )


def write_signature(path: Path, signature: Signature) -> None:
    """Adds (or replaces) a party's entry in the signatures file."""
    kept = [s for s in read_signatures(path) if s.party != signature.party]
    entries = [vars(s) for s in [*kept, signature]]
    path.write_text(
        "# Signatures of a Lateral data-sharing agreement (lateral dsa sign / lateral dsa verify).\n"
        + tomli_w.dumps({"signatures": entries})
    )


def verify(agreement: Agreement, data: dict[str, Any], signatures: list[Signature]) -> dict[str, Status]:
    """Each party's signature status over this exact agreement."""
    message = _CONTEXT + canonical(data)
    by_party = {s.party: s for s in signatures}
    result: dict[str, Status] = {}
    for party in agreement.parties:
        entry = by_party.get(party.id)
        if not party.signing_key:
            result[party.id] = "no-key"
        elif entry is None:
            result[party.id] = "missing"
        else:
            try:
                _public_key(party.signing_key).verify(base64.b64decode(entry.signature), message)
                result[party.id] = "valid"
            except (InvalidSignature, ValueError):
                result[party.id] = "invalid"
    return result
