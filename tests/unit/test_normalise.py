"""Every normalisation the matcher relies on."""

import pytest

from adapters.core.normalise import (
    address_key,
    date_key,
    family_key,
    fold,
    formal_names,
    gender_key,
    given_tokens,
    name_tokens,
    nhs_key,
    nickname_group,
    phonetic,
    postcode_key,
)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Zoë", "zoe"),
        ("Łukasz", "lukasz"),
        ("Siân", "sian"),
        ("ØSTERGAARD", "ostergaard"),
        ("Strauß", "strauss"),
    ],
)
def test_case_and_diacritics_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("O'Brien", ("obrien",)),
        ("O’Brien", ("obrien",)),
        ("McLeod", ("macleod",)),
        ("MacLeod", ("macleod",)),
        ("Smith-Jones", ("smith", "jones")),
        ("  Mary   Ann ", ("mary", "ann")),
        ("Mr John Smith", ("john", "smith")),
        ("Dr. Ngozi Okafor", ("ngozi", "okafor")),
        ("John Smith Jnr", ("john", "smith")),
        ("Smith III", ("smith",)),
        ("Lord", ("lord",)),  # a family name, not a title, when it is the whole name
        ("Master", ("master",)),
        ("Mc", ("mc",)),
    ],
)
def test_name_tokens(text: str, tokens: tuple[str, ...]) -> None:
    assert name_tokens(text) == tokens


def test_family_key_joins_split_and_hyphenated_names() -> None:
    assert family_key("Smith-Jones") == family_key("Smith Jones") == family_key("SmithJones") == "smithjones"
    assert family_key("Ó Súilleabháin") == "osuilleabhain"


def test_given_tokens_keep_order_and_split_hyphens() -> None:
    assert given_tokens(["Mary-Ann", "Louise"]) == ("mary", "ann", "louise")
    assert given_tokens([]) == ()


def test_nicknames_in_both_directions() -> None:
    assert "william" in formal_names("bill")
    assert "william" in formal_names("william")
    assert "bill" in nickname_group("william")
    assert "william" in nickname_group("bill")
    assert "beth" in nickname_group("elizabeth")
    assert "elizabeth" in nickname_group("liz")


def test_phonetic_codes_join_spellings() -> None:
    assert phonetic("thomas") == phonetic("thomaz")
    assert phonetic("mohammed") == phonetic("muhammad")
    assert phonetic("smith") == phonetic("smyth")
    assert phonetic("") == ""


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("nt14qt", "NT1 4QT"),
        ("SW1A 1AA", "SW1A 1AA"),
        ("nt1", "NT1"),
        ("NT1 4", "NT1 4"),
        ("B1", "B1"),
        ("nonsense", ""),
        ("", ""),
    ],
)
def test_postcodes_full_and_partial(text: str, key: str) -> None:
    assert postcode_key(text) == key


@pytest.mark.parametrize(
    ("text", "number", "street"),
    [
        ("14 High Street", "14", {"high", "street"}),
        ("Flat 2, 14 High St", "14", {"high", "street"}),
        ("14b High Street", "14b", {"high", "street"}),
        ("Apartment 12 3 Mill Rd", "3", {"mill", "road"}),
        ("Rose Cottage, Church Lane", "", {"rose", "cottage", "church", "lane"}),
    ],
)
def test_address_tokens(text: str, number: str, street: set[str]) -> None:
    assert address_key(text) == (number, frozenset(street))


def test_identifiers_dates_and_genders() -> None:
    assert nhs_key("943 476 5919") == "9434765919"
    assert nhs_key("9434765918") == ""  # wrong check digit: never matches
    assert date_key("2012-03-14") == 20120314
    assert date_key(None) == date_key("") == 0
    assert (gender_key("female"), gender_key("male"), gender_key("other"), gender_key(None)) == (1, 2, 3, 0)
