"""`lateral pki`: a federation's certificate authority for development and small deployments."""

from __future__ import annotations

from pathlib import Path

import click

from lateral.config import ConfigError
from lateral.console import err_console, fail
from pki.identity import ROLES

_DIR = click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("pki"),
    show_default=True,
    help="The CA's folder.",
)


@click.group()
def pki() -> None:
    """The federation's certificates: a CA, certificates for brokers, adapters and case systems, revocation.

    \b
    lateral pki init --federation northshire
    lateral pki issue --org northshire-council --role broker --name hub --host mash-hub.northshire.example
    lateral pki issue --org northshire-police --role adapter --name police --host 10.1.2.3
    lateral pki issue --org northshire-council --role client --name case-system
    lateral pki issue --org northshire-council --role linkage --name mash-linkage
    lateral pki revoke pki/issued/northshire-council-client-case-system.crt

    Identities are URI SANs spiffe://<federation>/org/<org>/<role>/<name>. Certificates from an existing CA
    work too, if they carry such a URI SAN (see the README).
    """


@pki.command("init")
@_DIR
@click.option("--federation", required=True, help="The federation's name, e.g. northshire.")
@click.option("--days", type=click.IntRange(30, 7300), default=3650, show_default=True, help="CA lifetime.")
def init(folder: Path, federation: str, days: int) -> None:
    """Create the federation's CA and an empty revocation list."""
    from pki.authority import Authority

    try:
        Authority.init(folder, federation, days=days)
    except ConfigError as error:
        fail(str(error), 2)
    err_console.print(
        f"Created the {federation} CA in {folder}: ca.crt (give it to every service), ca.key (owner-only: "
        "keep it offline), crl.pem (the revocation list every service loads)."
    )


@pki.command("issue")
@_DIR
@click.option("--org", "organisation", required=True, help="The organisation (its party id).")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
@click.option("--name", required=True, help="The service or system, e.g. hub, police, case-system.")
@click.option("--host", "hosts", multiple=True, help="A DNS name or IP the server is reached at; repeat.")
@click.option("--days", type=click.IntRange(1, 825), default=None, help="Lifetime (default 397; clients 90).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None, help="Where to write.")
def issue(
    folder: Path,
    organisation: str,
    role: str,
    name: str,
    hosts: tuple[str, ...],
    days: int | None,
    out: Path | None,
) -> None:
    """Issue a certificate and private key (owner-only) for a broker, an adapter, a case system or a
    linkage service."""
    from pki.authority import Authority

    try:
        issued = Authority(folder).issue(organisation, role, name, hosts=hosts, days=days, out=out)  # type: ignore[arg-type]
    except ConfigError as error:
        fail(str(error), 2)
    err_console.print(
        f"Issued {issued.identity.uri} (serial {issued.serial:x}, until {issued.not_after:%Y-%m-%d}): "
        f"{issued.certificate} and {issued.key}"
    )


@pki.command("revoke")
@_DIR
@click.argument("certificate", type=click.Path(path_type=Path, dir_okay=False))
def revoke(folder: Path, certificate: Path) -> None:
    """Revoke a certificate: services refuse it as soon as they see the new crl.pem (no restart)."""
    from pki.authority import Authority

    try:
        serial = Authority(folder).revoke(certificate)
    except ConfigError as error:
        fail(str(error), 2)
    err_console.print(f"Revoked serial {serial:x}; copy {folder}/crl.pem to every broker and adapter.")
