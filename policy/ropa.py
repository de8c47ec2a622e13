"""The UK GDPR Article 30 record of processing activities for lateral checks, derived from the agreement
(`lateral dsa ropa`), one section per controller, as Markdown."""

from __future__ import annotations

from policy.agreement import Agreement, Party
from policy.summary import FIELD_WORDS, SCOPE_WORDS

MATCHED_ON = (
    "names and other names, date of birth, gender, address and postcode, UPRN, NHS number: sent by the "
    "requester and compared with the agency's own records inside the agency; never returned"
)
SECURITY = [
    "Each agency's data stays in its own systems; matching runs locally and only a minimal finding leaves.",
    "Mutual TLS between case systems, the hub and every agency, with identities from the federation's "
    "certificates; the agreement is signed by every party and enforced at the hub and again at each agency.",
    "Data minimisation by design: answers carry at most whether known, activity categories, latest date, "
    "count and whom to call, and only the fields the agreement releases; restricted categories are never "
    "disclosed and restricted records are withheld.",
    "Tamper-evident audit of every check and disclosure; subjects recorded as keyed pseudonyms, with their "
    "details encrypted to the auditors.",
    "No personal data in logs, traces, metrics or error messages.",
]


def _recipients(agreement: Agreement, party: Party) -> list[str]:
    out = []
    for permission in agreement.permissions:
        if set(permission.agencies) & set(party.agencies):
            released = ", ".join(FIELD_WORDS[f] for f in permission.release)
            for requester in permission.requesters:
                out.append(
                    f"{agreement.party(requester).name} ({', '.join(permission.roles)}), for "
                    f"{', '.join(permission.purposes)}: {released} [{permission.id}]"
                )
    return out


def ropa(agreement: Agreement) -> str:
    """The record of processing, one section per party that holds data."""
    header = agreement.agreement
    out = [
        f"# Record of processing activities: lateral checks under {agreement.id} v{agreement.version}",
        "",
        f"Data-sharing agreement: {header.title}; in force {header.valid_from} to {header.valid_until}, "
        f"review by {header.review_by}.",
    ]
    for party in agreement.parties:
        if not party.agencies:
            continue
        scopes = sorted(
            {
                SCOPE_WORDS[purpose.subjects]
                for p in agreement.permissions
                if set(p.agencies) & set(party.agencies)
                for pid in p.purposes
                if (purpose := agreement.purpose(pid)) is not None
            }
        )
        purposes = [
            f"{purpose.id}: {purpose.description} (basis: {'; '.join(purpose.lawful_basis)})"
            for purpose in agreement.purposes
            if any(
                purpose.id in p.purposes and set(p.agencies) & set(party.agencies)
                for p in agreement.permissions
            )
        ]
        hidden = sorted(
            {c for r in agreement.restrictions if set(r.agencies) & set(party.agencies) for c in r.categories}
        )
        contact = party.safeguarding_contact
        out += [
            "",
            f"## {party.name} (controller)",
            "",
            f"- **Controller contact**: {contact.name}"
            + "".join(f", {v}" for v in (contact.role, contact.phone, contact.email) if v),
            f"- **Lawful basis**: {'; '.join(party.lawful_basis)}",
            "- **Purposes of processing**: " + ("; ".join(purposes) or "none permitted"),
            "- **Categories of data subjects**: people checked in safeguarding enquiries "
            f"({', '.join(scopes)}) who appear in the records of {', '.join(party.agencies)}",
            f"- **Personal data used for matching**: {MATCHED_ON}",
            "- **Personal data disclosed**: whether the person is known, activity categories, latest "
            "activity date, activity count, the safeguarding contact; each only as the permission releases it"
            + (f"; never: {', '.join(hidden)}" if hidden else ""),
            "- **Recipients**: " + ("; ".join(_recipients(agreement, party)) or "none"),
            "- **Transfers outside the UK**: none",
            f"- **Retention**: audit records of checks and disclosures {header.retention_days} days; source "
            "records under the controller's own retention schedule (Lateral keeps no copy beyond its "
            "in-memory match index)",
            "- **Security measures**: " + " ".join(SECURITY),
        ]
    return "\n".join(out) + "\n"
