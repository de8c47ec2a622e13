"""Encoding: keys and tokens, the features a record is made of, and the encodings' determinism and
dependence on the key."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from linkage import (
    DEFAULT_PARAMS,
    UNHARDENED,
    EncodingParams,
    LinkageKey,
    RecordFields,
    bloom_filters,
    dice,
    encode,
    encode_many,
    features,
    qgrams,
    record_token,
)
from linkage.encoding import positions
from tests.unit.linkage_town import exactly

SECRET = bytes(range(1, 33))
KEY = LinkageKey(SECRET, epoch=7)
ANN = RecordFields(
    given_names=("Mary-Ann", "Louise"),
    family_name="O'Brien",
    other_names=((("Mary",), "Smith-Jones"),),
    date_of_birth=dt.date(1990, 3, 12),
    gender="female",
    postcode="nt1 4qt",
)


def test_a_secret_shorter_than_32_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match=exactly("the linkage secret must be at least 32 bytes (got 17)")):
        LinkageKey(b"x" * 16 + b"y")


def test_a_secret_of_one_repeated_byte_is_refused() -> None:
    with pytest.raises(ValueError, match=exactly("the linkage secret must be random, not one byte repeated")):
        LinkageKey(b"\x00" * 32)


def test_a_secret_must_be_bytes() -> None:
    with pytest.raises(TypeError) as error:
        LinkageKey("a string of more than thirty-two characters")  # type: ignore[arg-type]
    assert str(error.value) == "the linkage secret must be bytes"


@pytest.mark.parametrize("epoch", [-1, 2**32, True])
def test_the_epoch_must_be_a_32_bit_number(epoch: int) -> None:
    with pytest.raises(ValueError, match=exactly("the key epoch must be an integer from 0 to 2**32 - 1")):
        LinkageKey(SECRET, epoch=epoch)


def test_the_key_never_prints_its_secret() -> None:
    assert SECRET.hex() not in repr(KEY)
    assert str(SECRET) not in repr(KEY)
    assert repr(KEY) == "LinkageKey(epoch=7)"


def test_sub_keys_differ_by_purpose_and_epoch_and_the_key_id_names_the_epoch() -> None:
    keys = {KEY.sub_key("kind/name"), KEY.sub_key("kind/formal"), LinkageKey(SECRET, 8).sub_key("kind/name")}
    assert len(keys) == 3
    assert all(len(k) == 32 for k in keys)
    assert KEY.key_id.startswith("7:")
    assert len(KEY.key_id) == 18
    assert KEY.key_id != LinkageKey(SECRET, 8).key_id


def test_a_record_token_is_a_keyed_pseudonym_of_the_record() -> None:
    police, fire = bytes(range(40, 72)), bytes(range(80, 112))
    token = record_token(police, "15241")
    assert token == record_token(police, "15241")
    assert len(token) == 32
    assert int(token, 16) >= 0
    assert token not in {record_token(police, "15242"), record_token(fire, "15241")}
    assert "15241" not in token


def test_a_token_secret_shorter_than_32_bytes_is_refused() -> None:
    with pytest.raises(
        ValueError, match=exactly("the agency's token secret must be at least 32 bytes (got 5)")
    ):
        record_token(b"short", "15241")


def test_qgrams_are_padded_and_an_empty_word_has_none() -> None:
    assert qgrams("ann") == ("_a", "an", "nn", "n_")
    assert qgrams("ann", 3) == ("__a", "_an", "ann", "nn_", "n__")
    assert qgrams("") == ()


def test_the_features_of_a_record_use_the_matchers_normalisation() -> None:
    found = features(ANN)
    # First given word only; the family name joined (O'Brien -> obrien) and the other name's too.
    expected_names = set(qgrams("mary")) | set(qgrams("obrien")) | set(qgrams("smithjones"))
    assert found["name"] == expected_names
    assert {"mary", "marie", "maureen"} <= found["formal"]
    singles = {kind: set(values) for kind, values in found.items() if kind not in ("name", "formal")}
    assert singles == {
        "year": {"1990"},
        "month": {"3"},
        "day": {"12"},
        "day_month": {"3/12"},
        "postcode": {"NT1 4QT"},
        "sector": {"NT1 4"},
        "district": {"NT1"},
        "gender": {"1"},
    }


def test_a_day_and_month_swapped_keep_the_unordered_pair() -> None:
    swapped = RecordFields(("Ann",), "Lee", date_of_birth=dt.date(1990, 12, 3))
    assert features(swapped)["day_month"] == features(ANN)["day_month"]


def test_missing_fields_leave_their_kinds_out() -> None:
    bare = RecordFields(("Ann",), "Lee", gender="not_known", postcode="NT1")
    assert set(features(bare)) == {"name", "formal", "district"}


def test_a_nickname_and_its_formal_name_share_formal_words() -> None:
    bill, william = features(RecordFields(("Bill",), "Lee")), features(RecordFields(("William",), "Lee"))
    assert {"bill", "william"} <= bill["formal"] & william["formal"]


def test_encodings_are_deterministic_and_of_fixed_length() -> None:
    first, again = encode(KEY, ANN), encode(KEY, ANN)
    assert first == again
    assert len(first) == DEFAULT_PARAMS.encoded_bytes == 128
    short = RecordFields(("Al",), "Ng")
    assert len(encode(KEY, short)) == 128
    many = encode_many(KEY, [ANN, short])
    assert bytes(many[0]) == first
    assert many.shape == (2, 128)


def test_another_key_or_epoch_changes_every_position() -> None:
    other_secret = LinkageKey(bytes(range(2, 34)), epoch=7)
    other_epoch = LinkageKey(SECRET, epoch=8)
    mine = positions(KEY, ANN, UNHARDENED)
    for other in (other_secret, other_epoch):
        theirs = positions(other, ANN, UNHARDENED)
        # Unrelated positions overlap by chance only (about a third of them at this fill).
        assert len(mine & theirs) < 0.5 * len(mine)
        # Hardened, the two encodings of one record are as alike as two strangers'.
        assert dice(encode(KEY, ANN), encode(other, ANN)) < 0.56


def test_the_hardened_encoding_is_about_half_ones_whatever_the_record() -> None:
    # Diffusion hides the number of q-grams, which an unhardened filter's weight reveals.
    long = RecordFields(("Maximilian",), "Wolfeschlegelsteinhausen", date_of_birth=dt.date(1950, 1, 1))
    short = RecordFields(("Al",), "Ng")
    ones = [int(np.unpackbits(np.frombuffer(encode(KEY, r), np.uint8)).sum()) for r in (long, short)]
    assert all(380 <= n <= 640 for n in ones), ones
    raw = bloom_filters(KEY, [long, short], UNHARDENED).sum(axis=1)
    assert raw[0] > 2 * raw[1]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"length": 1000}, "the filter length must be a power of two from 128 to 16384"),
        ({"q": 0}, "q must be from 1 to 4"),
        ({"k": {"surname": 3}}, "unknown feature kinds: surname"),
        ({"k": {"name": 65}}, "k must be from 0 to 64 for every kind"),
        ({"hardening": "rot13"}, "hardening must be one of none, salt, balance, xor_fold, diffusion"),
        ({"taps": 0}, "diffusion taps must be from 1 to 16"),
    ],
)
def test_parameters_out_of_range_are_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        EncodingParams(**arguments)  # type: ignore[arg-type]


def test_encoded_lengths_follow_the_hardening() -> None:
    sizes = {
        h: EncodingParams(hardening=h).encoded_bytes for h in ("none", "balance", "xor_fold", "diffusion")
    }
    assert sizes == {"none": 128, "balance": 256, "xor_fold": 64, "diffusion": 128}
    for hardening, size in sizes.items():
        assert len(encode(KEY, ANN, EncodingParams(hardening=hardening))) == size


def test_salting_moves_name_positions_with_the_birth_year() -> None:
    names_only = dict.fromkeys(
        ("year", "month", "day", "day_month", "postcode", "sector", "district", "gender"), 0
    )
    salted, plain = (
        EncodingParams(hardening="salt", k=names_only),
        EncodingParams(hardening="none", k=names_only),
    )
    later = RecordFields(ANN.given_names, ANN.family_name, ANN.other_names, dt.date(1991, 3, 12))
    # The same names in another birth year: unrelated positions when salted, the same ones when not.
    assert len(positions(KEY, ANN, salted) & positions(KEY, later, salted)) < 0.5 * len(
        positions(KEY, ANN, salted)
    )
    assert positions(KEY, ANN, plain) == positions(KEY, later, plain)
