"""Data-sharing agreement model and request validation rules."""

from policy.identifiers import is_valid_nhs_number, normalise_nhs_number, normalise_postcode
from policy.purposes import Purpose
from policy.validation import MAX_NAME_LENGTH, validate_check_request, validate_subject

__all__ = [
    "MAX_NAME_LENGTH",
    "Purpose",
    "is_valid_nhs_number",
    "normalise_nhs_number",
    "normalise_postcode",
    "validate_check_request",
    "validate_subject",
]
