"""Rendering answers for people: a check (a table per agency and a plain-words summary), and proactive
identification's candidates and reviews."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from protos.lateral.v1 import broker_pb2, common_pb2

OUTCOME_WORDS = {
    common_pb2.OUTCOME_KNOWN: ("Known", "bold red"),
    common_pb2.OUTCOME_NOT_KNOWN: ("Not known", "green"),
    common_pb2.OUTCOME_POSSIBLE: ("Possible match", "yellow"),
    common_pb2.OUTCOME_WITHHELD: ("Withheld", "bold magenta"),
    common_pb2.OUTCOME_DENIED: ("Not permitted", "dim"),
    common_pb2.OUTCOME_UNAVAILABLE: ("Unavailable", "bold yellow"),
    common_pb2.OUTCOME_TIMEOUT: ("No answer in time", "bold yellow"),
}
ATTRIBUTE_WORDS = {
    common_pb2.ATTRIBUTE_GIVEN_NAMES: "given names",
    common_pb2.ATTRIBUTE_FAMILY_NAME: "family name",
    common_pb2.ATTRIBUTE_DATE_OF_BIRTH: "date of birth",
    common_pb2.ATTRIBUTE_GENDER: "gender",
    common_pb2.ATTRIBUTE_POSTCODE: "postcode",
    common_pb2.ATTRIBUTE_ADDRESS: "address",
    common_pb2.ATTRIBUTE_NHS_NUMBER: "NHS number",
    common_pb2.ATTRIBUTE_OTHER_NAMES: "other names",
}


def _what(finding: common_pb2.Finding, status: common_pb2.AgencyStatus) -> str:
    outcome = finding.outcome
    if outcome == common_pb2.OUTCOME_KNOWN:
        parts = []
        if finding.people_count:
            parts.append(f"{finding.people_count} {'person' if finding.people_count == 1 else 'people'} here")
        if finding.latest_activity_date:
            parts.append(f"Latest {finding.latest_activity_date}")
        if finding.activity_count:
            parts.append(f"{finding.activity_count} in all")
        if finding.categories:
            parts.append(", ".join(finding.categories))
        return "; ".join(parts) or "Record held; no activity that the agreement lets the agency report"
    if outcome == common_pb2.OUTCOME_NOT_KNOWN:
        return "No activity reported"
    if outcome == common_pb2.OUTCOME_POSSIBLE:
        extra = ", ".join(ATTRIBUTE_WORDS[a] for a in finding.resolving_attributes)
        return (
            f"Could be this person: add {extra} to decide"
            if extra
            else "Could be this person: call to confirm"
        )
    if outcome == common_pb2.OUTCOME_WITHHELD:
        return "The agency restricts this record: call its safeguarding contact"
    if outcome == common_pb2.OUTCOME_DENIED:
        clauses = f" [{', '.join(status.clause_ids)}]" if status.clause_ids else ""
        detail = status.detail or "the data-sharing agreement does not permit it"
        return f"{detail[:1].upper()}{detail[1:]}{clauses}"
    return f"Ask again later or call the agency ({status.detail})"


def _contact(contact: common_pb2.Contact) -> str:
    parts = [contact.name + (f", {contact.role}" if contact.role else ""), contact.phone, contact.email]
    return "\n".join(p for p in parts if p)


def render_check(response: broker_pb2.CheckResponse, console: Console) -> None:
    """Prints the answer as a table with one row per agency, then the summary."""
    table = Table(title=f"Lateral check {response.check_id}", show_lines=True, expand=True)
    table.add_column("Agency", style="bold", ratio=2)
    table.add_column("Outcome", ratio=2)
    table.add_column("What they hold", ratio=4)
    table.add_column("Whom to call", ratio=3)
    for row in response.results:
        words, style = OUTCOME_WORDS.get(row.finding.outcome, ("Unknown", ""))
        table.add_row(
            row.agency_name,
            Text(words, style=style),
            _what(row.finding, row.status),
            _contact(row.finding.contact),
        )
    console.print(table)
    summary = (
        f"Known to {response.agencies_with_activity} of {len(response.results)} agencies with activity; "
        f"{response.agencies_with_recent_activity} within the last {response.review_window_days} days."
    )
    if response.agreement:
        summary += f" Under agreement {response.agreement}."
    if response.review_required:
        reasons = "\n".join(f"- {r.description} [{r.rule_id}]" for r in response.review_reasons)
        console.print(Panel(Group(Text(summary), Text(reasons)), title="REVIEW REQUIRED", style="bold red"))
    else:
        console.print(summary)


def render_candidates(response: broker_pb2.ListReviewCandidatesResponse, console: Console) -> None:
    """One row per candidate: its pseudonym, priority, agencies with dates and categories, and why."""
    linked = (
        response.linked_at.ToDatetime().isoformat(timespec="minutes")
        if response.HasField("linked_at")
        else "-"
    )
    table = Table(title=f"Review candidates (linked {linked})", show_lines=True, expand=True)
    table.add_column("Candidate", style="bold", ratio=2)
    table.add_column("Priority", justify="right", ratio=1)
    table.add_column("Agencies: latest activity, categories", ratio=4)
    table.add_column("Why", ratio=5)
    for c in response.candidates:
        agencies = "\n".join(
            f"{a.agency_name}: {a.latest_activity_date or 'date not released'}"
            + (f", {', '.join(a.categories)}" if a.categories else "")
            for a in c.agencies
        )
        table.add_row(c.candidate_id, f"{c.priority:.1f}", agencies, "\n".join(c.reasons))
    console.print(table)
    if not response.candidates:
        console.print("No review candidates you may see.")


def render_review(response: broker_pb2.ReviewResponse, console: Console) -> None:
    """One row per linked record: the agency's answer and, where it says who, the identity."""
    table = Table(title=f"Review {response.review_id}", show_lines=True, expand=True)
    table.add_column("Agency", style="bold", ratio=2)
    table.add_column("Outcome", ratio=2)
    table.add_column("Who", ratio=5)
    table.add_column("Whom to call", ratio=3)
    for row in response.rows:
        words, style = OUTCOME_WORDS.get(row.outcome, ("Unknown", ""))
        if row.outcome == common_pb2.OUTCOME_KNOWN:
            words = "Identified"
        table.add_row(row.agency_name, Text(words, style=style), _who(row), _contact(row.contact))
    console.print(table)
    console.print(f"Under agreement {response.agreement}. Record what you do with this in the case.")


def _who(row: broker_pb2.ReviewRow) -> str:
    if not row.HasField("identity"):
        if row.outcome == common_pb2.OUTCOME_WITHHELD:
            return "The agency restricts this record: call it"
        return row.status.detail
    s = row.identity
    lines = [" ".join([*s.given_names, s.family_name])]
    if s.date_of_birth:
        lines.append(f"born {s.date_of_birth}")
    address = ", ".join([*s.address.lines, s.address.postcode])
    if address.strip(", "):
        lines.append(address)
    if s.nhs_number:
        lines.append(f"NHS {s.nhs_number}")
    lines += [f"also known as {' '.join([*o.given_names, o.family_name])}" for o in s.other_names]
    return "\n".join(lines)
