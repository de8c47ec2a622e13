"""Properties of the data-sharing agreement's loader and parser (hypothesis): any bytes, any TOML and any
change to the example agreement give an Agreement that can be used (signed, compiled to Cedar, decided
under) or a ConfigError naming the file; never another exception. The checks are the agreement fuzz
targets' (fuzz/agreement.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fuzz.agreement import SOURCE, agreement_fields, agreement_toml, example_data, example_text, load
from lateral.config import ConfigError, parse_toml
from policy.agreement import parse_agreement

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


def test_the_example_agreement_is_usable() -> None:
    agreement_toml(example_text())


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(example_text())), st.integers(0, 40), st.binary(max_size=8))
def test_the_example_file_with_bytes_replaced_loads_or_is_refused(at: int, cut: int, inserted: bytes) -> None:
    text = example_text()
    agreement_toml(text[:at] + inserted + text[at + cut :])


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=40))
def test_the_example_with_changes_drawn_from_any_bytes_loads_or_is_refused(data: bytes) -> None:
    agreement_fields(data)


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


# Where a DPO writes free text or an id that becomes part of a Cedar policy or a decision.
FIELDS = [
    ("agreement", "timezone"),
    ("parties", 0, "agencies", 0),
    ("parties", 0, "signing_key"),
    ("permissions", 0, "roles", 0),
    ("permissions", 3, "hours", "from"),
    ("permissions", 3, "hours", "to"),
    ("permissions", 0, "obligations"),
    ("restrictions", 0, "categories", 0),
    ("restrictions", 0, "description"),
    ("review", 1, "categories", 0),
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FIELDS), TEXT)
@example(("agreement", "timezone"), "Europe")  # a folder of the time zone database (review; fixed)
@example(("agreement", "timezone"), "x" * 300)  # a file name too long for the system (review; fixed)
@example(("restrictions", 0, "categories", 0), "sexual\x01health")  # JSON's \u0001 is not Cedar's (fixed)
@example(("permissions", 0, "roles", 0), "mash-manager\n")  # `$` before a final line break (review; fixed)
@example(("permissions", 3, "hours", "to"), "18:00\n")
def test_any_text_in_a_clause_gives_a_usable_agreement_or_a_config_error(
    field: tuple[str | int, ...], value: str
) -> None:
    data = example_data()
    _set(data, field, [value] if field[-1] == "obligations" else value)
    load(data)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        (("agreement", "timezone"), "Europe", "agreement: timezone: unknown time zone 'Europe'"),
        (("permissions", 0, "roles", 0), "mash-manager\n", "permissions[0] (P1): roles"),
        (("permissions", 3, "hours", "to"), "18:00\n", "permissions[3] (P4): hours: to"),
        # Hours on no day compiled to a condition Cedar cannot parse (fuzzer; fixed).
        (
            ("permissions", 3, "hours", "days"),
            [],
            "permissions[3] (P4): hours: 'days' must name at least one day",
        ),
        (("parties", 0, "agencies", 0), 'social"care', "parties[0] (northshire-council): agencies[0]"),
        # A line break in a key or id is escaped: each problem stays on its line (fuzzer; fixed).
        (("x\u2028y",), "1", "'x\\u2028y': Extra inputs are not permitted"),
        (("parties", 0, "id"), "a\nb", "parties[0] ('a\\nb'): id: String should match pattern"),
    ],
)
def test_a_bad_value_is_refused_naming_the_clause(
    field: tuple[str | int, ...], value: Any, problem: str
) -> None:
    data = example_data()
    _set(data, field, value)
    with pytest.raises(ConfigError) as refused:
        parse_agreement(data, SOURCE)
    assert str(refused.value).splitlines()[0].startswith(f"{SOURCE}: {problem}")


@pytest.mark.parametrize(
    "nested", ["a = " + "[" * 2000 + "]" * 2000, "a = " + "{b = " * 2000 + "1" + "}" * 2000]
)
def test_a_file_nested_absurdly_deep_is_a_config_error(nested: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_toml(nested.encode(), SOURCE)
    assert str(refused.value) == f"{SOURCE}: not valid TOML: nested too deeply"
