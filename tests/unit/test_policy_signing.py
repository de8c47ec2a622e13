"""Signed agreements: services refuse one that is unsigned by a party whose data it governs, tampered with,
expired, not yet in force or past its review date; comments and layout may change freely."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lateral.config import ConfigError
from lateral.demo.agreement import write_signed_agreement
from policy.agreement import load_agreement
from policy.signing import read_private_key, read_signatures, sign, signatures_path, verify, write_signature
from policy.trust import AgreementRefusedError, load_trusted

TODAY = dt.date(2026, 11, 21)


@pytest.fixture
def signed(tmp_path: Path) -> Path:
    return write_signed_agreement(tmp_path, today=TODAY)


def refusal(path: Path, governs: list[str], today: dt.date = TODAY) -> tuple[str, str]:
    with pytest.raises(AgreementRefusedError) as error:
        load_trusted(path, governs=governs, today=today)
    return error.value.reason, str(error.value)


def test_a_signed_agreement_is_trusted_by_every_service(signed: Path) -> None:
    trusted = load_trusted(signed, governs=["police", "fire", "nhs", "socialcare"], today=TODAY)
    assert trusted.agreement.id == "northshire-mash-lateral-checks"
    assert trusted.digest.startswith("sha256:")
    assert trusted.warnings == ()


def test_comments_and_layout_do_not_break_signatures(signed: Path) -> None:
    signed.write_text("# reviewed by the DPO\n" + signed.read_text().replace(" = ", "   =   "))
    load_trusted(signed, governs=["police"], today=TODAY)


def test_any_change_of_meaning_is_tampering(signed: Path) -> None:
    signed.write_text(signed.read_text().replace("lookback_days = 730", "lookback_days = 7300"))
    reason, message = refusal(signed, ["fire"])
    assert reason == "TAMPERED"
    assert message == (
        f"{signed}: the signature of northshire-fire does not match this agreement: it was changed after "
        "signing, or the signature is not the party's"
    )


def test_an_agency_refuses_an_agreement_its_party_has_not_signed(signed: Path) -> None:
    sigs = signatures_path(signed)
    kept = [s for s in read_signatures(sigs) if s.party != "northshire-police"]
    sigs.unlink()
    for s in kept:
        write_signature(sigs, s)
    assert refusal(signed, ["police"]) == (
        "UNSIGNED",
        f"{signed}: northshire-police, whose data it governs, has not signed it (lateral dsa sign)",
    )
    # A service that governs no police data does not need the police signature.
    load_trusted(signed, governs=["fire"], today=TODAY)
    # The broker asks the police, so it needs it too.
    assert refusal(signed, ["fire", "police"])[0] == "UNSIGNED"


def test_a_signature_by_another_key_is_not_the_partys(signed: Path, tmp_path: Path) -> None:
    agreement, data = load_agreement(signed)
    forged = sign(
        agreement, data, "northshire-fire", read_private_key(tmp_path / "keys" / "northshire-fire.key")
    )
    write_signature(signatures_path(signed), type(forged)(**{**vars(forged), "party": "northshire-nhs"}))
    assert verify(agreement, data, read_signatures(signatures_path(signed)))["northshire-nhs"] == "invalid"
    assert refusal(signed, ["nhs"])[0] == "TAMPERED"


def test_signing_with_a_key_the_agreement_does_not_name_is_refused(signed: Path, tmp_path: Path) -> None:
    agreement, data = load_agreement(signed)
    with pytest.raises(ConfigError) as error:
        sign(agreement, data, "northshire-nhs", read_private_key(tmp_path / "keys" / "northshire-fire.key"))
    assert str(error.value) == (
        "parties (northshire-nhs): signing_key: this private key does not match the key the agreement names "
        "for the party (run lateral dsa keygen, or use the party's own key)"
    )


@pytest.mark.parametrize(
    ("today", "reason", "words"),
    [
        (TODAY + dt.timedelta(days=731), "EXPIRED", "expired on 2028-11-20"),
        (TODAY - dt.timedelta(days=31), "NOT_YET_VALID", "is not in force until 2026-10-22"),
        (
            TODAY + dt.timedelta(days=366),
            "REVIEW_OVERDUE",
            "was due for review by 2027-11-21; the parties must review and re-sign it",
        ),
    ],
)
def test_services_refuse_an_agreement_outside_its_dates(
    signed: Path, today: dt.date, reason: str, words: str
) -> None:
    assert refusal(signed, ["police"], today) == (
        reason,
        f"{signed}: agreement northshire-mash-lateral-checks v1 {words}",
    )


def test_a_review_date_close_by_is_a_warning(signed: Path) -> None:
    trusted = load_trusted(signed, governs=["police"], today=TODAY + dt.timedelta(days=350))
    assert trusted.warnings == (
        f"{signed}: agreement northshire-mash-lateral-checks is due for review by 2027-11-21 (in 15 days)",
    )


def test_an_agency_no_party_holds_is_refused(signed: Path) -> None:
    assert refusal(signed, ["education"]) == (
        "NOT_A_PARTY",
        f"{signed}: no party holds agency 'education': the agreement does not govern its data",
    )


def test_private_keys_are_owner_only(signed: Path, tmp_path: Path) -> None:
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "keys").iterdir()} == {0o600}


def test_a_service_pins_the_keys_it_was_given(signed: Path) -> None:
    agreement, _ = load_agreement(signed)
    police_key = agreement.party("northshire-police").signing_key
    load_trusted(signed, governs=["police"], today=TODAY, trusted_keys=[police_key])
    other = agreement.party("northshire-fire").signing_key
    with pytest.raises(AgreementRefusedError) as refused:
        load_trusted(signed, governs=["police"], today=TODAY, trusted_keys=[other])
    assert (refused.value.reason, str(refused.value)) == (
        "UNTRUSTED_KEY",
        f"{signed}: the signing key the agreement names for northshire-police is not one this service trusts "
        "([policy] trusted_keys): the agreement may have been replaced",
    )
