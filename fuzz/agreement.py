"""Fuzz targets for the data-sharing agreement: the TOML loader and parse_agreement, from raw bytes and from
the example agreement with clauses changed, added or removed.

What must hold: loading gives an Agreement or raises ConfigError (never KeyError, TypeError,
RecursionError, OSError...). An agreement that loads can be used: its canonical form (what parties sign)
is computed, every (agency, requester) slice compiles to Cedar, and the engine decides a request under it.
Ids that the agreement promises are lower-case words really are, whole (not just up to a line break).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
from functools import cache
from typing import Any

import cedarpy

from fuzz.draw import Draw
from lateral.config import ConfigError, parse_toml
from lateral.demo.agreement import EXAMPLE_AGREEMENT
from policy.agreement import Agreement, parse_agreement
from policy.cedar import compile_policies
from policy.engine import Decision, PolicyEngine, Request
from policy.signing import digest

SOURCE = "dsa.toml"
_ID = re.compile(r"[a-z][a-z0-9-]{0,62}")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")
_KEY = re.compile(r"ed25519:[A-Za-z0-9+/]{43}=")
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


@cache
def example_text() -> bytes:
    return EXAMPLE_AGREEMENT.read_bytes()


@cache
def _example() -> dict[str, Any]:
    return parse_toml(example_text(), SOURCE)


def example_data() -> dict[str, Any]:
    """A fresh copy of the example agreement's data."""
    return copy.deepcopy(_example())


def check_usable(agreement: Agreement, data: dict[str, Any]) -> None:
    """What an agreement that loaded must allow (see the module docstring)."""
    assert digest(data).startswith("sha256:")
    for party in agreement.parties:
        assert _ID.fullmatch(party.id)
        assert all(_ID.fullmatch(agency) for agency in party.agencies), "an agency id is not an id"
        assert not party.signing_key or _KEY.fullmatch(party.signing_key)
    for permission in agreement.permissions:
        assert all(_ID.fullmatch(role) for role in permission.roles), "a role is not an id"
        if permission.hours is not None:
            assert _TIME.fullmatch(permission.hours.start), "hours: from is not a time"
            assert _TIME.fullmatch(permission.hours.end), "hours: to is not a time"
    cedarpy.PolicySet.from_str(compile_policies(agreement))
    for agency in agreement.agencies:
        for party in agreement.parties:
            cedarpy.PolicySet.from_str(compile_policies(agreement, agency=agency, requester=party.id))
    engine = PolicyEngine(agreement)
    permission = agreement.permissions[0]
    request = Request(
        organisation=permission.requesters[0],
        role=permission.roles[0],
        purpose=permission.purposes[0],
        agency=permission.agencies[0],
        at=MONDAY_10,
    )
    decision = engine.decide(request)
    assert isinstance(decision, Decision)
    if decision.allowed:
        # Whatever its text, a category an unconditional restriction names is never disclosed.
        restricted = engine.restricted_categories(request.agency)
        assert engine.hidden_categories(request, restricted) == restricted, (
            "a restricted category is disclosed"
        )


def load(data: dict[str, Any]) -> None:
    """Parses agreement data: an Agreement (then usable) or a ConfigError."""
    try:
        agreement = parse_agreement(data, SOURCE)
    except ConfigError as error:
        problems = str(error).splitlines()
    else:
        check_usable(agreement, data)
        return
    assert all(p.startswith(f"{SOURCE}: ") for p in problems), "a problem does not name the file"


def agreement_toml(data: bytes) -> None:
    """Target: the bytes of a DSA file, through the TOML loader and the agreement's validation."""
    try:
        parsed = parse_toml(data, SOURCE)
    except ConfigError:
        return
    load(parsed)


def _paths(node: Any, at: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every position in nested data, containers included, depth first."""
    found = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*at, i))
    return found


def _value(draw: Draw, example: Any) -> Any:
    """Something of any TOML type, or a copy of the example with one character changed."""
    kind = draw.integer(0, 11)
    if kind == 0 and isinstance(example, str) and example:
        at = draw.integer(0, len(example))
        return example[:at] + draw.text(3) + example[at + draw.integer(0, 1) :]
    choices: list[Any] = [
        draw.text(30),
        draw.choice((0, 1, -1, 2**31, 2**63 - 1, -(2**63), 36_500, 36_501)),
        draw.choice((0.5, math.inf, -math.inf, math.nan, 1e308)),
        draw.boolean(),
        dt.date(draw.integer(1, 9999), draw.integer(1, 12), draw.integer(1, 28)),
        dt.datetime(2026, 1, 1, draw.integer(0, 23), tzinfo=dt.UTC if draw.boolean() else None),
        dt.time(draw.integer(0, 23), draw.integer(0, 59)),
        [draw.text(12) for _ in range(draw.integer(0, 3))],
        {draw.text(8): draw.text(8)},
        [],
        {},
    ]
    return choices[kind - 1] if kind else draw.text(30)


def mutate(draw: Draw, data: dict[str, Any]) -> None:
    """Changes data in place, as many times as the bytes say: replace, delete, add or repeat a value."""
    for _ in range(draw.integer(1, 4)):
        path = draw.choice(_paths(data))
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        current = parent[path[-1]] if path else data
        operation = draw.integer(0, 3)
        if not path or operation == 2:
            if isinstance(current, dict):
                key = draw.choice(("id", "agencies", "extra", "from", "to", draw.text(6)))
                current[key] = _value(draw, "")
            elif isinstance(current, list):
                current.append(copy.deepcopy(current[-1]) if current and draw.boolean() else _value(draw, ""))
        elif operation == 0:
            parent[path[-1]] = _value(draw, current)
        elif operation == 1:
            del parent[path[-1]]
        elif isinstance(current, str):
            parent[path[-1]] = current * draw.integer(0, 3)


def agreement_fields(data: bytes) -> None:
    """Target: the example agreement with a few values changed, removed or added as the bytes say."""
    agreement = example_data()
    mutate(Draw(data), agreement)
    load(agreement)
