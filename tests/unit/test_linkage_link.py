"""Linking: quality on a small synthetic town, and the greedy one-to-one rules on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest

from linkage import (
    DEFAULT_PARAMS,
    EncodedRecord,
    Entity,
    LinkageKey,
    LinkParams,
    LshBlocking,
    Member,
    cluster,
    encode_many,
    link,
)
from tests.unit.linkage_town import cached_town, exactly, linked_pairs, pair_quality, true_pairs

KEY = LinkageKey(bytes(range(1, 33)), epoch=1)
FEW_BANDS = LinkParams(blocking=LshBlocking(bands=16, bits_per_band=20))


def test_linking_a_small_town_reaches_the_stated_precision_and_recall() -> None:
    town = cached_town(20_000)
    result = cluster(encode_many(KEY, town.fields, DEFAULT_PARAMS), town.agency_ids)
    precision, recall, f1 = pair_quality(linked_pairs(result.labels, town.agency_ids), true_pairs(town))
    # Measured on this town: precision 1.000, recall 0.929 (the plain matcher's KNOWN: 1.000, 0.813).
    assert precision >= 0.99, (precision, recall, f1)
    assert recall >= 0.90, (precision, recall, f1)
    assert all(s >= LinkParams().threshold for _, _, s in result.links)


def _random(rows: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (rows, 128), dtype=np.uint8)


def _flip(row: np.ndarray, bits: int, seed: int) -> np.ndarray:
    """row with `bits` of its bits flipped (a near copy)."""
    unpacked = np.unpackbits(row)
    unpacked[np.random.default_rng(seed).choice(len(unpacked), bits, replace=False)] ^= 1
    return np.packbits(unpacked)


def test_a_record_links_to_the_closer_of_two_records_of_another_agency_when_one_to_one() -> None:
    base = _random(1)[0]
    encodings = np.stack([base, _flip(base, 40, 1), _flip(base, 80, 2)])
    agencies = np.array([0, 1, 1], dtype=np.intp)
    result = cluster(encodings, agencies, FEW_BANDS, (np.array([0, 0]), np.array([1, 2])))
    assert result.labels.tolist() == [0, 0, 2]
    assert [(a, b) for a, b, _ in result.links] == [(0, 1)]


def test_two_per_agency_lets_a_duplicate_pair_join_one_entity() -> None:
    base = _random(1)[0]
    encodings = np.stack([base, _flip(base, 40, 1), _flip(base, 80, 2)])
    agencies = np.array([0, 1, 1], dtype=np.intp)
    params = LinkParams(max_per_agency=2, blocking=FEW_BANDS.blocking)
    result = cluster(encodings, agencies, params, (np.array([0, 0]), np.array([1, 2])))
    assert result.labels.tolist() == [0, 0, 0]


def test_an_entity_never_holds_more_of_an_agency_than_allowed() -> None:
    # a (agency 0) links b (agency 1); c (agency 1) links d (agency 2); d-a would join b and c: refused.
    base, other = _random(2)
    encodings = np.stack([base, _flip(base, 10, 1), other, _flip(other, 10, 2), _flip(base, 60, 3)])
    agencies = np.array([0, 1, 1, 2, 2], dtype=np.intp)
    pairs = (np.array([0, 2, 0, 1]), np.array([1, 3, 3, 4]))
    result = cluster(encodings, agencies, FEW_BANDS, pairs)
    assert result.labels.tolist() == [0, 0, 2, 2, 0]


def test_link_names_entities_by_agency_and_token() -> None:
    base, other = _random(2)
    records = [
        EncodedRecord("police", "p1", bytes(base)),
        EncodedRecord("nhs", "n1", bytes(_flip(base, 30, 1))),
        EncodedRecord("fire", "f1", bytes(other)),
    ]
    entities = link(records, LinkParams(blocking=LshBlocking(bands=64, bits_per_band=12)))
    assert entities[0].members == (Member("nhs", "n1"), Member("police", "p1"))
    assert entities[0].agencies == ("nhs", "police")
    assert 0.9 < entities[0].weakest_link < 1.0
    assert entities[1] == Entity((Member("fire", "f1"),), 1.0)


def test_two_records_with_one_agency_and_token_are_refused() -> None:
    record = EncodedRecord("police", "p1", bytes(128))
    with pytest.raises(ValueError, match=exactly("two records share an agency and token")):
        link([record, record])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"threshold": 0.0}, "the threshold must be above 0 and at most 1"),
        ({"threshold": 1.5}, "the threshold must be above 0 and at most 1"),
        ({"max_per_agency": 3}, "max_per_agency must be 1 or 2"),
    ],
)
def test_link_parameters_out_of_range_are_refused(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        LinkParams(**arguments)  # type: ignore[arg-type]
