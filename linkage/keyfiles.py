"""The linkage secrets on disk (`lateral linkage keygen`), owner-only.

- The shared key: a TOML file with the epoch and 32 random bytes (hex), made once by one agency and given to
  every publishing agency out of band, never to the hub or the linkage service. A rotation makes a new file
  with the next epoch; every agency swaps it in on the same day.
- An agency's token key: 32 random bytes (hex) that only that agency holds, so only it can resolve the tokens
  it publishes.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from lateral.config import ConfigError
from linkage.keys import MIN_SECRET_BYTES, LinkageKey
from pki.authority import write_private


def write_shared_key(path: Path, epoch: int) -> LinkageKey:
    """Writes a new shared key of this epoch (owner-only) and returns it."""
    key = LinkageKey(os.urandom(MIN_SECRET_BYTES), epoch)
    body = (
        "# Lateral linkage key: for every agency that publishes, never the hub (docs/proactive.md).\n"
        f'epoch = {epoch}\nsecret = "{key.secret.hex()}"\n'
    )
    write_private(path, body.encode())
    return key


def read_shared_key(path: Path) -> LinkageKey:
    """The shared key in a file written by write_shared_key.

    Raises:
        ConfigError: naming the file and what is wrong with it (never the secret).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return LinkageKey(bytes.fromhex(data["secret"]), int(data["epoch"]))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such linkage key file (lateral linkage keygen makes one)") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
        what = "a missing 'epoch' or 'secret'" if isinstance(error, KeyError) else type(error).__name__
        raise ConfigError(f"{path}: not a linkage key file ({what})") from None


def write_token_key(path: Path) -> None:
    """Writes a new agency token key (owner-only)."""
    write_private(path, os.urandom(MIN_SECRET_BYTES).hex().encode() + b"\n")


def read_token_key(path: Path) -> bytes:
    """An agency's token key.

    Raises:
        ConfigError: naming the file and what is wrong with it.
    """
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such token key file (lateral linkage keygen --token makes one)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise ConfigError(f"{path}: not a token key file (hex digits expected)") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"{path}: a token key needs at least {MIN_SECRET_BYTES} bytes")
    return secret
