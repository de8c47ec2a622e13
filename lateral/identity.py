"""Who is calling the broker: organisation and system, and the acting user and role.

Until federation certificates land (mutual TLS), a development caller states its identity in request
metadata, never in the request body. This is the one place that reads it, so certificates and signed user
assertions replace it here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

from lateral.errors import UnauthenticatedError

ORGANISATION = "x-lateral-organisation"
SYSTEM = "x-lateral-system"
USER = "x-lateral-user"
ROLE = "x-lateral-role"
_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_USER = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")


@dataclass(frozen=True)
class Caller:
    organisation: str
    system: str
    user: str
    role: str

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            (ORGANISATION, self.organisation),
            (SYSTEM, self.system),
            (USER, self.user),
            (ROLE, self.role),
        )


def caller_of(context: grpc.aio.ServicerContext[object, object]) -> Caller:
    """The caller of this RPC.

    Raises:
        UnauthenticatedError: the identity is missing or malformed.
    """
    metadata = {key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)}
    caller = Caller(
        organisation=metadata.get(ORGANISATION, ""),
        system=metadata.get(SYSTEM, ""),
        user=metadata.get(USER, ""),
        role=metadata.get(ROLE, ""),
    )
    if not _ID.match(caller.organisation) or not _ID.match(caller.role):
        raise UnauthenticatedError(
            "the caller's organisation and role are missing or malformed "
            f"(metadata {ORGANISATION} and {ROLE}, lower-case ids)"
        )
    if not _USER.match(caller.user) or not _ID.match(caller.system):
        raise UnauthenticatedError(
            f"the calling system and user are missing or malformed (metadata {SYSTEM} and {USER})"
        )
    return caller
