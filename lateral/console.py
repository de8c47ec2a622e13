"""What every command shares: the error console, failing with an exit code, loading configuration."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import click
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
