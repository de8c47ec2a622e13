"""Who is calling the broker: organisation and system, and the acting user and role.

With mutual TLS (the default) the organisation and system come from the caller's certificate and the user
and role from a user assertion that system signed with its certificate key (pki/assertion.py). On a
developer's machine in plaintext (--insecure-dev) a caller states all four in request metadata. This is
the one place that reads either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from lateral.errors import PermissionDeniedError, UnauthenticatedError
from pki.assertion import METADATA_KEY, Verifier
from pki.tls import Peer, Tls

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
    # The organisation's identity as its certificate proved it (spiffe://<federation>/org/<org>); empty in
    # plaintext development, where nothing is proved.
    certified_as: str = ""

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            (ORGANISATION, self.organisation),
            (SYSTEM, self.system),
            (USER, self.user),
            (ROLE, self.role),
        )


def _metadata(context: Any) -> dict[str, str]:
    return {key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)}


class Callers(Protocol):
    def caller(self, context: Any) -> Caller: ...

    def member(self, context: Any) -> str:
        """Who asks for something that carries no personal data (the federation's status): any identity
        of the federation, without a user assertion."""
        ...


class StatedCallers:
    """Development only: the caller states who it is in request metadata; nothing is proved."""

    def caller(self, context: Any) -> Caller:
        """The caller of this RPC.

        Raises:
            UnauthenticatedError: the identity is missing or malformed.
        """
        return self.stated(_metadata(context))

    def member(self, context: Any) -> str:
        return _metadata(context).get(ORGANISATION, "") or "unidentified (insecure-dev)"

    def stated(self, metadata: dict[str, str]) -> Caller:
        """The caller from metadata or, for the REST API, headers of the same names."""
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


class CertifiedCallers:
    """Organisation and system from the client certificate; user and role from the system's assertion."""

    def __init__(self, tls: Tls) -> None:
        self._tls = tls
        self._verifier = Verifier(tls.identity.federation)

    def caller(self, context: Any) -> Caller:
        """The caller of this RPC.

        Raises:
            UnauthenticatedError: no valid client certificate or user assertion.
            PermissionDeniedError: the certificate is not a case system's (a broker or an adapter's).
        """
        return self._certified(self._tls.peer_of(context), _metadata(context).get(METADATA_KEY, ""))

    def member(self, context: Any) -> str:
        """The caller's federation identity (raises UnauthenticatedError as caller() does)."""
        return self._tls.peer_of(context).identity.uri

    def presented(self, certificate_pem: bytes, assertion: str) -> Caller:
        """The caller of a REST request, which carries its certificate and assertion in headers."""
        return self._certified(self._tls.presented(certificate_pem), assertion)

    def _certified(self, peer: Peer, assertion: str) -> Caller:
        if peer.identity.role != "client":
            raise PermissionDeniedError(
                f"only case systems (client certificates) may ask for checks, not a {peer.identity.role}",
                "NOT_A_CLIENT",
            )
        user, role = self._verifier.verify(assertion, peer)
        who = peer.identity
        return Caller(who.organisation, who.name, user, role, certified_as=who.organisation_uri)
