"""Federation identities: SPIFFE URIs naming a federation, an organisation, a role and a name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Role = Literal["broker", "adapter", "client", "linkage"]
ROLES: tuple[Role, ...] = ("broker", "adapter", "client", "linkage")
_SLUG = r"[a-z0-9][a-z0-9-]{0,62}"
_FEDERATION = r"[a-z0-9][a-z0-9.-]{0,62}"
_URI = re.compile(rf"^spiffe://({_FEDERATION})/org/({_SLUG})/(broker|adapter|client|linkage)/({_SLUG})$")
SLUG = re.compile(rf"^{_SLUG}$")
FEDERATION = re.compile(rf"^{_FEDERATION}$")


@dataclass(frozen=True)
class Identity:
    federation: str
    organisation: str
    role: Role
    name: str

    @property
    def uri(self) -> str:
        return f"spiffe://{self.federation}/org/{self.organisation}/{self.role}/{self.name}"

    @property
    def organisation_uri(self) -> str:
        """The organisation's identity, as a data-sharing agreement names its parties."""
        return f"spiffe://{self.federation}/org/{self.organisation}"

    def __str__(self) -> str:
        return self.uri


def parse_identity(uri: str) -> Identity | None:
    """The identity a URI names, or None when it is not a federation identity."""
    match = _URI.match(uri)
    if match is None:
        return None
    federation, organisation, role, name = match.groups()
    return Identity(federation, organisation, role, name)  # type: ignore[arg-type]
