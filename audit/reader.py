"""Reading an audit log for auditors: events with their payloads, filters, an export bundle and the report
of patterns auditors look for."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.merkle import consistency_proof, inclusion_proof, leaf_hash, root
from audit.store import checkpoints, engine_for, events, leaf_data, payloads


@dataclass(frozen=True)
class Event:
    seq: int
    at: str
    kind: str
    payload: dict[str, Any] | None  # None once removed at the end of retention


@dataclass(frozen=True)
class Filters:
    since: str = ""
    until: str = ""
    kind: str = ""
    organisation: str = ""
    user: str = ""
    purpose: str = ""
    agency: str = ""
    case_ref: str = ""
    outcome: str = ""
    pseudonym: str = ""

    def keep(self, event: Event) -> bool:
        p = event.payload or {}
        if (self.since and event.at < self.since) or (self.until and event.at >= self.until):
            return False
        if self.kind and event.kind != self.kind:
            return False
        for field in ("organisation", "user", "purpose", "case_ref"):
            wanted = getattr(self, field)
            if wanted and p.get(field) != wanted:
                return False
        if self.pseudonym and p.get("subject_pseudonym") != self.pseudonym:
            return False
        results: dict[str, Any] = p.get("results") or {}
        if self.agency and self.agency not in results and self.agency not in p.get("agencies_asked", []):
            return False
        return not (self.outcome and self.outcome.upper() not in {r.get("outcome") for r in results.values()})


def read_events(url: str, filters: Filters = Filters()) -> list[Event]:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            query = sa.select(events.c.seq, events.c.at, events.c.kind, payloads.c.body).outerjoin(
                payloads, payloads.c.seq == events.c.seq
            )
            rows = conn.execute(query.order_by(events.c.seq)).all()
    finally:
        engine.dispose()
    found = (Event(int(r.seq), r.at, r.kind, json.loads(r.body) if r.body else None) for r in rows)
    return [e for e in found if filters.keep(e)]


def export_bundle(url: str, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Everything needed to verify the log offline: events, payloads, checkpoints with consistency proofs
    between them, an inclusion proof of every event in the latest checkpoint, and the public key."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            event_rows = [dict(r._mapping) for r in conn.execute(sa.select(events).order_by(events.c.seq))]
            bodies = {str(r.seq): r.body for r in conn.execute(sa.select(payloads))}
            checkpoint_rows = [
                dict(r._mapping)
                for r in conn.execute(sa.select(checkpoints).order_by(checkpoints.c.tree_size))
            ]
    finally:
        engine.dispose()
    leaves = [leaf_hash(leaf_data(r["seq"], r["at"], r["kind"], r["payload_sha256"])) for r in event_rows]
    sizes = [int(c["tree_size"]) for c in checkpoint_rows if int(c["tree_size"]) <= len(leaves)]
    consistency = [
        {"from": a, "to": b, "proof": [h.hex() for h in consistency_proof(a, leaves[:b])]}
        for a, b in itertools.pairwise(sizes)
    ]
    latest = sizes[-1] if sizes else 0
    inclusion = [
        {"seq": i + 1, "tree_size": latest, "proof": [h.hex() for h in inclusion_proof(i, leaves[:latest])]}
        for i in range(latest)
    ]
    key = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "format": "lateral-audit-bundle/1",
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "public_key_ed25519": base64.b64encode(key).decode(),
        "events": event_rows,
        "payloads": bodies,
        "checkpoints": checkpoint_rows,
        "consistency_proofs": consistency,
        "inclusion_proofs": inclusion,
        "root_at_latest_checkpoint": root(leaves[:latest]).hex() if latest else "",
    }


def report(found: Iterable[Event], timezone: str = "Europe/London") -> dict[str, Any]:
    """Volumes per user and organisation, checks out of hours (before 08:00, after 18:00, weekends),
    repeated checks on one subject by one user, and denials."""
    zone = ZoneInfo(timezone)
    checks = [e for e in found if e.kind in ("check-received", "check-denied", "check-invalid") and e.payload]
    received = [e for e in checks if e.kind == "check-received"]
    per_user = Counter(f"{e.payload['organisation']}/{e.payload['user']}" for e in received if e.payload)
    per_org = Counter(str(e.payload["organisation"]) for e in received if e.payload)

    def out_of_hours(e: Event) -> bool:
        local = dt.datetime.fromisoformat(e.at).astimezone(zone)
        return local.weekday() >= 5 or not 8 <= local.hour < 18

    repeats = Counter(
        (str(e.payload["organisation"]), str(e.payload["user"]), str(e.payload.get("subject_pseudonym", "")))
        for e in received
        if e.payload
    )
    case_refs = Counter(
        str(e.payload.get("case_ref", "")) for e in received if e.payload and e.payload.get("case_ref")
    )
    return {
        "checks": len(received),
        "per_user": dict(per_user.most_common()),
        "per_organisation": dict(per_org.most_common()),
        "out_of_hours": [e.seq for e in received if out_of_hours(e)],
        "repeated_subject_by_one_user": [
            {"organisation": o, "user": u, "subject_pseudonym": s, "checks": n}
            for (o, u, s), n in repeats.most_common()
            if n > 1
        ],
        # A proxy for "no later case activity" until case systems share theirs: case references checked once
        # and never again (not even by another agency's check), which is how fishing tends to look.
        "case_refs_used_once": sorted(ref for ref, n in case_refs.items() if n == 1),
        "denied": [
            {"seq": e.seq, "reason": (e.payload or {}).get("reason", "INVALID_ARGUMENT")}
            for e in checks
            if e.kind != "check-received"
        ],
    }
