"""Purposes for which a lateral check may be made, as the data-sharing agreement states them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lateral.config import Frozen

# Who a purpose may be used to check: children (under 18 on the day of the check), adults, or anyone.
Subjects = Literal["children", "adults", "any"]
ADULT_AGE = 18


class Purpose(Frozen):
    """A purpose a check may be made for."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{1,63}$")
    description: str = Field(min_length=1)
    # The statutory duty or power relied on, e.g. "Children Act 1989 s47".
    lawful_basis: tuple[str, ...] = Field(min_length=1)
    subjects: Subjects = "any"
    # What the purpose checks: people (Check), households at an address (CheckHousehold), or "proactive":
    # review candidates found by linking the agencies' encodings ([linkage]; docs/proactive.md).
    checks: Literal["people", "households", "proactive"] = "people"
    requires_case_ref: bool = True
    requires_justification: bool = True
    # At most this many checks for the purpose in one bulk run (lateral bulk-check); none: no cap.
    max_bulk_checks: int | None = Field(default=None, ge=1)
