"""An agency admin's local dry run: match a CSV of queries against the agency's own database.

This stays inside the agency, so unlike anything sent to the broker it shows record keys and scores.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

from adapters.core.config import AdapterConfig
from adapters.core.index import MatchIndex
from adapters.core.matching import MatchResult
from adapters.core.refresh import build_index
from adapters.core.server import matcher_for
from lateral.config import ConfigError
from policy.validation import validate_subject
from protos.lateral.v1 import common_pb2

INPUT_COLUMNS = (
    "query_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "gender",
    "address",
    "postcode",
    "nhs_number",
)
OUTPUT_COLUMNS = ("query_id", "outcome", "record_key", "score")
_GENDERS = {
    "": common_pb2.GENDER_UNSPECIFIED,
    "f": common_pb2.GENDER_FEMALE,
    "female": common_pb2.GENDER_FEMALE,
    "m": common_pb2.GENDER_MALE,
    "male": common_pb2.GENDER_MALE,
    "other": common_pb2.GENDER_OTHER,
    "not_known": common_pb2.GENDER_NOT_KNOWN,
    "unknown": common_pb2.GENDER_NOT_KNOWN,
}


class InvalidRow(ValueError):
    """A query row that cannot be matched; the message names the fields, never the values."""


def subject_from_row(row: Mapping[str, str]) -> common_pb2.Subject:
    """Builds a subject from one input row (any column may be empty)."""
    gender = _GENDERS.get(row.get("gender", "").strip().casefold())
    if gender is None:
        raise InvalidRow("gender: use female, male, other or not_known")
    subject = common_pb2.Subject(
        given_names=row.get("given_name", "").split(),
        family_name=row.get("family_name", "").strip(),
        date_of_birth=row.get("date_of_birth", "").strip(),
        gender=gender,
        nhs_number=row.get("nhs_number", "").strip(),
    )
    if row.get("address", "").strip():
        subject.address.lines.append(row["address"].strip())
    subject.address.postcode = row.get("postcode", "").strip()
    violations = validate_subject(subject, prefix="")
    if violations:
        raise InvalidRow("; ".join(f"{v.field} {v.description}" for v in violations))
    return subject


def _explain(result: MatchResult) -> str:
    """The decision, then every candidate shown with its per-field comparison levels and weights."""
    others = [c.describe() for c in result.candidates[1:]]
    return result.explanation + ("; other candidates: " + " | ".join(others) if others else "")


def count_rows(path: Path) -> int:
    """Data rows in a CSV file (for progress)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def dry_run(
    config: AdapterConfig,
    input_path: Path,
    output_path: Path,
    *,
    explain: bool = False,
    index: MatchIndex | None = None,
    advance: Callable[[], None] = lambda: None,
) -> Counter[str]:
    """Matches every row of input_path and writes one result row per query to output_path.

    Returns:
        How many queries ended in each outcome (INVALID for rows that could not be matched).

    Raises:
        ConfigError: when the input has no query_id column or has columns it does not know.
    """
    index = index or build_index(config)
    matcher = matcher_for(config, index)
    outcomes: Counter[str] = Counter()
    with input_path.open(newline="", encoding="utf-8-sig") as source:
        reader = csv.DictReader(source)
        header = reader.fieldnames or []
        if "query_id" not in header:
            raise ConfigError(f"{input_path}: the first line must name the columns, including query_id")
        unknown = [c for c in header if c not in INPUT_COLUMNS]
        if unknown:
            raise ConfigError(
                f"{input_path}: unknown column(s) {unknown}; expected some of {list(INPUT_COLUMNS)}"
            )
        columns = [*OUTPUT_COLUMNS, "explanation"] if explain else list(OUTPUT_COLUMNS)
        with output_path.open("w", newline="", encoding="utf-8") as sink:
            writer = csv.writer(sink)
            writer.writerow(columns)
            for row in reader:
                row = {k: v or "" for k, v in row.items() if k is not None}
                try:
                    result = matcher.match(subject_from_row(row))
                except InvalidRow as error:
                    out = [row["query_id"], "INVALID", "", ""]
                    outcomes["INVALID"] += 1
                    writer.writerow([*out, str(error)] if explain else out)
                else:
                    name = common_pb2.Outcome.Name(result.outcome).removeprefix("OUTCOME_")
                    outcomes[name] += 1
                    out = [row["query_id"], name, ";".join(result.record_keys), f"{result.score:.6f}"]
                    writer.writerow([*out, _explain(result)] if explain else out)
                advance()
    return outcomes
