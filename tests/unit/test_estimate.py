"""Weights estimated from an agency's own records, their file, and their use."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from adapters.core.estimate import estimate, load_weights, write_weights
from adapters.core.matching import Matcher
from lateral.config import ConfigError
from protos.lateral.v1 import common_pb2
from synth import SynthConfig, generate
from synth.config import police_knowing
from tests.unit.synthetic_index import index_of

TODAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def records():  # type: ignore[no-untyped-def]
    coverage = police_knowing(0.75, duplicate_record=0.2)
    return generate(SynthConfig(people=8000, seed=5, coverage=coverage), TODAY).records["police"]


def test_estimates_u_from_random_pairs_and_m_from_duplicates(records) -> None:  # type: ignore[no-untyped-def]
    result = estimate(index_of(records.people), random_pairs=50_000, records=5000)
    assert result.m_estimated
    assert result.matches > 30
    m_exact, u_exact = result.levels["dob"]["exact"]
    assert u_exact is not None
    assert u_exact < 0.001
    assert m_exact > 0.8  # one person's two records nearly always do
    m_diff, u_diff = result.levels["given"]["different"]
    assert u_diff is not None
    assert u_diff > 0.9
    assert m_diff < 0.1
    assert result.levels["family"]["exact"][1] is None  # term frequencies stay term frequencies


def test_weights_file_round_trip_and_matching_with_it(records, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = index_of(records.people)
    result = estimate(index, random_pairs=20_000, records=2000)
    path = tmp_path / "weights.toml"
    write_weights(result, path)
    weights = load_weights(path)
    for name, table in result.levels.items():
        for level, (m, u) in table.items():
            got_m, got_u = weights.levels[name][level]
            assert got_m == pytest.approx(m, rel=1e-4)
            assert (got_u is None) == (u is None)
    first = records.people[0]
    subject = common_pb2.Subject(
        given_names=list(first.given_names),
        family_name=first.family_name,
        date_of_birth=first.date_of_birth.isoformat() if first.date_of_birth else "",
        address=common_pb2.Address(postcode=first.postcode, lines=[first.address_line]),
    )
    assert str(first.record_id) in Matcher(index, weights=weights).match(subject).record_keys


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[levels.shoe]\nexact = [0.9, 0.1]\n", "levels.shoe: no such field"),
        ("[levels.dob]\nnear = [0.9, 0.1]\n", "levels.dob.near: no such level"),
        ("[levels.dob]\nexact = [0.9]\n", "levels.dob.exact: expected [m, u]"),
        ("[levels.dob]\nexact = [1.5, 0.1]\n", "levels.dob.exact: m and u must be probabilities in (0, 1]"),
    ],
)
def test_bad_weights_files_name_the_level(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "weights.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_weights(path)
    assert str(error.value).startswith(f"{path}: {message}")
