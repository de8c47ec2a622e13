"""Dice over packed encodings: exact values and the errors for malformed input."""

from __future__ import annotations

import numpy as np
import pytest

from linkage import as_packed, dice, dice_matrix, dice_one_to_many
from tests.unit.linkage_town import exactly


def test_dice_of_known_encodings() -> None:
    a = bytes([0b1111_0000]) + bytes(7)
    b = bytes([0b1100_1100]) + bytes(7)
    assert dice(a, a) == 1.0
    assert dice(a, b) == 2 * 2 / 8
    assert dice(a, bytes(8)) == 0.0


def test_two_empty_encodings_have_dice_zero_not_a_division_error() -> None:
    assert dice(bytes(8), bytes(8)) == 0.0
    assert dice_matrix(as_packed([bytes(8)]), as_packed([bytes(8)])).tolist() == [[0.0]]


def test_packed_matrices_from_encode_many_and_from_bytes_agree() -> None:
    rows = [bytes(range(i, i + 16)) for i in range(3)]
    from_bytes = as_packed(rows)
    from_matrix = as_packed(np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(3, 16))
    assert np.array_equal(from_bytes, from_matrix)
    assert from_bytes.dtype == np.uint64
    assert np.allclose(dice_one_to_many(from_bytes[0], from_bytes), dice_matrix(from_bytes, from_bytes)[0])


def test_encodings_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match=exactly("encodings differ in length: [8, 16] bytes")):
        as_packed([bytes(8), bytes(16)])


def test_an_encoding_that_is_not_whole_words_is_refused() -> None:
    with pytest.raises(
        ValueError, match=exactly("an encoding must be a whole number of 64-bit words (got 12 bytes)")
    ):
        as_packed([bytes(12)])


def test_a_matrix_must_have_two_dimensions() -> None:
    with pytest.raises(ValueError, match=exactly("encodings must be a matrix, one row per encoding")):
        as_packed(np.zeros(16, dtype=np.uint8))
