"""Properties of the normalisation matching relies on, for any text (hypothesis): the checks of the
normalise fuzz target (fuzz/normalisation.py), and what makes two spellings of one person agree."""

from __future__ import annotations

import datetime as dt

from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.core.normalise import (
    TITLES,
    date_key,
    fold,
    name_tokens,
    nhs_key,
    number_key,
    postcode_key,
)
from fuzz.normalisation import check_text
from policy.identifiers import is_valid_nhs_number, normalise_postcode

# Every character, with surrogates left out (a str from a database or a request never holds one).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
LETTERS = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéÉøØłŁßæ")


@settings(max_examples=300, deadline=None)
@given(TEXT)
@example("ℌarry Bjǿrn")  # a compatibility letter folding to a letter that folds further (fuzzer, fixed)
@example("²")  # a digit that is not a decimal digit
def test_every_normaliser_keeps_its_properties_for_any_text(text: str) -> None:
    check_text(text)


def test_fold_reads_compatibility_letters_as_the_letters_they_stand_for() -> None:
    folded = [fold(t) for t in ("ℌarry", "Bjǿrn", "ﬀion", "Zoë Łukasz")]
    assert folded == ["harry", "bjorn", "ffion", "zoe lukasz"]


@given(st.text(LETTERS, min_size=1, max_size=12), st.sampled_from(sorted(TITLES)))
def test_a_title_or_a_change_of_case_does_not_change_a_name(name: str, title: str) -> None:
    tokens = name_tokens(name)
    assert name_tokens(f"{title.title()}. {name}") == tokens
    assert name_tokens(name.upper()) == name_tokens(name.lower()) == tokens


OUTWARD = st.from_regex(r"\A[A-Z]{1,2}[0-9][A-Z0-9]?\Z")
INWARD = st.from_regex(r"\A[0-9][A-Z]{2}\Z")


SPACES = st.lists(st.sampled_from([" ", "  ", "\t", ""]), min_size=7, max_size=7)


@given(OUTWARD, INWARD, SPACES, st.lists(st.booleans(), min_size=7, max_size=7))
def test_a_postcode_typed_with_any_spacing_and_case_has_its_canonical_key(
    outward: str, inward: str, spaces: list[str], lower: list[bool]
) -> None:
    canonical = f"{outward} {inward}"
    typed = "".join(
        (c.lower() if low else c) + space
        for c, space, low in zip(outward + inward, spaces, lower, strict=False)
    )
    assert normalise_postcode(typed) == postcode_key(typed) == canonical
    assert postcode_key(f"{outward} {inward[0]}") == f"{outward} {inward[0]}"  # a sector
    assert postcode_key(outward.lower()) == outward  # a district


def _check_digit(body: str) -> int:
    check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
    return 0 if check == 11 else check


NHS_BODY = st.from_regex(r"\A[0-9]{9}\Z").filter(lambda b: _check_digit(b) != 10)


@given(NHS_BODY, st.sampled_from(["", " ", "-"]))
def test_a_valid_nhs_number_keys_to_its_digits_however_separated(body: str, separator: str) -> None:
    number = body + str(_check_digit(body))
    typed = separator.join((number[:3], number[3:6], number[6:]))
    assert nhs_key(typed) == number
    assert number_key(nhs_key(typed)) == int(number)


@given(NHS_BODY, st.integers(0, 9), st.integers(1, 9))
def test_an_nhs_number_with_any_one_digit_wrong_is_refused(body: str, position: int, change: int) -> None:
    number = body + str(_check_digit(body))
    wrong = number[:position] + str((int(number[position]) + change) % 10) + number[position + 1 :]
    assert not is_valid_nhs_number(wrong)
    assert nhs_key(wrong) == ""


@given(NHS_BODY, st.integers(0, 7))
def test_an_nhs_number_with_two_digits_swapped_is_refused(body: str, position: int) -> None:
    number = body + str(_check_digit(body))
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    assert (nhs_key(swapped) == "") == (swapped != number)


@given(st.dates(), st.dates())
def test_date_keys_keep_the_order_of_dates(a: dt.date, b: dt.date) -> None:
    assert date_key(a.isoformat()) == date_key(a) == a.year * 10_000 + a.month * 100 + a.day
    assert (date_key(a) < date_key(b)) == (a < b)


@given(st.integers(0, 10**18 - 1))
def test_number_key_reads_ascii_digits(n: int) -> None:
    assert number_key(str(n)) == n
    assert number_key(str(n).zfill(18)) == n
