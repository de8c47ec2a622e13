"""Compiling an agreement to Cedar policies.

The Cedar model:
  principal  Lateral::Organisation::"<party id>"   the requesting organisation
  action     Lateral::Action::"check"              ask an agency about a subject
             Lateral::Action::"disclose"           let one activity category count in an answer
  resource   Lateral::Agency::"<agency id>"
  context    role, purpose, minute_of_week (Monday 00:00 = 0, agreement's time zone),
             subject ("child", "adult" or "unknown"), and category (for "disclose")

Cedar denies by default and a forbid overrides every permit: permissions become permits (for both
actions), restrictions and purpose scopes become forbids. Every policy carries its clause id in @id, and a
permit carries what it releases in annotations, so a decision can say which clauses decided it and what
they release. Times are integers (minutes of the week): Cedar compares them twice as fast as datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable

from policy.agreement import Agreement, Permission, Restriction
from policy.purposes import Purpose

ORGANISATION = "Lateral::Organisation"
AGENCY = "Lateral::Agency"
ACTION = "Lateral::Action"
MINUTES_PER_WEEK = 7 * 1440


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def _string(value: str) -> str:
    """A Cedar string literal. Cedar's escapes are Rust's, not JSON's: no \\b, \\f or \\u0001, but \\u{1}."""
    return (
        '"'
        + "".join(_ESCAPES.get(c) or (c if c.isprintable() else f"\\u{{{ord(c):x}}}") for c in value)
        + '"'
    )


def _entities(kind: str, ids: Iterable[str]) -> str:
    return "[" + ", ".join(f"{kind}::{_string(i)}" for i in ids) + "]"


def _strings(values: Iterable[str]) -> str:
    return "[" + ", ".join(_string(v) for v in values) + "]"


def scope_clause_id(purpose: Purpose) -> str:
    return f"purpose:{purpose.id}"


def permit(permission: Permission) -> str:
    conditions = [
        f"{_entities(ORGANISATION, permission.requesters)}.contains(principal)",
        f"{_entities(AGENCY, permission.agencies)}.contains(resource)",
        f"{_strings(permission.roles)}.contains(context.role)",
        f"{_strings(permission.purposes)}.contains(context.purpose)",
    ]
    if permission.hours is not None:
        spans = " || ".join(
            f"(context.minute_of_week >= {start} && context.minute_of_week < {end})"
            for start, end in permission.hours.windows()
        )
        conditions.append(f"({spans})")
    annotations = [
        f"@id({_string(permission.id)})",
        f"@release({_string(' '.join(permission.release))})",
        f"@lookback_days({_string(str(permission.lookback_days))})",
        f"@obligations({_string(' '.join(permission.obligations))})",
    ]
    body = " &&\n  ".join(conditions)
    return (
        "\n".join(annotations)
        + f'\npermit (principal, action in [{ACTION}::"check", {ACTION}::"disclose"], resource)\n'
        + f"when {{\n  {body}\n}};"
    )


def forbid(restriction: Restriction) -> str:
    action = "disclose" if restriction.categories else "check"
    conditions = [f"{_entities(AGENCY, restriction.agencies)}.contains(resource)"]
    if restriction.categories:
        conditions.append(f"{_strings(restriction.categories)}.contains(context.category)")
    if restriction.purposes:
        conditions.append(f"{_strings(restriction.purposes)}.contains(context.purpose)")
    if restriction.requesters:
        conditions.append(f"{_entities(ORGANISATION, restriction.requesters)}.contains(principal)")
    body = " &&\n  ".join(conditions)
    return (
        f"@id({_string(restriction.id)})\n"
        f'forbid (principal, action == {ACTION}::"{action}", resource)\n'
        f"when {{\n  {body}\n}};"
    )


def scope_forbid(purpose: Purpose) -> str | None:
    """A purpose for children refuses adults, and the reverse. An unknown age is not refused."""
    if purpose.subjects == "any":
        return None
    other = "adult" if purpose.subjects == "children" else "child"
    return (
        f"@id({_string(scope_clause_id(purpose))})\n"
        "forbid (principal, action, resource)\n"
        f"when {{ context.purpose == {_string(purpose.id)} && context.subject == {_string(other)} }};"
    )


def compile_policies(agreement: Agreement, *, agency: str | None = None, requester: str | None = None) -> str:
    """The agreement as Cedar policies; with agency and requester, only the slice that can bear on them."""
    policies = [
        permit(p)
        for p in agreement.permissions
        if (agency is None or agency in p.agencies) and (requester is None or requester in p.requesters)
    ]
    policies += [
        forbid(r)
        for r in agreement.restrictions
        if (agency is None or agency in r.agencies)
        and (requester is None or not r.requesters or requester in r.requesters)
    ]
    policies += [s for s in (scope_forbid(p) for p in agreement.purposes) if s is not None]
    return "\n\n".join(policies) + "\n"
