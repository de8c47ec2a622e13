"""The Northshire example agreement as data, for tests that change a clause and load it again."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from typing import Any

from lateral.demo.agreement import EXAMPLE_AGREEMENT
from policy.agreement import Agreement, parse_agreement

# A Monday, 10:00 in London (GMT in November).
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
SUNDAY_10 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


def example_data() -> dict[str, Any]:
    return copy.deepcopy(_DATA)


def example() -> Agreement:
    return parse_agreement(example_data(), "dsa.toml")


_DATA = tomllib.loads(EXAMPLE_AGREEMENT.read_text())
