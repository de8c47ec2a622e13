"""User assertions: who is acting, in which role, asserted by the calling system for one call.

A case system authenticates its users itself; for each check it mints a short-lived JWT naming the user
and role, signed (ES256, or RS256 for an RSA certificate) with the private key of its own certificate.
The broker verifies it with the public key of the certificate presented in the TLS handshake, so an
assertion is bound to the system that made it: stolen, it is useless from any other connection. Each
carries a unique id (`jti`) that the broker remembers until the assertion expires, so none can be replayed.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lateral.errors import UnauthenticatedError
from pki.identity import Identity
from pki.tls import Peer

METADATA_KEY = "x-lateral-assertion"
# ES256 for the ECDSA keys `lateral pki` issues, RS256 for RSA keys from an existing CA. The key type of
# the caller's certificate decides which one verifies: a token cannot choose its own algorithm.
LIFETIME_SECONDS = 120
MAX_LIFETIME_SECONDS = 300
LEEWAY_SECONDS = 5
_ROLE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_USER = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")


def audience(federation: str) -> str:
    """Whom assertions are for: the federation's brokers."""
    return f"spiffe://{federation}/broker"


def mint(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    system: Identity,
    *,
    user: str,
    role: str,
    lifetime: int = LIFETIME_SECONDS,
    now: dt.datetime | None = None,
) -> str:
    """An assertion by `system` (whose certificate key this is) that `user` acts in `role`."""
    issued = now or dt.datetime.now(dt.UTC)
    claims = {
        "iss": system.uri,
        "sub": user,
        "role": role,
        "aud": audience(system.federation),
        "iat": int(issued.timestamp()),
        "exp": int(issued.timestamp()) + lifetime,
        "jti": uuid.uuid4().hex,
    }
    algorithm = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    return jwt.encode(claims, key, algorithm=algorithm)


class Verifier:
    """Verifies assertions for one broker and remembers their ids until they expire."""

    def __init__(self, federation: str) -> None:
        self._audience = audience(federation)
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def verify(self, token: str, peer: Peer) -> tuple[str, str]:
        """The (user, role) an assertion states.

        Raises:
            UnauthenticatedError: missing, malformed, not signed with the peer's certificate key, bound to
                another system, expired, too long-lived, or already used.
        """
        if not token:
            raise UnauthenticatedError(f"a user assertion is required (metadata {METADATA_KEY})")
        key = peer.certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise UnauthenticatedError("the caller's certificate key cannot sign user assertions")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=["ES256" if isinstance(key, ec.EllipticCurvePublicKey) else "RS256"],
                audience=self._audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "iat", "exp", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError("the user assertion has expired") from None
        except jwt.InvalidSignatureError:
            raise UnauthenticatedError(
                "the user assertion is not signed by the calling system's key"
            ) from None
        except jwt.InvalidAudienceError:
            raise UnauthenticatedError("the user assertion is meant for another audience") from None
        except jwt.PyJWTError:
            raise UnauthenticatedError("the user assertion is malformed") from None
        if claims["iss"] != peer.identity.uri:
            raise UnauthenticatedError("the user assertion was made for another system than the caller")
        expires, issued = int(claims["exp"]), int(claims["iat"])
        if expires - issued > MAX_LIFETIME_SECONDS:
            raise UnauthenticatedError(f"the user assertion lives longer than {MAX_LIFETIME_SECONDS} s")
        user, role = str(claims["sub"]), str(claims.get("role", ""))
        if not _USER.match(user) or not _ROLE.match(role):
            raise UnauthenticatedError("the user assertion's user or role is malformed")
        self._remember(str(claims["jti"]), expires)
        return user, role

    def _remember(self, jti: str, expires: int) -> None:
        now = int(dt.datetime.now(dt.UTC).timestamp())
        with self._lock:
            if jti in self._seen:
                raise UnauthenticatedError("the user assertion has already been used (replay)")
            if len(self._seen) > 10_000:
                self._seen = {k: v for k, v in self._seen.items() if v + LEEWAY_SECONDS >= now}
            self._seen[jti] = expires
