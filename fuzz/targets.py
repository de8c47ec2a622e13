"""The fuzz targets by name: functions of one byte string that return normally for every input and raise
(an AssertionError, or whatever escaped the code under test) only on a bug.

They import nothing from atheris, so the regression tests replay saved inputs without it.
"""

from __future__ import annotations

from collections.abc import Callable

from fuzz.agreement import agreement_fields, agreement_toml
from fuzz.audit_bundle import audit_bundle_fields, audit_bundle_json
from fuzz.normalisation import normalise
from fuzz.request_validation import check_request, household_request, rest_json

Target = Callable[[bytes], None]

TARGETS: dict[str, Target] = {
    "check_request": check_request,
    "household_request": household_request,
    "rest_json": rest_json,
    "normalise": normalise,
    "agreement_toml": agreement_toml,
    "agreement_fields": agreement_fields,
    "audit_bundle_json": audit_bundle_json,
    "audit_bundle_fields": audit_bundle_fields,
}
