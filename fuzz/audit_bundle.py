"""Fuzz targets for the audit verifier: export bundles as an auditor receives them (JSON bytes), and a valid
bundle with one field changed.

What must hold: verify_bundle returns a Verification, or raises BundleError for a bundle that is not one
(never KeyError, TypeError, binascii.Error...). A valid bundle verifies; the same bundle with any one value
of an event, a checkpoint, a payload, an inclusion proof, the key or the root changed, or with an event
deleted, does not.
"""

from __future__ import annotations

import copy
import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.reader import export_bundle
from audit.rotation import ensure_key
from audit.store import AuditLog
from audit.verify import BundleError, Verification, verify_bundle
from fuzz.draw import Draw

FIRST_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
SECOND_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
# Where a single change must be noticed: fields of every event, checkpoint and inclusion proof.
_EVENT_FIELDS = ("seq", "at", "kind", "payload_sha256", "leaf_hash", "signature")
_CHECKPOINT_FIELDS = ("tree_size", "root_hash", "at", "signature")
_PROOF_FIELDS = ("seq", "tree_size", "proof")


@cache
def _valid() -> str:
    """A small log as JSON: a key, its rotation to a second key, nine events under the last checkpoint."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'audit.db'}"
        log = AuditLog(url, FIRST_KEY, checkpoint_every=3)
        ensure_key(log, FIRST_KEY)
        for n in range(4):
            log.append("check-received", {"n": n, "organisation": "northshire-council"})
        ensure_key(log, SECOND_KEY, previous=FIRST_KEY)
        log.close()
        log = AuditLog(url, SECOND_KEY, checkpoint_every=3)
        for n in range(3):
            log.append("check-completed", {"n": n})
        log.checkpoint()
        bundle = export_bundle(url, FIRST_KEY.public_key())
        log.close()
    return json.dumps(bundle)


def valid_bundle() -> dict[str, Any]:
    """A fresh copy of a valid bundle (built once per process)."""
    bundle: dict[str, Any] = json.loads(_valid())
    return bundle


def verify(bundle: Any) -> Verification | None:
    """verify_bundle, with the one error it may raise; None when it raised it."""
    try:
        result = verify_bundle(bundle)
    except BundleError as error:
        message = str(error)
    else:
        assert isinstance(result, Verification)
        assert result.ok == (not result.problems)
        return result
    assert message.startswith("not an audit bundle: "), "a BundleError does not say what it is"
    return None


def audit_bundle_json(data: bytes) -> None:
    """Target: the bytes of a bundle file, parsed as JSON (what `lateral audit verify --bundle` does)."""
    try:
        bundle = json.loads(data)
    except (ValueError, RecursionError):
        return
    verify(bundle)


def _other(draw: Draw, value: Any) -> Any:
    """A value different from value: the same type changed a little, or another type."""
    kind = draw.integer(0, 5)
    if kind == 0 and isinstance(value, int):
        return value + draw.choice((1, -1, 2**32, -value))
    if kind == 1 and isinstance(value, str):
        at = draw.integer(0, len(value))
        return value[:at] + draw.text(2) + value[at + draw.integer(0, 1) :]
    if kind == 2 and isinstance(value, str) and value:
        at = draw.integer(0, len(value) - 1)
        return value[:at] + draw.choice("0aAZ=+/ \n") + value[at + 1 :]
    if kind == 3 and isinstance(value, list) and value:
        changed = list(value)
        changed[draw.integer(0, len(changed) - 1)] = draw.choice(("", "00" * 32, value[-1], 0))
        return changed
    return draw.choice((None, 0, -1, 1.5, True, "", draw.text(10), [], {}, [value], {"x": value}))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and json.dumps(a) == json.dumps(b)


def tamper(draw: Draw, bundle: dict[str, Any]) -> bool:
    """Changes one value of the bundle (or deletes an event) as the bytes say; False if nothing changed."""
    where = draw.integer(0, 6)
    if where == 0:
        target: Any = draw.choice(bundle["events"])
        field: Any = draw.choice(_EVENT_FIELDS)
    elif where == 1:
        target, field = draw.choice(bundle["checkpoints"]), draw.choice(_CHECKPOINT_FIELDS)
    elif where == 2:
        target, field = bundle["payloads"], draw.choice(sorted(bundle["payloads"]))
    elif where == 3:
        target, field = draw.choice(bundle["inclusion_proofs"]), draw.choice(_PROOF_FIELDS)
    elif where == 4:
        del bundle["events"][draw.integer(0, len(bundle["events"]) - 1)]
        return True
    else:
        target, field = bundle, draw.choice(("public_key_ed25519", "root_at_latest_checkpoint"))
    before = copy.deepcopy(target[field])
    target[field] = _other(draw, before)
    return not _same(before, target[field])


def audit_bundle_fields(data: bytes) -> None:
    """Target: a valid bundle with one value changed (or one event deleted) as the bytes say."""
    bundle = valid_bundle()
    if not data:
        result = verify(bundle)
        assert result is not None, "a valid bundle is refused"
        assert result.ok, "a valid bundle does not verify"
        return
    if tamper(Draw(data), bundle):
        result = verify(json.loads(json.dumps(bundle)))
        assert result is None or not result.ok, "a changed bundle verifies"
