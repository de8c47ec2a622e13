"""An agency countersigns the broker's checkpoints: having verified the broker's exported log, and that it
is consistent with the checkpoint the agency countersigned last time, the agency records the broker's tree
head in its own signed log. The broker can then no longer rewrite its history unnoticed, even with its own
key: the agencies hold signed copies of its past tree heads.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.merkle import consistency_proof, leaf_hash, verify_consistency
from audit.reader import read_events
from audit.store import AuditLog, leaf_data
from audit.verify import BundleError, verify_bundle

KIND = "checkpoint-countersigned"


@dataclass(frozen=True)
class Countersigned:
    tree_size: int
    root_hash: str
    previous_size: int


class CountersignError(Exception):
    """The broker's log cannot be countersigned: the message says why."""


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:32]


def countersign(
    bundle: dict[str, Any], broker_key: Ed25519PublicKey, log: AuditLog, url: str
) -> Countersigned:
    """Verifies the broker's bundle and records its latest checkpoint in the agency's log.

    Raises:
        CountersignError: the bundle is not the broker's, does not verify, or rewrites what was countersigned.
    """
    try:
        result = verify_bundle(bundle)
    except BundleError as error:
        raise CountersignError(str(error)) from None
    carried = Ed25519PublicKey.from_public_bytes(base64.b64decode(bundle["public_key_ed25519"]))
    if fingerprint(carried) != fingerprint(broker_key):
        raise CountersignError("the bundle is signed by another key than the broker's")
    if not result.ok:
        raise CountersignError(f"the broker's log does not verify: first bad event {result.first_bad_seq}")
    if not bundle["checkpoints"]:
        raise CountersignError("the broker's log has no checkpoint yet")
    latest = max(bundle["checkpoints"], key=lambda c: int(c["tree_size"]))
    size, root_hash = int(latest["tree_size"]), str(latest["root_hash"])
    earlier = [
        e.payload
        for e in read_events(url)
        if e.kind == KIND and e.payload and e.payload.get("broker_key") == fingerprint(broker_key)
    ]
    previous_size = 0
    if earlier:
        previous = earlier[-1]
        previous_size = int(previous["tree_size"])
        if previous_size > size:
            raise CountersignError(
                f"the broker's log shrank: {previous_size} events countersigned, {size} now"
            )
        leaves = [
            leaf_hash(leaf_data(r["seq"], r["at"], r["kind"], r["payload_sha256"])) for r in bundle["events"]
        ]
        proof = consistency_proof(previous_size, leaves[:size])
        if not verify_consistency(
            previous_size, size, bytes.fromhex(previous["root_hash"]), bytes.fromhex(root_hash), proof
        ):
            raise CountersignError(
                f"the broker's log rewrote history: its first {previous_size} events differ from what was "
                "countersigned"
            )
    log.append(
        KIND,
        {
            "broker_key": fingerprint(broker_key),
            "tree_size": size,
            "root_hash": root_hash,
            "checkpoint_at": latest["at"],
            "consistent_from": previous_size,
        },
    )
    return Countersigned(size, root_hash, previous_size)
