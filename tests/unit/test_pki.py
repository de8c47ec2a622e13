"""The federation CA, TLS material and user assertions, without sockets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lateral.config import ConfigError
from lateral.errors import UnauthenticatedError
from pki.assertion import Verifier, mint
from pki.authority import Authority
from pki.identity import Identity, parse_identity
from pki.tls import Peer, Tls, TlsSection, identity_of


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority.init(tmp_path / "pki", "northshire")


def tls_for(ca: Authority, organisation: str, role: str, name: str) -> Tls:
    issued = ca.issue(organisation, role, name)  # type: ignore[arg-type]
    return Tls(
        TlsSection(
            ca=str(ca.folder / "ca.crt"),
            cert=str(issued.certificate),
            key=str(issued.key),
            crl=str(ca.folder / "crl.pem"),
        )
    )


def test_identities_round_trip() -> None:
    uri = "spiffe://northshire/org/northshire-police/adapter/police"
    identity = parse_identity(uri)
    assert identity == Identity("northshire", "northshire-police", "adapter", "police")
    assert identity is not None
    assert identity.uri == uri
    assert identity.organisation_uri == "spiffe://northshire/org/northshire-police"
    assert parse_identity("spiffe://northshire/org/x/superuser/y") is None
    assert parse_identity("https://example.org/") is None


def test_issued_certificates_carry_identity_hosts_and_usages(ca: Authority) -> None:
    issued = ca.issue("northshire-council", "broker", "hub", hosts=("mash-hub.example", "10.0.0.5"))
    cert = x509.load_pem_x509_certificate(issued.certificate.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://northshire/org/northshire-council/broker/hub"
    ]
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "mash-hub.example"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "10.0.0.5"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert issued.key.stat().st_mode & 0o777 == 0o600
    assert (ca.folder / "ca.key").stat().st_mode & 0o777 == 0o600
    client = ca.issue("northshire-council", "client", "case-system")
    lifetime = client.not_after - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=89) < lifetime <= dt.timedelta(days=90)


def test_bad_names_and_a_second_ca_are_refused(ca: Authority) -> None:
    with pytest.raises(ConfigError) as error:
        ca.issue("Northshire Council", "client", "x")
    assert str(error.value) == "organisation 'Northshire Council': use lower-case letters, digits and hyphens"
    with pytest.raises(ConfigError) as again:
        Authority.init(ca.folder, "northshire")
    assert str(again.value) == f"{ca.folder}: already holds a CA (ca.key); refusing to replace it"


def test_revocation_reaches_a_running_service_without_a_restart(ca: Authority) -> None:
    broker = tls_for(ca, "northshire-council", "broker", "hub")
    client = ca.issue("northshire-council", "client", "case-system")
    assert not broker.revocations.revoked(client.serial)
    assert ca.revoke(client.certificate) == client.serial
    assert broker.revocations.revoked(client.serial)


def test_tls_files_that_do_not_belong_together_are_refused(ca: Authority) -> None:
    a = ca.issue("northshire-council", "client", "a")
    b = ca.issue("northshire-council", "client", "b")
    with pytest.raises(ConfigError) as error:
        Tls(TlsSection(ca=str(ca.folder / "ca.crt"), cert=str(a.certificate), key=str(b.key)))
    assert str(error.value) == f"{b.key}: this private key does not belong to {a.certificate}"
    with pytest.raises(ConfigError) as missing:
        Tls(TlsSection(ca=str(ca.folder / "nope.crt"), cert=str(a.certificate), key=str(a.key)))
    assert str(missing.value) == f"{ca.folder / 'nope.crt'}: CA certificate file not found"


def test_an_own_certificate_that_has_expired_is_refused_at_start(ca: Authority) -> None:
    old = ca.issue(
        "northshire-council", "broker", "hub", not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    )
    with pytest.raises(ConfigError) as error:
        Tls(TlsSection(ca=str(ca.folder / "ca.crt"), cert=str(old.certificate), key=str(old.key)))
    assert str(error.value).startswith(f"{old.certificate}: this certificate expired on ")


def _peer(tls: Tls) -> Peer:
    return Peer(tls.identity, x509.load_pem_x509_certificate(tls.cert))


def test_assertions_verify_once_and_only_for_their_system(ca: Authority) -> None:
    council = tls_for(ca, "northshire-council", "client", "case-system")
    police = tls_for(ca, "northshire-police", "client", "case-system")
    verifier = Verifier("northshire")
    token = mint(council.private_key, council.identity, user="j.smith", role="mash-manager")
    assert verifier.verify(token, _peer(council)) == ("j.smith", "mash-manager")
    with pytest.raises(UnauthenticatedError, match="already been used"):
        verifier.verify(token, _peer(council))
    fresh = mint(council.private_key, council.identity, user="j.smith", role="mash-manager")
    with pytest.raises(UnauthenticatedError, match="not signed by the calling system's key"):
        verifier.verify(fresh, _peer(police))
    with pytest.raises(UnauthenticatedError, match="another audience"):
        Verifier("southshire").verify(fresh, _peer(council))


def test_an_existing_cas_rsa_certificate_works_too(tmp_path: Path) -> None:
    """Bring your own CA: any certificate with a federation URI SAN, RSA keys included (RS256 assertions)."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Council Issuing CA")])
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    uri = "spiffe://northshire/org/northshire-council/client/liquidlogic"
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "liquidlogic")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    for name, data in (
        ("ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM)),
        ("client.crt", cert.public_bytes(serialization.Encoding.PEM)),
        (
            "client.key",
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        ),
    ):
        (tmp_path / name).write_bytes(data)
    tls = Tls(
        TlsSection(
            ca=str(tmp_path / "ca.crt"), cert=str(tmp_path / "client.crt"), key=str(tmp_path / "client.key")
        )
    )
    assert tls.identity.uri == uri
    assert identity_of(cert) == tls.identity
    token = mint(tls.private_key, tls.identity, user="a.b", role="mash-social-worker")
    assert Verifier("northshire").verify(token, Peer(tls.identity, cert)) == ("a.b", "mash-social-worker")
