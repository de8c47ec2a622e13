"""What the generator makes: population shape, agency coverage and overlaps, and recording-error rates.

Defaults follow published figures where there are any (see docs/synthetic-data.md): about half of the
children known to children's social care are also known to police, about a third of adults known to adult
social care; fire incidents concentrate at the addresses of families known to children's services.
"""

from __future__ import annotations

from pydantic import Field

from lateral.config import Frozen

AGENCIES = ("police", "fire", "nhs", "socialcare")
# In the order they are applied. Whether an error can apply is decided on the true person, so that
# the rate asked for is the rate among the records it could apply to.
ERROR_TYPES = (
    "marriage",
    "hyphen_split_join",
    "diacritics_dropped",
    "transliteration",
    "nickname",
    "name_swap",
    "typo_keyboard",
    "typo_ocr",
    "typo_phonetic",
    "dob_day_month_swap",
    "dob_digit",
    "missing_date_of_birth",
    "missing_nhs_number",
    "missing_gender",
    "stale_address",
    "postcode_typo",
    "missing_postcode",
)

Rate = float


class OriginMix(Frozen):
    """Share of households by the origin of their names (an English town's diversity)."""

    english: Rate = 0.62
    welsh: Rate = 0.03
    scottish: Rate = 0.03
    irish: Rate = 0.03
    south_asian: Rate = 0.13
    polish: Rate = 0.04
    eastern_european: Rate = 0.03
    caribbean: Rate = 0.03
    west_african: Rate = 0.03
    arabic: Rate = 0.03


class CoverageRates(Frozen):
    """Who is known to which agency."""

    # Households whose children are known to children's social care ("CSC families").
    csc_family_rate: Rate = Field(default=0.05, ge=0, le=1)
    csc_child_in_family: Rate = Field(default=0.9, ge=0, le=1)
    csc_child_other: Rate = Field(default=0.01, ge=0, le=1)
    asc_adult_65_plus: Rate = Field(default=0.06, ge=0, le=1)
    asc_adult_under_65: Rate = Field(default=0.01, ge=0, le=1)
    # Published overlaps: share of social-care people also known to police.
    police_given_csc_child: Rate = Field(default=0.5, ge=0, le=1)
    police_given_asc_adult: Rate = Field(default=0.33, ge=0, le=1)
    police_csc_family_adult: Rate = Field(default=0.4, ge=0, le=1)
    police_other_child: Rate = Field(default=0.02, ge=0, le=1)
    police_other_adult: Rate = Field(default=0.06, ge=0, le=1)
    nhs_baseline: Rate = Field(default=0.3, ge=0, le=1)
    nhs_csc_family: Rate = Field(default=0.7, ge=0, le=1)
    # Fire activity belongs to households: concentrated at CSC-family addresses.
    fire_csc_family_household: Rate = Field(default=0.3, ge=0, le=1)
    fire_other_household: Rate = Field(default=0.02, ge=0, le=1)
    # Complex needs: of the people known to both social care and police, the share also known to the NHS.
    # Drawn this way it leaves the police overlaps as asked; with fire's concentration at CSC-family
    # addresses it makes the small group known to all four agencies.
    complex_needs: Rate = Field(default=0.25, ge=0, le=1)
    # The same person recorded twice by one agency.
    duplicate_record: Rate = Field(default=0.01, ge=0, le=1)
    restricted_activity: Rate = Field(default=0.02, ge=0, le=1)


def police_knowing(share: float, **rates: float) -> CoverageRates:
    """Coverage in which the police know this share of everyone: for matching tests and benchmarks, which
    need an agency that knows most people (so twins, siblings and namesakes of known people exist)."""
    police = (
        "police_other_child",
        "police_other_adult",
        "police_given_csc_child",
        "police_given_asc_adult",
        "police_csc_family_adult",
    )
    return CoverageRates(**dict.fromkeys(police, share), **rates)


class ErrorRates(Frozen):
    """Chance that one agency record carries each recording error (where the error can apply)."""

    typo_keyboard: Rate = Field(default=0.02, ge=0, le=1)
    typo_ocr: Rate = Field(default=0.01, ge=0, le=1)
    typo_phonetic: Rate = Field(default=0.02, ge=0, le=1)
    nickname: Rate = Field(default=0.05, ge=0, le=1)
    name_swap: Rate = Field(default=0.01, ge=0, le=1)
    hyphen_split_join: Rate = Field(default=0.3, ge=0, le=1)
    marriage: Rate = Field(default=0.1, ge=0, le=1)
    dob_day_month_swap: Rate = Field(default=0.01, ge=0, le=1)
    dob_digit: Rate = Field(default=0.01, ge=0, le=1)
    missing_date_of_birth: Rate = Field(default=0.01, ge=0, le=1)
    missing_nhs_number: Rate = Field(default=0.1, ge=0, le=1)
    missing_postcode: Rate = Field(default=0.03, ge=0, le=1)
    missing_gender: Rate = Field(default=0.03, ge=0, le=1)
    postcode_typo: Rate = Field(default=0.01, ge=0, le=1)
    stale_address: Rate = Field(default=0.05, ge=0, le=1)
    diacritics_dropped: Rate = Field(default=0.5, ge=0, le=1)
    transliteration: Rate = Field(default=0.2, ge=0, le=1)
    # Marriage records keep the previous name as an alias this often.
    alias_kept: Rate = Field(default=0.6, ge=0, le=1)


class SynthConfig(Frozen):
    people: int = Field(default=20_000, ge=10, le=20_000_000)
    seed: int = 1
    # Activity dates fall within this many days before the reference date.
    history_days: int = Field(default=6 * 365, ge=30)
    origins: OriginMix = OriginMix()
    coverage: CoverageRates = CoverageRates()
    # Error rates per agency; an agency missing here uses DEFAULT_ERRORS, then ErrorRates().
    errors: dict[str, ErrorRates] = Field(default_factory=dict)

    def error_rates(self, agency: str) -> ErrorRates:
        return self.errors.get(agency) or DEFAULT_ERRORS.get(agency) or ErrorRates()


# Fire crews record what occupants tell them: often no date of birth. The NHS rarely lacks a number.
DEFAULT_ERRORS = {
    "fire": ErrorRates(missing_date_of_birth=0.6, missing_gender=0.2),
    "nhs": ErrorRates(missing_nhs_number=0.01, stale_address=0.03),
    "socialcare": ErrorRates(missing_nhs_number=0.2),
}
