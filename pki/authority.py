"""A federation's certificate authority in a folder: `lateral pki init`, `issue`, `revoke`.

Layout of the folder:
  federation.toml   the federation's name and the CA's lifetime
  ca.crt, ca.key    the CA (the key owner-only; keep it offline in production)
  crl.pem           the certificate revocation list every broker and adapter loads
  issued/<org>-<role>-<name>.crt, .key   issued certificates and keys (keys owner-only)

Keys are ECDSA P-256 (what every TLS stack and HSM supports). Certificates carry the identity as a URI SAN
`spiffe://<federation>/org/<org>/<role>/<name>`; servers also carry their host names.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lateral.config import ConfigError, read_toml
from pki.identity import FEDERATION, SLUG, Identity, Role

CA_DAYS = 3650
LEAF_DAYS = {"broker": 397, "adapter": 397, "client": 90, "linkage": 397}
CRL_DAYS = 30


def write_private(path: Path, data: bytes) -> None:
    """Writes a secret readable by its owner only, from the moment it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Issued:
    identity: Identity
    certificate: Path
    key: Path
    serial: int
    not_after: dt.datetime


class Authority:
    """A federation CA on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        settings = read_toml(folder / "federation.toml")
        self.federation = str(settings.get("federation", ""))
        try:
            self.certificate = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
            key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
        except FileNotFoundError as error:
            raise ConfigError(f"{folder}: not a federation CA folder ({error.filename} missing)") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{folder}/ca.key: not an ECDSA key")
        self._key = key

    @staticmethod
    def init(folder: Path, federation: str, *, days: int = CA_DAYS) -> Authority:
        """Creates a federation CA and an empty revocation list in folder (which must not hold one)."""
        if not FEDERATION.match(federation):
            raise ConfigError(f"federation {federation!r}: use lower-case letters, digits, dots and hyphens")
        if (folder / "ca.key").exists():
            raise ConfigError(f"{folder}: already holds a CA (ca.key); refusing to replace it")
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Lateral federation CA: {federation}")])
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{federation}")]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        write_private(folder / "ca.key", _key_pem(key))
        (folder / "ca.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (folder / "federation.toml").write_text(tomli_w.dumps({"federation": federation}))
        authority = Authority(folder)
        authority.write_crl([])
        return authority

    def issue(
        self,
        organisation: str,
        role: Role,
        name: str,
        *,
        hosts: tuple[str, ...] = (),
        days: int | None = None,
        out: Path | None = None,
        not_after: dt.datetime | None = None,
    ) -> Issued:
        """Issues a certificate and key for an identity; servers also answer for `hosts` (names or IPs),
        and for localhost and 127.0.0.1. `not_after` ends it at a given time instead of after `days`."""
        for what, value in (("organisation", organisation), ("name", name)):
            if not SLUG.match(value):
                raise ConfigError(f"{what} {value!r}: use lower-case letters, digits and hyphens")
        identity = Identity(self.federation, organisation, role, name)
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        lifetime = dt.timedelta(days=days if days is not None else LEAF_DAYS[role])
        not_after = min(not_after or now + lifetime, self.certificate.not_valid_after_utc)
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if role != "client":
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            for host in dict.fromkeys(("localhost", "127.0.0.1", *hosts)):
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
        serial = x509.random_serial_number()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.uri)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(min(now, not_after) - dt.timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        folder = out or self.folder / "issued"
        stem = f"{organisation}-{role}-{name}"
        cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
        folder.mkdir(parents=True, exist_ok=True)
        write_private(key_path, _key_pem(key))
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return Issued(identity, cert_path, key_path, serial, not_after)

    def revoked(self) -> list[x509.RevokedCertificate]:
        crl = x509.load_pem_x509_crl((self.folder / "crl.pem").read_bytes())
        return list(crl)

    def revoke(self, certificate: Path) -> int:
        """Adds a certificate issued by this CA to the revocation list; returns its serial number."""
        try:
            cert = x509.load_pem_x509_certificate(certificate.read_bytes())
        except FileNotFoundError:
            raise ConfigError(f"{certificate}: file not found") from None
        except ValueError:
            raise ConfigError(f"{certificate}: not a PEM certificate") from None
        if cert.issuer != self.certificate.subject:
            raise ConfigError(f"{certificate}: was not issued by this federation's CA")
        entries = [r for r in self.revoked() if r.serial_number != cert.serial_number]
        entries.append(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(_now()).build()
        )
        self.write_crl(entries)
        return cert.serial_number

    def write_crl(self, entries: list[x509.RevokedCertificate]) -> None:
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(now + dt.timedelta(days=CRL_DAYS))
        )
        for entry in entries:
            builder = builder.add_revoked_certificate(entry)
        crl = builder.sign(self._key, hashes.SHA256())
        (self.folder / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
