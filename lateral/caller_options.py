"""Who a command-line caller is, for the commands that ask the broker (`check`, `bulk-check`): the case
system's certificate and the user and role asserted with it, or, on a developer's machine in plaintext,
a stated organisation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lateral.console import fail, load
from lateral.identity import Caller
from pki.tls import Tls, TlsSection

DEFAULT_BROKER = "127.0.0.1:50051"
INSECURE_HELP = "Use plaintext gRPC with no authentication. Development only: never with real data."

_OPTIONS = [
    click.option(
        "--broker",
        "broker_address",
        envvar="LATERAL_BROKER",
        default=DEFAULT_BROKER,
        show_default=True,
        help="The broker's host:port (or set LATERAL_BROKER).",
    ),
    click.option(
        "--organisation",
        envvar="LATERAL_ORGANISATION",
        default="",
        help="Your organisation's party id (LATERAL_ORGANISATION). With a certificate, the certificate's.",
    ),
    click.option(
        "--ca", envvar="LATERAL_CA", default="", help="The federation's CA certificate (LATERAL_CA)."
    ),
    click.option(
        "--cert", envvar="LATERAL_CERT", default="", help="Your system's certificate (LATERAL_CERT)."
    ),
    click.option("--key", envvar="LATERAL_KEY", default="", help="Its private key (LATERAL_KEY)."),
    click.option("--insecure-dev", is_flag=True, help=INSECURE_HELP),
]
# Who acts: what checks need beyond the connection.
_ACTOR = [
    click.option(
        "--role",
        envvar="LATERAL_ROLE",
        required=True,
        help="Your role, as the agreement names it (LATERAL_ROLE).",
    ),
    click.option(
        "--user",
        envvar="LATERAL_USER",
        default="cli-user",
        show_default=True,
        help="Your user id (LATERAL_USER).",
    ),
]


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The broker's address and this system's certificate (or plaintext development)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def caller_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """connection_options, and the user and role a check is made for."""
    for option in reversed(_ACTOR):
        command = option(command)
    return connection_options(command)


def resolve_caller(
    *, organisation: str, ca: str, cert: str, key: str, role: str, user: str, insecure_dev: bool, system: str
) -> tuple[Caller, Tls | None]:
    """The caller and its TLS material (None in plaintext development); exits 2 when they do not add up."""
    from lateral.rpc import warn_insecure

    tls = None
    if insecure_dev:
        warn_insecure("client")
        if not organisation:
            fail("--organisation is needed with --insecure-dev (no certificate says who you are)", 2)
    elif not (ca and cert and key):
        fail(
            "the broker connection needs your case system's certificate: --ca, --cert and --key "
            "(or LATERAL_CA, LATERAL_CERT, LATERAL_KEY); --insecure-dev on a development machine only",
            2,
        )
    else:
        tls = load(lambda _: Tls(TlsSection(ca=ca, cert=cert, key=key)), Path(cert))
        organisation = organisation or tls.identity.organisation
    return Caller(organisation=organisation, system=system, user=user, role=role), tls
