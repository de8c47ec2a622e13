"""Aggregating the agencies' answers: activity counts and whether the check needs multi-agency review,
under the agreement's review rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from policy.agreement import ReviewRule
from protos.lateral.v1 import broker_pb2, common_pb2

_ACTIVE = {common_pb2.OUTCOME_KNOWN, common_pb2.OUTCOME_WITHHELD}
DEFAULT_WINDOW_DAYS = 365


@dataclass(frozen=True)
class Summary:
    agencies_with_activity: int
    agencies_with_recent_activity: int
    window_days: int
    reasons: tuple[broker_pb2.ReviewReason, ...]


def _has_activity(finding: common_pb2.Finding, counted: bool) -> bool:
    """KNOWN with activity, or WITHHELD. When the count is not released, KNOWN is taken as activity: review
    must not miss what the caller was not told."""
    if finding.outcome == common_pb2.OUTCOME_WITHHELD:
        return True
    return finding.outcome == common_pb2.OUTCOME_KNOWN and (
        not counted or finding.activity_count > 0 or bool(finding.latest_activity_date)
    )


def _recent(finding: common_pb2.Finding, since: dt.date) -> bool:
    # A withheld record is treated as recent: the agency restricts it because it is live. Without a released
    # date, activity counts as recent: the permission chose not to say when, and review must not miss it.
    if finding.outcome == common_pb2.OUTCOME_WITHHELD or not finding.latest_activity_date:
        return True
    return dt.date.fromisoformat(finding.latest_activity_date) >= since


def summarise(
    results: Sequence[common_pb2.AgencyResult],
    rules: Sequence[ReviewRule],
    today: dt.date,
    counted: Collection[str] = (),
) -> Summary:
    """Counts agencies with activity and applies every review rule.

    Args:
        counted: the agencies whose activity count was released to this caller.
    """
    counting = [r for r in rules if r.min_agencies is not None]
    window = counting[0].window_days if counting else DEFAULT_WINDOW_DAYS
    active = [
        r
        for r in results
        if r.finding.outcome in _ACTIVE and _has_activity(r.finding, r.agency_id in counted)
    ]
    recent = [r for r in active if _recent(r.finding, today - dt.timedelta(days=window))]
    reasons = []
    for rule in rules:
        if rule.min_agencies is not None:
            since = today - dt.timedelta(days=rule.window_days)
            n = sum(1 for r in active if _recent(r.finding, since))
            if n >= rule.min_agencies:
                reasons.append(
                    broker_pb2.ReviewReason(
                        rule_id=rule.id,
                        description=(
                            f"{rule.description} (activity at {n} agencies within {rule.window_days} days)"
                        ),
                    )
                )
        else:
            found = sorted({c for r in active for c in r.finding.categories if c in rule.categories})
            if found:
                reasons.append(
                    broker_pb2.ReviewReason(
                        rule_id=rule.id, description=f"{rule.description} ({', '.join(found)})"
                    )
                )
    return Summary(len(active), len(recent), window, tuple(reasons))
