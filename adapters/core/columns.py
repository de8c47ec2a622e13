"""Source rows a batch at a time, column by column: the fast way from the agency database to the index.

A build reads every row of the agency's database, so the Python run per row is what it costs: at a
million people and two million activity rows, fetching the rows is a few seconds and handling them one by
one (a named field at a time, an object per row) was twenty more. A batch of rows is instead turned into
columns with one zip, and each column converted with maps over a memo of its distinct values (names,
codes, flags and dates repeat across millions of rows), so the work per row is done mostly in C.

Only the common case goes this way: a batch with a row to skip (no key, no family name, an unreadable
date, a code outside the vocabulary) is handled row by row instead, so that skips are counted, and their
messages logged, exactly as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple, TypeVar

if TYPE_CHECKING:
    from adapters.core.source import Contact

BATCH = 10_000
_NONE = type(None)
_EMPTY_FOR_NULL: dict[object, str] = {None: ""}
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class PeopleColumns(NamedTuple):
    """A batch of person rows, a list per field (SourcePerson's fields). given_names is the column's text:
    its names separated by white space."""

    record_key: list[str]
    given_names: list[str]
    family_name: list[str]
    date_of_birth: list[dt.date | None]
    gender: list[str | None]
    address: list[str]
    postcode: list[str]
    uprn: list[str]
    nhs_number: list[str]
    restricted: list[bool]


class EventColumns(NamedTuple):
    """A batch of activity rows, a list per field (SourceEvent's fields)."""

    record_key: list[str]
    activity_date: list[dt.date]
    category: list[str]
    restricted: list[bool]
    contact: list[Contact | None]


def text(value: object) -> str:
    """A value as stripped text; "" for NULL."""
    if type(value) is str:  # the common case, without the str() call
        return value.strip()
    return "" if value is None else str(value).strip()


def transpose(rows: Sequence[Sequence[object]], width: int) -> list[list[object]]:
    """A batch of rows as its columns. Not zip(*rows): that makes an iterator per row, and ten thousand
    objects alive at once survive into the collector's oldest generation, so that it then sweeps the whole
    index (lists of a million) every second or so: a third of the build's time, seen here."""
    return [list(map(itemgetter(i), rows)) for i in range(width)]


def texts(column: Sequence[object]) -> list[str]:
    """text() of every value of a column."""
    kinds = set(map(type, column))
    if kinds <= {str, _NONE}:
        if _NONE in kinds:  # NULL as "", in C: {None: ""}.get(value, value)
            column = list(map(_EMPTY_FOR_NULL.get, column, column))
        return list(map(str.strip, column))  # type: ignore[arg-type]
    if kinds == {int}:
        return list(map(str, column))
    return list(map(text, column))


def converted(column: Sequence[object], convert: Callable[[object], _V], memo: dict[object, _V]) -> list[_V]:
    """convert of every value of a column, converting each distinct text once (memo keeps them between
    batches, emptied when it grows past 100,000: a column of timestamps costs no more than converting
    each). Only a column of text and NULLs is memoised: 1, 1.0 and True are one dict key but not one text."""
    if not set(map(type, column)) <= {str, _NONE}:
        return list(map(convert, column))
    if len(memo) > 100_000:
        memo.clear()
    for value in set(column).difference(memo):
        memo[value] = convert(value)
    return list(map(memo.__getitem__, column))


def flags(column: Sequence[object], flag: Callable[[object], bool], memo: dict[object, bool]) -> list[bool]:
    """flag of every value of a column; a column of booleans or integers is simply their truth."""
    if set(map(type, column)) <= {bool, int}:
        return list(map(bool, column))
    return converted(column, flag, memo)


def looked_up(memo: dict[_K, _V], values: Sequence[_K], compute: Callable[[_K], _V]) -> list[_V]:
    """compute of every value, computing each distinct value once (memo keeps them for the whole build)."""
    for value in set(values).difference(memo):
        memo[value] = compute(value)
    return list(map(memo.__getitem__, values))
