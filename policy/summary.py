"""An agreement in plain English: who may ask whom for what, what is never disclosed, when a check goes to
review (`lateral dsa check`)."""

from __future__ import annotations

import datetime as dt

from policy.agreement import Agreement, Permission
from policy.signing import Status

FIELD_WORDS = {
    "outcome": "whether known",
    "category": "activity categories",
    "latest_date": "latest activity date",
    "count": "activity count",
    "contact": "safeguarding contact",
    "identity": "who a review candidate is",
}
SCOPE_WORDS = {"children": "children only", "adults": "adults only", "any": "children and adults"}


def hours_words(permission: Permission) -> str:
    hours = permission.hours
    if hours is None:
        return "at any time"
    return f"{', '.join(d.title() for d in hours.days)} {hours.start}-{hours.end}"


def permission_words(agreement: Agreement, permission: Permission) -> str:
    names = ", ".join(agreement.party(r).name for r in permission.requesters)
    purposes = ", ".join(
        f"{p} ({SCOPE_WORDS[purpose.subjects]})"
        for p in permission.purposes
        if (purpose := agreement.purpose(p)) is not None
    )
    released = ", ".join(FIELD_WORDS[f] for f in permission.release)
    lines = [
        f"{permission.id}: {permission.description}",
        f"    {names}, as {' or '.join(permission.roles)},",
        f"    may ask {', '.join(permission.agencies)} for {purposes}, {hours_words(permission)}.",
        f"    Released: {released}; activity from the last {permission.lookback_days} days.",
    ]
    if permission.obligations:
        lines.append(f"    Obligations: {', '.join(permission.obligations)}.")
    return "\n".join(lines)


def status_words(agreement: Agreement, today: dt.date) -> str:
    header = agreement.agreement
    if today < header.valid_from:
        return f"NOT YET IN FORCE (from {header.valid_from})"
    if today > header.valid_until:
        return f"EXPIRED on {header.valid_until}"
    if today > header.review_by:
        return f"PAST ITS REVIEW DATE ({header.review_by}): refused until reviewed and re-signed"
    return f"in force; review due in {(header.review_by - today).days} days"


def summary(agreement: Agreement, signatures: dict[str, Status], today: dt.date) -> str:
    """The whole agreement in plain English."""
    header = agreement.agreement
    out = [
        f"{header.title}",
        f"Agreement {agreement.id}, version {agreement.version}: {status_words(agreement, today)}.",
        f"Valid {header.valid_from} to {header.valid_until}; review by {header.review_by}. "
        f"Deployment: {header.deployment}. Audit records kept {header.retention_days} days. "
        f"Hours are {header.timezone} time.",
        "",
        "Parties:",
    ]
    for party in agreement.parties:
        holds = f"holds {', '.join(party.agencies)}" if party.agencies else "asks only"
        out.append(f"  {party.id}: {party.name} ({party.kind}; {holds}); signature {signatures[party.id]}")
    out += ["", "Purposes:"]
    for purpose in agreement.purposes:
        needs = [
            n
            for n, required in (
                ("a case reference", purpose.requires_case_ref),
                ("a justification", purpose.requires_justification),
            )
            if required
        ]
        out.append(
            f"  {purpose.id}: {purpose.description} ({SCOPE_WORDS[purpose.subjects]}; "
            f"needs {' and '.join(needs) or 'nothing more'}). Basis: {'; '.join(purpose.lawful_basis)}."
        )
    out += ["", "Who may ask whom, for what (nothing else is allowed):"]
    out += [f"  {permission_words(agreement, p)}" for p in agreement.permissions]
    hiding = [r for r in agreement.restrictions if r.categories]
    refusing = [r for r in agreement.restrictions if not r.categories]
    if hiding or refusing:
        out += ["", "Restrictions (these override every permission):"]
    for r in hiding:
        narrowed = _narrowed(r.purposes, r.requesters)
        hides = ", ".join(r.categories)
        out.append(f"  {r.id}: {', '.join(r.agencies)} never disclose {hides}{narrowed}: {r.description}")
    for r in refusing:
        narrowed = _narrowed(r.purposes, r.requesters)
        out.append(f"  {r.id}: {', '.join(r.agencies)} are not asked{narrowed}: {r.description}")
    out.append("  Records an agency marks restricted come back WITHHELD (call the agency).")
    if agreement.review:
        out += ["", "Review required when:"]
    for rule in agreement.review:
        when = (
            f"activity at {rule.min_agencies} or more agencies within {rule.window_days} days"
            if rule.min_agencies is not None
            else f"any of {', '.join(rule.categories)} is reported"
        )
        out.append(f"  {rule.id}: {when}: {rule.description}")
    if agreement.linkage is not None:
        out += ["", *linkage_words(agreement)]
    return "\n".join(out)


def linkage_words(agreement: Agreement) -> list[str]:
    """The [linkage] section in plain English."""
    terms = agreement.linkage
    assert terms is not None
    always = f", or with any of {', '.join(terms.always_review)}" if terms.always_review else ""
    return [
        f"Proactive identification (purpose {terms.purpose}):",
        f"  {', '.join(terms.agencies)} publish, every {terms.publish_every_hours:g} hours, encodings",
        f"  (hardened Bloom filters) of the people with activity in the last {terms.lookback_days} days,",
        f"  with its dates and categories, to the linkage service {terms.service},",
        "  which never sees who they are. A person whose records link is a review candidate with activity",
        f"  at {terms.min_agencies} or more agencies within {terms.window_days} days{always}. Who a",
        "  candidate is, only agencies permitted to release 'identity' for the purpose say.",
    ]


def _narrowed(purposes: tuple[str, ...], requesters: tuple[str, ...]) -> str:
    parts = []
    if purposes:
        parts.append(f"for {', '.join(purposes)}")
    if requesters:
        parts.append(f"when asked by {', '.join(requesters)}")
    return (" " + " ".join(parts)) if parts else ""
