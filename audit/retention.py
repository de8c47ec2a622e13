"""The end of retention: payloads older than the agreement's retention period are deleted; the events'
leaves, signatures and every proof stay valid (they commit to the payload's digest, not the payload)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from audit.countersign import KIND as COUNTERSIGNED
from audit.rotation import KEY_EVENTS
from audit.store import AuditLog, events, payloads

# Kept whatever their age: verification needs the key chain, and countersignatures are the agencies' proof.
KEPT = (*KEY_EVENTS, COUNTERSIGNED)


def prune(log: AuditLog, retention_days: int, now: dt.datetime | None = None) -> int:
    """Deletes the payloads of events older than retention_days; records the pruning; returns how many."""
    cutoff = ((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=retention_days)).isoformat(
        timespec="microseconds"
    )
    old = sa.select(events.c.seq).where(events.c.at < cutoff, events.c.kind.not_in(KEPT))
    with log.engine.begin() as conn:
        removed = conn.execute(payloads.delete().where(payloads.c.seq.in_(old))).rowcount
    log.append(
        "audit-pruned", {"before": cutoff, "payloads_removed": removed, "retention_days": retention_days}
    )
    return int(removed)
