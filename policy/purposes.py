"""Purposes for which a lateral check may be made."""

from __future__ import annotations

from pydantic import Field

from lateral.config import Frozen


class Purpose(Frozen):
    """A purpose a check may be made for, as the data-sharing agreement states it."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{1,63}$")
    description: str = Field(min_length=1)
    requires_case_ref: bool = True
    requires_justification: bool = True
