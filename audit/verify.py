"""Verifying an audit log: every event's leaf and signature, every payload still held, every checkpoint's
signature and root, and consistency between checkpoints. Names the first bad sequence number.

Works on rows from the database or from an export bundle alike.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.merkle import Frontier, leaf_hash
from audit.rotation import KEY_EVENTS, key_from_text, key_text
from audit.store import checkpoint_data, checkpoints, engine_for, events, leaf_data, payloads


class BundleError(ValueError):
    """An export bundle is not one: a part is missing or of the wrong type. The message names the part."""


@dataclass(frozen=True)
class Problem:
    seq: int | None
    what: str

    def __str__(self) -> str:
        return f"event {self.seq}: {self.what}" if self.seq is not None else self.what


@dataclass
class Verification:
    size: int = 0
    checkpoints: int = 0
    payloads_removed: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None


def _signed(key: Ed25519PublicKey, signature: str, data: bytes) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, data)
    except (InvalidSignature, ValueError):
        return False
    # The signature as written, not only what it decodes to: a line break or other padding bits decode to the
    # same bytes, and would leave an altered row verifying.
    return base64.b64encode(raw).decode() == signature


def verify_rows(
    event_rows: Iterable[Mapping[str, Any]],
    bodies: Mapping[int, str],
    checkpoint_rows: Iterable[Mapping[str, Any]],
    key: Ed25519PublicKey,
) -> Verification:
    """Verifies a log given as rows (ordered by seq) and the payloads still held. `key` is the log's first
    signing key, which the auditor trusts; key rotations signed by the key in force are followed."""
    result = Verification()
    leaves: list[bytes] = []
    expected = 1
    chain = [key]
    for row in event_rows:
        seq = int(row["seq"])
        if seq != expected:
            what = "is missing (deleted)" if seq > expected else "is out of order"
            result.problems.append(Problem(expected, what))
        expected = max(expected, seq) + 1
        leaf = leaf_hash(leaf_data(seq, row["at"], row["kind"], row["payload_sha256"]))
        leaves.append(leaf)
        signed = leaf.hex() == row["leaf_hash"] and _signed(chain[-1], row["signature"], leaf)
        if not signed:
            result.problems.append(Problem(seq, "was altered: its leaf does not match its signature"))
        body = bodies.get(seq)
        if body is None:
            result.payloads_removed += 1
        elif hashlib.sha256(body.encode()).hexdigest() != row["payload_sha256"]:
            result.problems.append(Problem(seq, "has an altered payload"))
        elif signed and row["kind"] in KEY_EVENTS:
            named = key_from_text(json.loads(body)["public_key"])
            if row["kind"] == "key-rotated":
                chain.append(named)  # handed over by the key in force: the new key signs what follows
            elif key_text(named) != key_text(chain[-1]):
                result.problems.append(Problem(seq, "names another signing key than the one trusted"))
    result.size = len(leaves)
    # Each checkpoint's root is recomputed from the one list of leaves, in order of size, with a frontier
    # that grows by the leaves between checkpoints: O(n log n) in all, where recomputing each root from the
    # first leaf made a long log's verification quadratic (a log of 20,000 events took 6.3 s). Roots of
    # prefixes of one list are consistent by construction: no separate consistency proof is needed.
    frontier = Frontier()
    previous = 0
    for cp in sorted(checkpoint_rows, key=lambda r: int(r["tree_size"])):
        size, root_hash = int(cp["tree_size"]), str(cp["root_hash"])
        result.checkpoints += 1
        if not any(_signed(k, cp["signature"], checkpoint_data(size, root_hash, cp["at"])) for k in chain):
            result.problems.append(
                Problem(size, f"ends a checkpoint (size {size}) not signed by the log's key: it was replaced")
            )
            continue
        if size > len(leaves):
            result.problems.append(
                Problem(
                    len(leaves) + 1, f"is missing: the log was truncated (a checkpoint covers {size} events)"
                )
            )
            continue
        while frontier.size < size:
            frontier.append(leaves[frontier.size])
        if frontier.root().hex() != root_hash:
            first = previous + 1
            # Name the range only when no event in it was already named (the signatures are more precise).
            located = any(p.seq is not None and first <= p.seq <= size for p in result.problems)
            result.problems.append(
                Problem(
                    None if located else first, f"the events to {size} do not match the checkpoint at {size}"
                )
            )
            continue
        previous = size
    return result


def verify_log(url: str, key: Ed25519PublicKey) -> Verification:
    """Verifies the log in a database."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            event_rows = [dict(r._mapping) for r in conn.execute(sa.select(events).order_by(events.c.seq))]
            bodies = {int(r.seq): r.body for r in conn.execute(sa.select(payloads))}
            checkpoint_rows = [dict(r._mapping) for r in conn.execute(sa.select(checkpoints))]
    finally:
        engine.dispose()
    return verify_rows(event_rows, bodies, checkpoint_rows, key)


# The parts of a bundle verify_bundle reads, and the type of each field it reads in them.
_EVENT = {"seq": int, "at": str, "kind": str, "payload_sha256": str, "leaf_hash": str, "signature": str}
_CHECKPOINT = {"tree_size": int, "root_hash": str, "at": str, "signature": str}
_INCLUSION = {"seq": int, "tree_size": int, "proof": list}
_TYPE_NAMES = {int: "an integer", str: "a string", list: "a list"}


def _rows(bundle: dict[str, Any], part: str, fields: dict[str, type]) -> list[dict[str, Any]]:
    rows = bundle.get(part, [] if part == "inclusion_proofs" else None)
    if not isinstance(rows, list):
        raise BundleError(f"not an audit bundle: {part} must be a list")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BundleError(f"not an audit bundle: {part}[{i}] must be an object")
        for name, kind in fields.items():
            value = row.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise BundleError(f"not an audit bundle: {part}[{i}].{name} must be {_TYPE_NAMES[kind]}")
    return rows


def bundle_key(bundle: dict[str, Any]) -> Ed25519PublicKey:
    """The log's first signing key as a bundle carries it: it proves nothing until compared with the key the
    auditor trusts (`lateral audit verify --bundle --public-key`).

    Raises:
        BundleError: the bundle carries no Ed25519 key.
    """
    try:
        return Ed25519PublicKey.from_public_bytes(
            base64.b64decode(bundle["public_key_ed25519"], validate=True)
        )
    except (KeyError, TypeError, ValueError):
        raise BundleError(
            "not an audit bundle: public_key_ed25519 must be an Ed25519 key in base64"
        ) from None


def _payloads(bundle: dict[str, Any]) -> dict[int, str]:
    bodies = bundle.get("payloads")
    if not isinstance(bodies, dict):
        raise BundleError("not an audit bundle: payloads must be an object")
    for seq, body in bodies.items():
        if not re.fullmatch(r"[1-9][0-9]*", seq) or not isinstance(body, str):
            raise BundleError("not an audit bundle: payloads must map sequence numbers to strings")
    return {int(seq): body for seq, body in bodies.items()}


def _hashes(texts: list[Any]) -> list[bytes] | None:
    """SHA-256 hashes from hex; None when one is not one."""
    if not all(isinstance(t, str) and re.fullmatch(r"[0-9a-f]{64}", t) for t in texts):
        return None
    return [bytes.fromhex(t) for t in texts]


def verify_bundle(bundle: Any) -> Verification:
    """Verifies an export bundle offline, with the public key it carries, including its inclusion proofs.

    Any change to what the bundle proves is a problem in the result (ok is False).

    Raises:
        BundleError: the bundle is not one: a part is missing or of the wrong type (the message names it).
    """
    from audit.merkle import verify_inclusion

    if not isinstance(bundle, dict):
        raise BundleError("not an audit bundle: expected an object")
    key = bundle_key(bundle)
    bodies = _payloads(bundle)
    event_rows = _rows(bundle, "events", _EVENT)
    checkpoint_rows = _rows(bundle, "checkpoints", _CHECKPOINT)
    result = verify_rows(event_rows, bodies, checkpoint_rows, key)
    # The proofs are of inclusion in the latest checkpoint, whose size and root its signature covers: a root
    # or a tree size of the bundle's own is not evidence (a proof for 9 events also fits 10 events' shape).
    latest = max(checkpoint_rows, key=lambda r: int(r["tree_size"]), default=None)
    size, root_hash = (latest["tree_size"], latest["root_hash"]) if latest else (0, "")
    if bundle.get("root_at_latest_checkpoint") != root_hash:
        result.problems.append(Problem(None, f"the bundle's latest root is not the checkpoint's at {size}"))
    expected = _hashes([root_hash])
    by_seq = {r["seq"]: r for r in event_rows}
    for item in _rows(bundle, "inclusion_proofs", _INCLUSION):
        seq = item["seq"]
        row = by_seq.get(seq)
        leaf = leaf_hash(leaf_data(row["seq"], row["at"], row["kind"], row["payload_sha256"])) if row else b""
        proof = _hashes(item["proof"])
        if (
            item["tree_size"] != size
            or proof is None
            or expected is None
            or not verify_inclusion(seq - 1, size, leaf, proof, expected[0])
        ):
            result.problems.append(Problem(seq, "is not included in the latest checkpoint"))
    return result
