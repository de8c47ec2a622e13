"""Who was checked, kept from everyone but auditors: a keyed pseudonym, and the details sealed to the
auditors' public key.

The pseudonym (HMAC-SHA-256 under the service's pseudonym key, over normalised name, date of birth and NHS
number) lets an auditor find repeated checks on one person without the log revealing who. The details
are sealed with hybrid encryption: an ephemeral X25519 key agreement with the auditors' public key, HKDF,
then AES-256-GCM; only the auditors' private key opens them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf import json_format

from protos.lateral.v1 import common_pb2

_INFO = b"lateral-audit-seal-v1"


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def pseudonym(key: bytes, subject: common_pb2.Subject) -> str:
    """The same value for the same person however they were typed (case, accents, spacing)."""
    given = _fold(subject.given_names[0]) if subject.given_names else ""
    parts = [_fold(subject.family_name), given, subject.date_of_birth, "".join(subject.nhs_number.split())]
    return hmac.new(key, "|".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


def address_pseudonym(key: bytes, address: common_pb2.Address) -> str:
    """The same value for the same address however it was typed: repeated checks on one home show up."""
    parts = [_fold(" ".join(address.lines)), _fold(address.postcode), address.uprn.strip()]
    return hmac.new(key, ("address|" + "|".join(parts)).encode(), hashlib.sha256).hexdigest()[:32]


def _key(shared: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(shared)


def public_key_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(recipient: X25519PublicKey, plaintext: bytes) -> str:
    """Encrypts to the auditors: base64(ephemeral public key | nonce | ciphertext and tag)."""
    ephemeral = X25519PrivateKey.generate()
    sender = public_key_bytes(ephemeral.public_key())
    nonce = os.urandom(12)
    sealed = AESGCM(_key(ephemeral.exchange(recipient))).encrypt(nonce, plaintext, sender)
    return base64.b64encode(sender + nonce + sealed).decode()


def unseal(recipient: X25519PrivateKey, token: str) -> bytes:
    """Opens a sealed value (raises cryptography.exceptions.InvalidTag when it is not for this key)."""
    raw = base64.b64decode(token)
    sender, nonce, sealed = raw[:32], raw[32:44], raw[44:]
    shared = recipient.exchange(X25519PublicKey.from_public_bytes(sender))
    return AESGCM(_key(shared)).decrypt(nonce, sealed, sender)


def seal_subject(recipient: X25519PublicKey, subject: common_pb2.Subject) -> str:
    return seal(recipient, json_format.MessageToJson(subject, indent=None).encode())


def unseal_subject(recipient: X25519PrivateKey, token: str) -> common_pb2.Subject:
    return json_format.Parse(unseal(recipient, token).decode(), common_pb2.Subject())
