"""Releasing only what the agreement allows: a finding stripped to the released fields."""

from __future__ import annotations

from collections.abc import Collection

from protos.lateral.v1 import common_pb2

# Which Finding fields each released field name stands for ("outcome" is always released, with the
# attributes that would resolve a POSSIBLE answer).
_FIELDS = {
    "category": "categories",
    "latest_date": "latest_activity_date",
    "count": "activity_count",
    "people": "people_count",
    "contact": "contact",
}


def release_only(finding: common_pb2.Finding, released: Collection[str]) -> common_pb2.Finding:
    """A copy of finding with every field the agreement does not release cleared."""
    kept = common_pb2.Finding()
    kept.CopyFrom(finding)
    for name, field in _FIELDS.items():
        if (name if name != "people" else "count") not in released:
            kept.ClearField(field)  # type: ignore[arg-type]
    return kept
