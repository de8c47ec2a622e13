"""Loading TOML configuration into frozen pydantic models, with errors that name the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(Exception):
    """A configuration file is missing, unreadable or invalid. The message names the file and each key."""


class Frozen(BaseModel):
    """Base for configuration models: immutable, and unknown keys are errors (typos must not pass)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


M = TypeVar("M", bound=BaseModel)


def _key(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key or "(top level)"


def read_toml(path: Path) -> dict[str, Any]:
    """Reads a TOML file, raising ConfigError naming the file (and line, for syntax errors)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a TOML file") from None
    return parse_toml(data, path)


def parse_toml(data: bytes, source: Path | str) -> dict[str, Any]:
    """Parses a TOML document read from source, raising ConfigError naming it (and the line, for syntax
    errors)."""
    try:
        text = data.decode()
    except UnicodeDecodeError as error:
        raise ConfigError(f"{source}: not UTF-8 text (byte {error.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively, with no limit of its own
        raise ConfigError(f"{source}: not valid TOML: nested too deeply") from None


def parse_model(model: type[M], data: dict[str, Any], source: Path | str) -> M:
    """Validates data into model, raising ConfigError with one line per problem: file, key, what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [f"{source}: {_key(e['loc'])}: {e['msg']}" for e in error.errors(include_input=False)]
        raise ConfigError("\n".join(problems)) from None


def load_model(model: type[M], path: Path) -> M:
    """Reads and validates a TOML configuration file."""
    return parse_model(model, read_toml(path), path)
