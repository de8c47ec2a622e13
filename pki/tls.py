"""Mutual TLS at run time: credentials from a service's `[tls]` files, and the verified identity of a peer.

The TLS handshake already refuses a peer without a certificate, with one from another CA or with an
expired one. What it cannot know is this federation's revocation list and identities: `peer_of` reads the
peer's certificate from the connection, refuses a revoked one and returns its SPIFFE identity.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import Field

from lateral.config import ConfigError, Frozen
from lateral.errors import UnauthenticatedError
from pki.identity import Identity, parse_identity


class TlsSection(Frozen):
    """A service's certificate files (paths relative to its configuration file)."""

    # The CA certificate(s) that sign the federation's certificates (PEM; several may be concatenated).
    ca: str = Field(min_length=1)
    # This service's certificate and private key (PEM), e.g. from `lateral pki issue`.
    cert: str = Field(min_length=1)
    key: str = Field(min_length=1)
    # The federation's certificate revocation list (PEM), re-read when it changes. Empty: none.
    crl: str = ""

    def resolved(self, base: Path) -> TlsSection:
        def absolute(path: str) -> str:
            return str((base / path).resolve()) if path else ""

        return TlsSection(
            ca=absolute(self.ca), cert=absolute(self.cert), key=absolute(self.key), crl=absolute(self.crl)
        )


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: {what} file is not readable by this user") from None


def identity_of(certificate: x509.Certificate) -> Identity | None:
    """The federation identity a certificate carries in its URI SAN, if any."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
        identity = parse_identity(uri)
        if identity is not None:
            return identity
    return None


def _signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    key = ca.public_key()
    return (
        crl.issuer == ca.subject
        and isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
        and (crl.is_signature_valid(key))
    )


class Revocations:
    """The serial numbers a CRL revokes, re-read whenever the file changes (a revocation needs no restart)."""

    def __init__(self, path: str, issuers: list[x509.Certificate]) -> None:
        self._path = Path(path) if path else None
        self._issuers = issuers
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._serials: frozenset[int] = frozenset()
        if self._path is not None:
            self._load()

    def _load(self) -> None:
        assert self._path is not None
        try:
            stamp = self._path.stat().st_mtime
        except FileNotFoundError:
            raise ConfigError(f"{self._path}: revocation list file not found") from None
        if stamp == self._stamp:
            return
        try:
            crl = x509.load_pem_x509_crl(self._path.read_bytes())
        except ValueError:
            raise ConfigError(f"{self._path}: not a PEM certificate revocation list") from None
        if not any(_signed_by(crl, ca) for ca in self._issuers):
            raise ConfigError(f"{self._path}: the revocation list is not signed by the federation's CA")
        self._serials = frozenset(r.serial_number for r in crl)
        self._stamp = stamp

    def revoked(self, serial: int) -> bool:
        if self._path is None:
            return False
        with self._lock:
            with contextlib.suppress(ConfigError):  # keep the last good list: a broken update opens no door
                self._load()
            return serial in self._serials


@dataclass(frozen=True)
class Peer:
    identity: Identity
    certificate: x509.Certificate


class Tls:
    """One service's loaded TLS material."""

    def __init__(self, section: TlsSection) -> None:
        self._section = section
        self.ca = _read(section.ca, "CA certificate")
        self.cert = _read(section.cert, "certificate")
        self.key = _read(section.key, "private key")
        try:
            authorities = x509.load_pem_x509_certificates(self.ca)
            own = x509.load_pem_x509_certificate(self.cert)
            key = serialization.load_pem_private_key(self.key, password=None)
        except ValueError as error:
            raise ConfigError(f"{section.cert}: cannot read the TLS files: {error}") from None
        if own.public_key() != key.public_key():
            raise ConfigError(f"{section.key}: this private key does not belong to {section.cert}")
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ConfigError(f"{section.key}: an ECDSA or RSA key is needed (lateral pki issue makes ECDSA)")
        if own.not_valid_after_utc < dt.datetime.now(dt.UTC):
            raise ConfigError(
                f"{section.cert}: this certificate expired on {own.not_valid_after_utc:%Y-%m-%d}"
            )
        identity = identity_of(own)
        if identity is None:
            raise ConfigError(
                f"{section.cert}: the certificate carries no federation identity "
                "(a URI SAN spiffe://<federation>/org/<org>/<role>/<name>)"
            )
        self.identity = identity
        self.private_key = key
        self.revocations = Revocations(section.crl, authorities)
        # Handshake certificates already read (every call on a connection presents the same one): parsing
        # PEM and its SAN once per connection, not per call. Bounded; revocation is still checked per call.
        self._handshakes: dict[bytes, Peer] = {}

    def server_identity(self, address: str, timeout: float = 5.0) -> Identity | None:
        """The federation identity of the server at host:port, from a TLS handshake made as gRPC makes it
        (this certificate, only the federation's CA trusted, the host name checked). gRPC's Python client does
        not show the server's certificate, so a service that must reach one particular identity (an adapter
        publishing to the linkage service) asks here first.

        Raises:
            OSError: the server cannot be reached, or the handshake fails (ssl.SSLError is one).
        """
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=self.ca.decode())
        context.load_cert_chain(self._section.cert, self._section.key)
        context.set_alpn_protocols(["h2"])
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as wrapped,
        ):
            der = wrapped.getpeercert(binary_form=True)
        return identity_of(x509.load_der_x509_certificate(der)) if der else None

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server side of mutual TLS: a client certificate from the federation's CA is required."""
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Client side of mutual TLS: this service's certificate, and only the federation's CA trusted."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )

    def peer_of(self, context: Any) -> Peer:
        """The caller's verified identity.

        Raises:
            UnauthenticatedError: no certificate, a revoked one, or one without a federation identity.
        """
        pems = context.auth_context().get("x509_pem_cert") or []
        if not pems:
            raise UnauthenticatedError("a client certificate from the federation's CA is required")
        peer = self._handshakes.get(pems[0])
        if peer is None:
            peer = self._peer(x509.load_pem_x509_certificate(pems[0]))
            if len(self._handshakes) >= 4096:
                self._handshakes.clear()
            self._handshakes[pems[0]] = peer
        if self.revocations.revoked(peer.certificate.serial_number):
            raise UnauthenticatedError("the client certificate has been revoked")
        return peer

    def _peer(self, certificate: x509.Certificate) -> Peer:
        identity = identity_of(certificate)
        if identity is None or identity.federation != self.identity.federation:
            raise UnauthenticatedError("the client certificate carries no identity of this federation")
        return Peer(identity, certificate)

    def presented(self, pem: bytes) -> Peer:
        """A certificate presented in a request rather than in a TLS handshake (the REST API): checked here as
        the handshake would, issued by the federation's CA and in date, then as peer_of does.

        Raises:
            UnauthenticatedError: not a certificate, not the CA's, expired or not yet valid, or revoked.
        """
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise UnauthenticatedError("the client certificate is not a PEM certificate") from None
        issued = False
        for authority in x509.load_pem_x509_certificates(self.ca):
            try:
                certificate.verify_directly_issued_by(authority)
                issued = True
            except (ValueError, TypeError, InvalidSignature):
                continue
        if not issued:
            raise UnauthenticatedError("the client certificate is not issued by the federation's CA")
        now = dt.datetime.now(dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise UnauthenticatedError("the client certificate has expired or is not yet valid")
        if self.revocations.revoked(certificate.serial_number):
            raise UnauthenticatedError("the client certificate has been revoked")
        return self._peer(certificate)
