"""Keys for linkage: the secret the agencies share (never the hub), its per-purpose sub-keys, and the
agency-local pseudonym of a record.

Every sub-key is derived with HKDF-SHA256 (RFC 5869) from the shared secret, with the key epoch as the
salt and the purpose as the info: one secret serves every field without one field's key saying anything
about another's, and a new epoch changes every encoding at once (rotation).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# 256 bits: HMAC-SHA256 and BLAKE2b keys gain nothing from more, and a shorter secret could be guessed.
MIN_SECRET_BYTES = 32
_DOMAIN = b"lateral/linkage/v1/"


def _check_secret(secret: bytes, what: str) -> None:
    if not isinstance(secret, bytes):
        raise TypeError(f"{what} must be bytes")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"{what} must be at least {MIN_SECRET_BYTES} bytes (got {len(secret)})")
    if len(set(secret)) == 1:
        raise ValueError(f"{what} must be random, not one byte repeated")


@dataclass(frozen=True)
class LinkageKey:
    """The secret shared by the participating agencies, and its epoch.

    Args:
        secret: at least 32 random bytes, shared by the agencies and never by the hub.
        epoch: a number raised at each rotation; encodings of different epochs never link.
    """

    secret: bytes = field(repr=False)
    epoch: int = 0

    def __post_init__(self) -> None:
        _check_secret(self.secret, "the linkage secret")
        if isinstance(self.epoch, bool) or not isinstance(self.epoch, int) or not 0 <= self.epoch < 2**32:
            raise ValueError("the key epoch must be an integer from 0 to 2**32 - 1")

    def sub_key(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (a field's hashing, the diffusion layer), derived by HKDF."""
        return _derive(self.secret, self.epoch, purpose)

    @property
    def key_id(self) -> str:
        """A fingerprint naming the key and epoch (16 hex digits): agencies compare it to confirm they
        encode with the same key, without showing the key."""
        return f"{self.epoch}:{self.sub_key('key-id')[:8].hex()}"


@lru_cache(maxsize=256)
def _derive(secret: bytes, epoch: int, purpose: str) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_DOMAIN + b"epoch/" + epoch.to_bytes(4, "big"),
        info=_DOMAIN + purpose.encode(),
    )
    return hkdf.derive(secret)


def record_token(agency_secret: bytes, record_key: str) -> str:
    """The agency-local pseudonym of one of its records: HMAC-SHA256 under a secret only that agency holds
    (not the shared linkage secret), 128 bits in hex.

    The agency resolves a token by computing the tokens of its own records; nobody else can, and two
    agencies' tokens of one person are unrelated.

    Args:
        agency_secret: at least 32 random bytes held by the agency alone.
        record_key: the agency's own key of the record.

    Raises:
        ValueError: the secret is too short or not random.
    """
    _check_secret(agency_secret, "the agency's token secret")
    digest = hmac.new(agency_secret, _DOMAIN + b"record-token\x00" + record_key.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]
