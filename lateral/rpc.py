"""gRPC server plumbing shared by the broker and the adapters: options, standard services, binding."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Iterable, Sequence

import grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos.lateral.v1 import adapter_pb2

log = logging.getLogger(__name__)

# The adapter's service, and the health entry of the agency database behind it: NOT_SERVING while the
# database cannot be read (the adapter keeps answering from its last good index).
ADAPTER_SERVICE = adapter_pb2.DESCRIPTOR.services_by_name["AgencyAdapter"].full_name
SOURCE_HEALTH = f"{ADAPTER_SERVICE}.Source"

# so_reuseport=0: two servers on port 0 must never share a port and steal each other's calls.
SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", 256 * 1024),
]


def server_options(*, reuse_port: bool = False) -> list[tuple[str, int]]:
    """SERVER_OPTIONS, with SO_REUSEPORT when several processes of one service share a port
    (`lateral broker serve --workers N`, lateral/workers.py): the kernel spreads connections among them."""
    if not reuse_port:
        return list(SERVER_OPTIONS)
    return [("grpc.so_reuseport", 1), *(o for o in SERVER_OPTIONS if o[0] != "grpc.so_reuseport")]


CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", 256 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]

INSECURE_WARNING = (
    "WARNING: --insecure-dev: this {what} uses PLAINTEXT gRPC with no authentication. "
    "Never use it with real data or outside a developer's machine."
)


class InsecureNotAllowedError(Exception):
    """Plaintext was asked for without the explicit development flag."""


def warn_insecure(what: str) -> None:
    """Prints the plaintext warning loudly on stderr, whatever the log level."""
    print(INSECURE_WARNING.format(what=what), file=sys.stderr, flush=True)


def add_standard_services(
    server: grpc.aio.Server, service_names: Iterable[str], health_only: Iterable[str] = ()
) -> health.HealthServicer:
    """Registers health checking and reflection for the given fully qualified service names; `health_only`
    names are health statuses of parts (e.g. a database), not services, so reflection leaves them out."""
    names = list(service_names)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in [*names, *health_only, ""]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    return health_servicer


def bind(
    server: grpc.aio.Server,
    address: str,
    *,
    what: str,
    credentials: grpc.ServerCredentials | None,
    insecure_dev: bool,
    production: bool = True,
) -> int:
    """Binds the server to address with mutual TLS and returns the port.

    Plaintext only with the explicit development flag (and a warning on every start), and never under a
    production agreement.

    Raises:
        InsecureNotAllowedError: no TLS configuration without the flag, or the flag in production.
        OSError: the address is taken or invalid.
    """
    if insecure_dev:
        if production:
            raise InsecureNotAllowedError(
                f"the {what} runs under an agreement whose deployment is 'production': plaintext "
                "(--insecure-dev) is refused"
            )
        warn_insecure(what)
    elif credentials is None:
        raise InsecureNotAllowedError(
            f"the {what} has no TLS configuration: add a [tls] section (lateral pki issue makes the files), "
            "or pass --insecure-dev to run it in plaintext on a developer's machine"
        )
    try:
        port: int = (
            server.add_insecure_port(address)
            if insecure_dev
            else server.add_secure_port(address, credentials)  # type: ignore[arg-type]
        )
    except RuntimeError:  # grpc's way of saying the address is taken or invalid
        raise OSError(f"the {what} cannot listen on {address}: is another server using it?") from None
    return port


def insecure_channel(
    target: str,
    interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
    options: Sequence[tuple[str, int | str]] = (),
) -> grpc.aio.Channel:
    """A long-lived plaintext channel (development only); `options` add to CHANNEL_OPTIONS."""
    return grpc.aio.insecure_channel(target, options=[*CHANNEL_OPTIONS, *options], interceptors=interceptors)


def secure_channel(
    target: str,
    credentials: grpc.ChannelCredentials,
    interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
    options: Sequence[tuple[str, int | str]] = (),
) -> grpc.aio.Channel:
    """A long-lived mutual-TLS channel; `options` add to CHANNEL_OPTIONS."""
    return grpc.aio.secure_channel(
        target, credentials, options=[*CHANNEL_OPTIONS, *options], interceptors=interceptors
    )


def timestamp(at: dt.datetime) -> timestamp_pb2.Timestamp:
    """An aware datetime as a protobuf Timestamp (UTC)."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at.astimezone(dt.UTC).replace(tzinfo=None))
    return stamp
