"""Every comparison level, and what the levels weigh."""

import datetime as dt

import pytest

from adapters.core.matching import query_fields
from adapters.core.records import SeedPerson
from adapters.core.scoring import (
    DEFAULT_LEVELS,
    Scorer,
    Weights,
    address_level,
    dob_level,
    family_level,
    given_level,
    postcode_level,
)
from protos.lateral.v1 import common_pb2
from tests.unit.synthetic_index import index_of


@pytest.mark.parametrize(
    ("query", "record", "level"),
    [
        (("john",), ("john",), "exact"),
        (("bill",), ("william",), "nickname"),
        (("william",), ("bill",), "nickname"),
        (("sophie",), ("dophie",), "edit1"),
        (("emma",), ("emna",), "edit1"),
        (("morag",), ("rnorag",), "ocr"),
        (("philip",), ("phihp",), "ocr"),
        (("michael",), ("micheal",), "edit1"),
        (("christopher",), ("christophre",), "edit1"),
        (("gwendoline",), ("gwendolyn",), "jw92"),
        (("stephanie",), ("stefanie",), "jw88"),
        (("dyer",), ("dieer",), "phonetic"),
        (("j",), ("john",), "initial"),
        (("dalbir",), ("azaan", "dalbir"), "middle"),
        (("emily",), ("sophie",), "different"),
        ((), ("john",), "missing"),
    ],
)
def test_given_levels(query: tuple[str, ...], record: tuple[str, ...], level: str) -> None:
    assert given_level(query, record) == level


@pytest.mark.parametrize(
    ("query", "q_parts", "record", "r_parts", "level"),
    [
        ("smith", ("smith",), "smith", ("smith",), "exact"),
        ("smithjones", ("smith", "jones"), "jones", ("jones",), "part"),
        ("thompson", ("thompson",), "thomson", ("thomson",), "edit1"),
        ("hayes", ("hayes",), "haiees", ("haiees",), "phonetic"),
        ("smith", ("smith",), "walker", ("walker",), "different"),
        ("", (), "walker", ("walker",), "missing"),
    ],
)
def test_family_levels(
    query: str, q_parts: tuple[str, ...], record: str, r_parts: tuple[str, ...], level: str
) -> None:
    assert family_level(query, q_parts, record, r_parts) == level


@pytest.mark.parametrize(
    ("query", "record", "level"),
    [
        (20120314, 20120314, "exact"),
        (20120307, 20120703, "swap"),
        (20120314, 20120315, "digit"),
        (19850314, 19550314, "digit"),
        (20120314, 20130314, "digit"),
        (20190314, 20200314, "year1"),
        (20120314, 19881122, "different"),
        (0, 20120314, "missing"),
    ],
)
def test_date_of_birth_levels(query: int, record: int, level: str) -> None:
    assert dob_level(query, record) == level


@pytest.mark.parametrize(
    ("query", "record", "level"),
    [
        ("NT1 4QT", "NT1 4QT", "exact"),
        ("NT1 4QT", "NT1 4AB", "sector"),
        ("NT1 4QT", "NT1 7AB", "district"),
        ("NT1", "NT1 7AB", "district"),
        ("NT1 4QT", "NT5 4QT", "different"),
        ("", "NT1 4QT", "missing"),
    ],
)
def test_postcode_levels(query: str, record: str, level: str) -> None:
    assert postcode_level(query, record) == level


@pytest.mark.parametrize(
    ("query", "record", "level"),
    [
        (("14", frozenset({"high", "street"})), ("14", frozenset({"high", "street"})), "same"),
        (("14", frozenset({"high", "street"})), ("16", frozenset({"high", "street"})), "street"),
        (("14", frozenset({"high", "street"})), ("14", frozenset({"mill", "lane"})), "different"),
        (("", frozenset()), ("14", frozenset({"mill", "lane"})), "missing"),
    ],
)
def test_address_levels(
    query: tuple[str, frozenset[str]], record: tuple[str, frozenset[str]], level: str
) -> None:
    assert address_level(query, record) == level


def test_weights_are_evidence_for_agreement_and_against_disagreement() -> None:
    w = Weights()
    for name, levels in DEFAULT_LEVELS.items():
        for level, (m, u) in levels.items():
            assert 0 < m <= 1, (name, level)
            if u is not None:
                assert 0 < u <= 1, (name, level)
                if level in ("exact", "same", "agree", "swapped", "nickname", "edit1", "ocr", "jw92", "part"):
                    assert w.weight(name, level) > 0, (name, level)
                if level.startswith("different"):
                    assert w.weight(name, level) < 0, (name, level)


def test_term_frequency_makes_common_names_count_for_less() -> None:
    w = Weights()
    rare, common = w.weight("family", "exact", 1 / 1_000_000), w.weight("family", "exact", 1 / 100)
    assert rare > common + 10


def test_middle_names_agreeing_count_for_the_record_and_differing_against_it() -> None:
    def record(record_id: int, given: tuple[str, ...]) -> SeedPerson:
        return SeedPerson(record_id, given, "Hodgson", dt.date(1985, 8, 6), "female", "", "", "")

    index = index_of(
        [
            record(1, ("Denise", "Emily")),
            record(2, ("Denise", "Louise")),
            record(3, ("Denise",)),
            *[record(i, ("Ann", "Louise")) for i in range(4, 40)],
        ]
    )
    scorer = Scorer(index)
    q = query_fields(common_pb2.Subject(given_names=["Denise", "Emily"], family_name="Greenwood"))
    emily, louise, none = (scorer.score(q, index.row_of[key]) for key in ("1", "2", "3"))
    assert emily.levels["other_given"] == ("agree", Weights().weight("other_given", "agree", 1 / 39))
    assert louise.levels["other_given"] == ("different", Weights().weight("other_given", "different"))
    assert "other_given" not in none.levels
    assert emily.weight > none.weight > louise.weight
    # A common middle name counts for less than a rare one.
    q_louise = query_fields(common_pb2.Subject(given_names=["Denise", "Louise"], family_name="Hodgson"))
    assert scorer.score(q_louise, index.row_of["2"]).levels["other_given"][1] < emily.levels["other_given"][1]
