"""Bulk checks from a CSV file through the broker's CheckMany stream: resumable, with a summary.

Each result is appended to the output file and flushed to disk as it arrives, so after an interruption a
second run with the same files skips every row already answered and checks only the rest: no answered
row is checked twice, none is lost. (A row in flight when the run was killed was never answered here, so it
is checked on resume; the broker's audit log shows both.)
"""

from __future__ import annotations

import asyncio
import csv
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from adapters.core.dryrun import InvalidRow, subject_from_row
from lateral.client import broker_channel
from lateral.config import ConfigError
from lateral.identity import Caller
from pki.tls import Tls
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2

SUBJECT_COLUMNS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "gender",
    "address",
    "postcode",
    "nhs_number",
)


@dataclass
class BulkSummary:
    """The whole output file (this run and any earlier one it resumed)."""

    answered: int = 0
    answered_now: int = 0
    failed: int = 0
    known: Counter[str] = field(default_factory=Counter)
    known_to_two_or_more: int = 0
    review_required: int = 0


def summarise(output: Path, agencies: list[str]) -> BulkSummary:
    summary = BulkSummary()
    with output.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("error_code"):
                summary.failed += 1
                continue
            summary.answered += 1
            known = [a for a in agencies if row.get(f"{a}_outcome") == "KNOWN"]
            summary.known.update(known)
            summary.known_to_two_or_more += len(known) >= 2
            summary.review_required += row.get("review_required") == "yes"
    return summary


def _output_columns(agencies: list[str]) -> list[str]:
    per_agency = [f"{a}_{part}" for a in agencies for part in ("outcome", "latest", "count", "categories")]
    return [
        "item_id",
        "check_id",
        "error_code",
        "error_message",
        "agencies_with_activity",
        "review_required",
        *per_agency,
    ]


def _row(result: broker_pb2.BulkResult, agencies: list[str]) -> dict[str, str]:
    row = {"item_id": result.item_id}
    if result.HasField("error"):
        return {**row, "error_code": result.error.code, "error_message": result.error.message}
    response = result.response
    row |= {
        "check_id": response.check_id,
        "agencies_with_activity": str(response.agencies_with_activity),
        "review_required": "yes" if response.review_required else "no",
    }
    for r in response.results:
        if r.agency_id in agencies:
            row[f"{r.agency_id}_outcome"] = common_pb2.Outcome.Name(r.finding.outcome).removeprefix(
                "OUTCOME_"
            )
            row[f"{r.agency_id}_latest"] = r.finding.latest_activity_date
            row[f"{r.agency_id}_count"] = str(r.finding.activity_count) if r.finding.activity_count else ""
            row[f"{r.agency_id}_categories"] = ";".join(r.finding.categories)
    return row


def _answered(output: Path, columns: list[str]) -> set[str] | None:
    """Item ids already in the output (an earlier, interrupted run); None when there is no output yet."""
    if not output.exists() or output.stat().st_size == 0:
        return None
    with output.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != columns:
            raise ConfigError(f"{output}: exists with other columns; give a new --output to start afresh")
        return {row["item_id"] for row in reader if row.get("item_id")}


def _items(
    input_path: Path, id_column: str, case_ref_column: str, purpose: str, justification: str, skip: set[str]
) -> Iterator[tuple[str, broker_pb2.BulkItem | str]]:
    """(item id, the item, or why the row cannot be sent), for each row not yet answered."""
    with input_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in (id_column, case_ref_column, "family_name") if c not in header]
        if missing:
            raise ConfigError(f"{input_path}: no column(s) {missing}")
        seen: set[str] = set()
        for number, row in enumerate(reader, start=2):
            item_id = (row.get(id_column) or "").strip()
            if not item_id or item_id in seen:
                raise ConfigError(f"{input_path}: line {number}: {id_column} is empty or repeated")
            seen.add(item_id)
            if item_id in skip:
                continue
            try:
                subject = subject_from_row(row)
            except InvalidRow as error:
                yield item_id, str(error)
                continue
            request = broker_pb2.CheckRequest(
                subject=subject,
                purpose=purpose,
                justification=justification,
                case_ref=row[case_ref_column].strip(),
            )
            yield item_id, broker_pb2.BulkItem(item_id=item_id, request=request)


def count_rows(input_path: Path) -> int:
    with input_path.open(newline="") as handle:
        return max(0, sum(1 for _ in handle) - 1)


async def run_bulk(
    address: str,
    caller: Caller,
    tls: Tls | None,
    *,
    input_path: Path,
    output_path: Path,
    purpose: str,
    justification: str,
    case_ref_column: str,
    id_column: str = "query_id",
    advance: Callable[[], None] = lambda: None,
) -> BulkSummary:
    """Checks every row of input_path not yet in output_path, appending results as they arrive.

    Raises:
        ConfigError: the files do not fit (missing columns, repeated ids, another output layout).
        grpc.aio.AioRpcError: the broker refused the stream or could not be reached.
    """
    now = 0
    async with broker_channel(address, caller, tls) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        listing = await stub.ListAgencies(broker_pb2.ListAgenciesRequest(), timeout=10)
        agencies = [a.agency_id for a in listing.agencies]
        columns = _output_columns(agencies)
        answered = _answered(output_path, columns)
        done = answered or set()
        with output_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            if answered is None:
                writer.writeheader()
                _flush(handle)
            local_failures: list[broker_pb2.BulkResult] = []

            async def requests() -> AsyncIterator[broker_pb2.BulkItem]:
                for item_id, item in _items(
                    input_path, id_column, case_ref_column, purpose, justification, done
                ):
                    if isinstance(item, str):
                        local_failures.append(
                            broker_pb2.BulkResult(
                                item_id=item_id,
                                error=broker_pb2.BulkError(code="INVALID_ARGUMENT", message=item),
                            )
                        )
                        continue
                    yield item
                    await asyncio.sleep(0)

            async for result in stub.CheckMany(requests()):
                _record(writer, handle, result, agencies)
                now += not result.HasField("error")
                advance()
            for result in local_failures:
                _record(writer, handle, result, agencies)
                advance()
    summary = summarise(output_path, agencies)
    summary.answered_now = now
    return summary


def _record(
    writer: csv.DictWriter[str], handle: TextIO, result: broker_pb2.BulkResult, agencies: list[str]
) -> None:
    writer.writerow(_row(result, agencies))
    _flush(handle)


def _flush(handle: TextIO) -> None:
    """On disk before the next result is taken: what is written survives a kill."""
    handle.flush()
    os.fsync(handle.fileno())
