"""The log's signing keys over time. The first event a key writes is `log-key` (naming it); a new key takes
over with a `key-rotated` event signed by the old key, naming the new one. Verification starts from the
first key, which the auditor trusts, and follows the chain: no one can slip a key of their own into it.
Key events keep their payloads when others are removed at the end of retention.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.store import AuditLog
from lateral.config import ConfigError

KEY_EVENTS = ("log-key", "key-rotated")


def key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(
        key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()


def key_from_text(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))


def fingerprint(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(base64.b64decode(key_text(key))).hexdigest()[:16]


def ensure_key(log: AuditLog, signer: Ed25519PrivateKey, previous: Ed25519PrivateKey | None = None) -> None:
    """Makes `signer` the log's key: names it in a new log, or hands over from `previous` (which must be the
    key the log names now). Reads and writes in one `AuditLog.exclusive` transaction, so that services
    starting together on one log name (or hand over to) their key once: the others find it named.

    Raises:
        ConfigError: the log is signed with another key and no (matching) previous key was given.
        AuditUnavailableError: the log cannot be read or written.
    """
    new = key_text(signer.public_key())
    with log.exclusive() as conn:
        last = log.last_of(KEY_EVENTS, conn)
        if last is None:
            log.write(conn, [("log-key", {"public_key": new})])
            return
        current = str(last["public_key"])
        if current == new:
            return
        if previous is None or key_text(previous.public_key()) != current:
            raise ConfigError(
                "the audit log is signed with another key: to rotate keys, set previous_signing_key to the "
                f"key in use now (fingerprint {fingerprint(key_from_text(current))})"
            )
        handover = {"public_key": new, "previous": fingerprint(previous.public_key())}
        log.write(conn, [("key-rotated", handover)], signer=previous)
