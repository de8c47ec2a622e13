"""Bulk checks through the real federation (mutual TLS): every row answered once, an interrupted run
resumed to the same answers as an uninterrupted one, and the agreement's cap per purpose."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tomlkit.toml_document import TOMLDocument

from broker import BrokerConfig, create_server
from broker.config import AgencyEndpoint
from lateral.demo import Federation, Prepared
from lateral.demo.agreement import DEMO_CALLER, write_signed_agreement
from policy.trust import PolicySection
from tests.integration.conftest import LATERAL

ROWS = 120


def caseload(prepared: Prepared, path: Path, rows: int = ROWS) -> Path:
    """Children of the synthetic town as a social worker's caseload (known to agencies or not)."""
    today = dt.date.today()
    children = [p for p in prepared.data.population.people() if p.age_on(today) < 17][:rows]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["query_id", "case_id", "given_name", "family_name", "date_of_birth", "gender", "postcode"]
        )
        for i, p in enumerate(children):
            writer.writerow(
                [
                    f"row{i}",
                    f"CIN-{i:04d}",
                    p.given_names[0],
                    p.family_name,
                    p.date_of_birth,
                    p.gender,
                    p.address.postcode,
                ]
            )
    return path


def bulk_args(prepared: Prepared, address: str, input_path: Path, output: Path) -> list[str]:
    tls = prepared.pki.client_tls(DEMO_CALLER.organisation)
    return [
        *LATERAL,
        "bulk-check",
        "--input",
        str(input_path),
        "--output",
        str(output),
        "--purpose",
        "child-safeguarding",
        "--justification",
        "Quarterly review of open child-in-need cases",
        "--case-ref-column",
        "case_id",
        "--role",
        DEMO_CALLER.role,
        "--user",
        DEMO_CALLER.user,
        "--ca",
        tls.ca,
        "--cert",
        tls.cert,
        "--key",
        tls.key,
        "--broker",
        address,
    ]


async def run(args: list[str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def answers(output: Path) -> dict[str, dict[str, str]]:
    with output.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    ids = [r["item_id"] for r in rows]
    assert len(ids) == len(set(ids)), "a row was answered twice"
    return {r["item_id"]: {k: v for k, v in r.items() if k != "check_id"} for r in rows}


async def test_a_caseload_is_checked_row_by_row(
    federation: Federation, prepared: Prepared, tmp_path: Path
) -> None:
    output = tmp_path / "results.csv"
    code, out, err = await run(
        bulk_args(prepared, federation.broker_address, caseload(prepared, tmp_path / "in.csv"), output)
    )
    assert code == 0, err
    result = answers(output)
    assert len(result) == ROWS
    assert all(not r["error_code"] for r in result.values())
    known = sum(
        1
        for r in result.values()
        for a in ("police", "fire", "nhs", "socialcare")
        if r[f"{a}_outcome"] == "KNOWN"
    )
    assert known > 0
    assert out.startswith(f"{ROWS} answered ({ROWS} in this run), 0 not answered; known to: ")


async def test_an_interrupted_run_resumes_to_the_same_answers(
    federation: Federation, prepared: Prepared, tmp_path: Path
) -> None:
    input_path = caseload(prepared, tmp_path / "in.csv")
    whole = tmp_path / "whole.csv"
    code, _, err = await run(bulk_args(prepared, federation.broker_address, input_path, whole))
    assert code == 0, err
    resumed = tmp_path / "resumed.csv"
    proc = await asyncio.create_subprocess_exec(
        *bulk_args(prepared, federation.broker_address, input_path, resumed),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    for _ in range(600):  # kill it once some, not all, answers are on disk
        await asyncio.sleep(0.02)
        if resumed.exists() and 10 < sum(1 for _ in resumed.open()) < ROWS:
            break
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    partial = answers(resumed)
    assert 0 < len(partial) < ROWS
    code, out, err = await run(bulk_args(prepared, federation.broker_address, input_path, resumed))
    assert code == 0, err
    assert f"({ROWS - len(partial)} in this run)" in out
    assert answers(resumed) == answers(whole)


@pytest.fixture
async def capped_broker(federation: Federation, prepared: Prepared, tmp_path: Path) -> AsyncIterator[str]:
    def cap(agreement: TOMLDocument) -> None:
        purposes = agreement["purposes"]
        assert isinstance(purposes, list)
        purposes[0]["max_bulk_checks"] = 5

    assert federation.pki is not None
    config = BrokerConfig(
        tls=federation.pki.broker_tls,
        audit=prepared.audit["broker"],
        policy=PolicySection(agreement=str(write_signed_agreement(tmp_path, amend=cap))),
        agencies=[
            AgencyEndpoint(id=a, name=a, address=f"127.0.0.1:{port}")
            for a, (_, port) in federation.adapters.items()
        ],
    )
    server, port = await create_server(config, "127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_the_agreement_caps_a_bulk_run_per_purpose(
    capped_broker: str, prepared: Prepared, tmp_path: Path
) -> None:
    output = tmp_path / "capped.csv"
    code, out, _ = await run(
        bulk_args(prepared, capped_broker, caseload(prepared, tmp_path / "in.csv", 8), output)
    )
    assert code == 1
    result = answers(output)
    refused = [r for r in result.values() if r["error_code"]]
    assert len(refused) == 3
    assert {r["error_code"] for r in refused} == {"RESOURCE_EXHAUSTED"}
    assert {r["error_message"] for r in refused} == {
        "the agreement caps bulk checks for purpose child-safeguarding at 5 per run"
    }
    assert out.startswith("5 answered (5 in this run), 3 not answered")
