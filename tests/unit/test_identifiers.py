import pytest

from policy.identifiers import is_valid_nhs_number, normalise_postcode


@pytest.mark.parametrize("number", ["9434765919", "943 476 5919", "943-476-5919", "9990000018"])
def test_valid_nhs_numbers(number: str) -> None:
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize(
    "number",
    [
        "9434765918",  # wrong check digit
        "943476591",  # nine digits
        "94347659190",  # eleven digits
        "94347659l9",  # a letter
        "",
        "１２３４５６７８９０",  # full-width digits are digits to str.isdigit, not to us
    ],
)
def test_invalid_nhs_numbers(number: str) -> None:
    assert not is_valid_nhs_number(number)


def test_check_digit_of_ten_is_invalid() -> None:
    # Stem 100000001: 1*10 + 1*2 = 12, 11 - 12 % 11 = 10, so no number with this stem is valid.
    assert not any(is_valid_nhs_number(f"100000001{d}") for d in range(10))


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("nt14qt", "NT1 4QT"), ("SW1A 1AA", "SW1A 1AA"), (" b1  1aa ", "B1 1AA"), ("EC1A1BB", "EC1A 1BB")],
)
def test_postcodes_normalise(text: str, canonical: str) -> None:
    assert normalise_postcode(text) == canonical


@pytest.mark.parametrize("text", ["NT1", "12345", "NT1 4Q", "not a postcode", ""])
def test_not_postcodes(text: str) -> None:
    assert normalise_postcode(text) is None
