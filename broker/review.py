"""Aggregating the agencies' answers: activity counts and whether the check needs multi-agency review."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from broker.config import ReviewSection
from protos.lateral.v1 import broker_pb2, common_pb2

_ACTIVE = {common_pb2.OUTCOME_KNOWN, common_pb2.OUTCOME_WITHHELD}


@dataclass(frozen=True)
class Summary:
    agencies_with_activity: int
    agencies_with_recent_activity: int
    reasons: tuple[broker_pb2.ReviewReason, ...]


def _has_activity(finding: common_pb2.Finding) -> bool:
    if finding.outcome == common_pb2.OUTCOME_WITHHELD:
        return True
    return finding.outcome == common_pb2.OUTCOME_KNOWN and (
        finding.activity_count > 0 or bool(finding.latest_activity_date)
    )


def _recent(finding: common_pb2.Finding, since: dt.date) -> bool:
    # A withheld record is treated as recent: the agency restricts it because it is live.
    if finding.outcome == common_pb2.OUTCOME_WITHHELD:
        return True
    return bool(finding.latest_activity_date) and dt.date.fromisoformat(finding.latest_activity_date) >= since


def summarise(results: Sequence[common_pb2.AgencyResult], rule: ReviewSection, today: dt.date) -> Summary:
    """Counts agencies with activity and applies the review rule."""
    since = today - dt.timedelta(days=rule.window_days)
    active = [r for r in results if r.finding.outcome in _ACTIVE and _has_activity(r.finding)]
    recent = [r for r in active if _recent(r.finding, since)]
    reasons = []
    if len(recent) >= rule.min_agencies:
        reasons.append(
            broker_pb2.ReviewReason(
                rule_id="multi-agency-activity",
                description=(
                    f"activity at {len(recent)} agencies within {rule.window_days} days "
                    f"(review at {rule.min_agencies} or more)"
                ),
            )
        )
    return Summary(len(active), len(recent), tuple(reasons))
