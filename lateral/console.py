"""What every command shares: the error console, failing with an exit code, loading configuration."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import click
import grpc
from rich.console import Console
from rich.markup import escape

from lateral.config import ConfigError

# soft_wrap: an error message stays on one line, whatever the terminal width, so it can be searched.
err_console = Console(stderr=True, soft_wrap=True)

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    """Prints an error for a person and exits with code."""
    # The message is text, not markup: "[tls]" in it must print as written.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    sys.exit(code)


def load(loader: Callable[[Path], T], path: Path) -> T:
    """Loads a configuration file, or exits 2 naming the file, key and problem."""
    try:
        return loader(path)
    except ConfigError as error:
        fail(str(error), 2)


def server_logging() -> None:
    """Servers log at info unless --log-level said otherwise."""
    if click.get_current_context().find_root().obj is None:
        logging.getLogger().setLevel(logging.INFO)


def fail_rpc(error: grpc.aio.AioRpcError, what: str, address: str) -> NoReturn:
    """Exits for a broker call that failed: 2 when the request is invalid (every bad field listed), 4 when
    it is refused, 5 when what it names does not exist, 3 when the broker cannot be reached or answered
    anything else."""
    from lateral.errors import field_violations

    code = error.code()
    violations = field_violations(error)
    if code == grpc.StatusCode.INVALID_ARGUMENT and violations:
        err_console.print(f"[bold red]The {what} was not made:[/] please correct these details.")
        for v in violations:
            err_console.print(f"  {v.field}: {v.description}", highlight=False)
        sys.exit(2)
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        fail(f"the {what} was refused: {error.details()}", 4)
    if code == grpc.StatusCode.NOT_FOUND:
        fail(error.details() or "not found", 5)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        fail(
            f"cannot reach the broker at {address}, or it could not answer ({code.name}): {error.details()}",
            3,
        )
    fail(f"the broker answered {code.name}: {error.details()}", 3)
