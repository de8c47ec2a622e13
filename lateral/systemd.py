"""Telling systemd how a service is doing: the sd_notify protocol, without libsystemd.

Under a unit with `Type=notify` (deploy/systemd/), systemd passes the path of a datagram socket in
`$NOTIFY_SOCKET`; the service sends it newline-separated `KEY=VALUE` assignments: `READY=1` once it serves
(an adapter only after its index is built), `RELOADING=1` with `MONOTONIC_USEC` when SIGHUP makes it
re-read its configuration and agreement (then `READY=1` again), `STOPPING=1` when SIGTERM starts a graceful
shutdown, and `STATUS=...` lines that `systemctl status` shows. A name starting with '@' is an abstract
socket (its first byte is NUL on the wire).

Outside systemd (no `$NOTIFY_SOCKET`) every call does nothing and returns False. Telling systemd is never
worth failing a check over: a send that fails is logged as a warning (without the socket's address) and
returns False. Values are ours (states and counts), never personal data.
"""

from __future__ import annotations

import logging
import os
import socket
import time

_log = logging.getLogger(__name__)

ENVIRONMENT = "NOTIFY_SOCKET"


def _address(value: str) -> str | None:
    """The socket address `$NOTIFY_SOCKET` names, or None when it is not one this module can reach."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # e.g. systemd's vsock:CID:PORT, for services inside virtual machines


def _line(assignment: str) -> str:
    """Checks one `KEY=VALUE` and keeps it on one line (a newline would start another assignment)."""
    key, equals, value = assignment.partition("=")
    if not equals or not key or not key.isascii() or any(c.isspace() for c in key):
        raise ValueError(f"not a KEY=VALUE assignment: {key!r}")
    return f"{key}={' '.join(value.splitlines())}"


def notify(*assignments: str) -> bool:
    """Sends `assignments` to systemd in one datagram, e.g. `notify("READY=1", "STATUS=serving")`.

    Args:
        assignments: `KEY=VALUE` strings; newlines inside a value become spaces.

    Returns:
        True when the datagram was sent; False when not run by systemd (`$NOTIFY_SOCKET` unset or empty)
        or when sending failed (logged as a warning).

    Raises:
        ValueError: when there is nothing to send or an assignment is not `KEY=VALUE` (a programming
            error, never a runtime condition).
    """
    if not assignments:
        raise ValueError("nothing to send")
    message = "\n".join(_line(a) for a in assignments).encode()
    value = os.environ.get(ENVIRONMENT, "")
    if not value:
        return False
    keys = ", ".join(a.partition("=")[0] for a in assignments)
    address = _address(value)
    if address is None:
        _log.warning("could not tell systemd %s: $NOTIFY_SOCKET is not a socket this service can reach", keys)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message, address)
    except OSError as error:
        # strerror only: the exception's text could carry the socket's path from the environment.
        _log.warning("could not tell systemd %s: %s", keys, error.strerror or type(error).__name__)
        return False
    return True


def ready(status: str) -> bool:
    """The service is serving (start-up done, or a reload finished); `status` shows in `systemctl status`."""
    return notify("READY=1", f"STATUS={status}")


def reloading() -> bool:
    """The service is re-reading its configuration (SIGHUP); send `ready` when done.

    `MONOTONIC_USEC` (CLOCK_MONOTONIC in microseconds) lets systemd tell this reload from an earlier one.
    """
    now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify("RELOADING=1", f"MONOTONIC_USEC={now_us}")


def stopping() -> bool:
    """The service is shutting down gracefully (SIGTERM): no new calls, in-flight checks finishing."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """A one-line status for `systemctl status` (e.g. how far an adapter's index build has got)."""
    return notify(f"STATUS={text}")
