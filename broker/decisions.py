"""Refusing a request every agency's decision refused, in one PERMISSION_DENIED with the reasons."""

from __future__ import annotations

from lateral.errors import PermissionDeniedError
from policy.engine import Decision


def refuse_all(agreement: str, decisions: dict[str, Decision], what: str = "check") -> PermissionDeniedError:
    """The error for a request no agency may be asked for: one reason when all agree, else each agency's,
    with the deciding clauses, in a google.rpc.ErrorInfo."""
    reasons = {d.reason for d in decisions.values()}
    first = next(iter(decisions.values()))
    message = (
        first.message
        if len(reasons) == 1 and len({d.message for d in decisions.values()}) == 1
        else "; ".join(f"{agency}: {d.message}" for agency, d in decisions.items())
    )
    return PermissionDeniedError(
        f"the data-sharing agreement does not permit this {what}: {message}",
        reason=first.reason if len(reasons) == 1 else "NOT_PERMITTED",
        metadata={
            "agreement": agreement,
            "clauses": ",".join(sorted({c for d in decisions.values() for c in d.clauses})),
            **{f"agency.{agency}": d.reason for agency, d in decisions.items()},
        },
    )
