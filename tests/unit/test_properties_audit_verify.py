"""Properties of the audit verifier (hypothesis): a valid export bundle verifies; any one value of an event, a
checkpoint, a payload, an inclusion proof, the key or the root changed, or an event deleted, does not; and
whatever arrives, verify_bundle returns a Verification or raises BundleError naming the part."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.verify import verify_bundle
from fuzz.audit_bundle import audit_bundle_fields, audit_bundle_json, valid_bundle, verify

PARTS = {
    "events": ("seq", "at", "kind", "payload_sha256", "leaf_hash", "signature"),
    "checkpoints": ("tree_size", "root_hash", "at", "signature"),
    "inclusion_proofs": ("seq", "tree_size", "proof"),
}


def test_the_valid_bundle_verifies_and_its_latest_checkpoint_covers_every_event() -> None:
    bundle = valid_bundle()
    result = verify_bundle(bundle)
    assert (result.ok, result.size) == (True, 9)
    assert result.checkpoints >= 2
    assert max(c["tree_size"] for c in bundle["checkpoints"]) == 9


def _other(value: Any) -> st.SearchStrategy[Any]:
    """Values of the same type as value, different from it."""
    if isinstance(value, int):
        return st.integers(-(2**63), 2**63).filter(lambda v: v != value)
    if isinstance(value, list):
        return st.lists(st.text("0123456789abcdef", min_size=64, max_size=64), max_size=6).filter(
            lambda v: v != value
        )
    return st.text(max_size=90).filter(lambda v: v != value)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(PARTS)), st.data())
def test_any_one_value_of_an_event_checkpoint_or_proof_changed_is_detected(
    part: str, data: st.DataObject
) -> None:
    bundle = valid_bundle()
    rows = bundle[part]
    row = rows[data.draw(st.integers(0, len(rows) - 1), label="row")]
    field = data.draw(st.sampled_from(PARTS[part]), label="field")
    row[field] = data.draw(_other(row[field]) | st.sampled_from([_edited(row[field])]), label="value")
    assert not verify_bundle(bundle).ok


def _edited(value: Any) -> Any:
    """value with a little added: for text, a line break, which a lenient decoder would skip."""
    if isinstance(value, str):
        return value + "\n"
    return value + 1 if isinstance(value, int) else [*value, value[0]]


@pytest.mark.parametrize("seq", range(1, 10))
def test_deleting_any_event_or_its_payload_changes_what_verifies(seq: int) -> None:
    bundle = valid_bundle()
    del bundle["events"][seq - 1]
    assert verify_bundle(bundle).first_bad_seq == seq
    bundle = valid_bundle()
    bundle["payloads"][str(seq)] += " "
    assert verify_bundle(bundle).first_bad_seq == seq


@pytest.mark.parametrize(
    ("field", "value"),
    [("public_key_ed25519", "A" * 43 + "="), ("root_at_latest_checkpoint", "00" * 32)],
)
def test_another_key_or_root_is_detected(field: str, value: str) -> None:
    bundle = valid_bundle()
    bundle[field] = value
    assert not verify_bundle(bundle).ok


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=12))
def test_any_bytes_as_a_one_value_change_pass_the_fuzz_target(data: bytes) -> None:
    audit_bundle_fields(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    JSON
    | st.fixed_dictionaries(
        {},
        optional={
            "public_key_ed25519": st.just(valid_bundle()["public_key_ed25519"]) | JSON,
            "payloads": st.dictionaries(st.text(max_size=3), JSON, max_size=2),
            "events": st.lists(st.dictionaries(st.sampled_from(PARTS["events"]), JSON), max_size=2),
            "checkpoints": st.lists(st.dictionaries(st.sampled_from(PARTS["checkpoints"]), JSON), max_size=2),
            "inclusion_proofs": JSON,
            "root_at_latest_checkpoint": JSON,
        },
    )
)
def test_anything_is_verified_or_refused_as_not_a_bundle(bundle: Any) -> None:
    verify(bundle)  # asserts a BundleError says so, and a Verification is ok only without problems


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_as_a_bundle_file_pass_the_fuzz_target(data: bytes) -> None:
    audit_bundle_json(data)
