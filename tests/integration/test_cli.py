"""The `lateral` command as people run it: in its own process."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import socket
import subprocess
from pathlib import Path

import tomli_w

from lateral.config import read_toml
from lateral.demo import Federation, Prepared
from lateral.demo.agreement import DEMO_CALLER
from protos.lateral.v1 import common_pb2
from tests.integration.conftest import LATERAL
from tests.integration.truth import person_of, records_of


async def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Runs lateral without blocking the event loop (the servers under test share it)."""
    proc = await asyncio.create_subprocess_exec(
        *LATERAL,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},  # rich wraps cells at a terminal's width
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def subject_args(prepared: Prepared) -> list[str]:
    return [
        arg for key, value in prepared.examples.three_agencies.args.items() for arg in (f"--{key}", value)
    ]


def check_args(prepared: Prepared) -> list[str]:
    """The showcase check, from the council's case system over mutual TLS."""
    tls = prepared.pki.client_tls(DEMO_CALLER.organisation)
    who = ["--role", DEMO_CALLER.role, "--user", DEMO_CALLER.user]
    return [*subject_args(prepared), *who, "--ca", tls.ca, "--cert", tls.cert, "--key", tls.key]


async def test_check_prints_json(federation: Federation, prepared: Prepared) -> None:
    code, out, err = await run(
        "check", *check_args(prepared), "--broker", federation.broker_address, "--json"
    )
    assert code == 0, err
    answer = json.loads(out)
    expected = {a: common_pb2.Outcome.Name(o) for a, o in prepared.examples.three_agencies.expected.items()}
    assert {r["agency_id"]: r["finding"]["outcome"] for r in answer["results"]} == expected
    assert answer["review_required"] is True
    assert "PLAINTEXT" not in err


async def test_check_prints_a_table_a_person_can_read(federation: Federation, prepared: Prepared) -> None:
    code, out, err = await run("check", *check_args(prepared), "--broker", federation.broker_address)
    assert code == 0, err
    for text in ("Northshire Police", "Known", "Not known", "REVIEW REQUIRED", "Whom to call", "01632 9604"):
        assert text in out


async def test_check_with_invalid_details_lists_each_field(
    federation: Federation, prepared: Prepared
) -> None:
    args = [*check_args(prepared), "--dob", "2012-02-30", "--nhs-number", "123"]
    code, out, err = await run("check", *args, "--broker", federation.broker_address)
    assert code == 2
    assert "subject.date_of_birth: is not a real calendar date" in err
    assert "subject.nhs_number: must be 10 digits with a valid check digit" in err
    assert out == ""


async def test_check_without_a_broker_says_so(prepared: Prepared) -> None:
    code, _, err = await run("check", *check_args(prepared), "--broker", "127.0.0.1:9", "--timeout", "1")
    assert code == 3
    assert "cannot reach the broker at 127.0.0.1:9" in err


async def test_check_needs_a_certificate_or_the_plaintext_flag(prepared: Prepared) -> None:
    code, _, err = await run("check", *subject_args(prepared), "--role", "mash-manager")
    assert code == 2
    assert "the broker connection needs your case system's certificate: --ca, --cert and --key" in err


async def test_check_in_plaintext_states_the_organisation(federation: Federation, prepared: Prepared) -> None:
    code, _, err = await run("check", *subject_args(prepared), "--role", "mash-manager", "--insecure-dev")
    assert code == 2
    assert "--organisation is needed with --insecure-dev" in err


async def test_adapter_serve_reports_config_errors_with_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "police.toml"
    bad.write_text('[agency]\nid = "police"\n')
    code, _, err = await run("adapter", "serve", "--config", str(bad), "--insecure-dev")
    assert code == 2
    assert f"{bad}: agency.name: Field required" in err
    assert f"{bad}: source: Field required" in err


async def test_adapter_serve_refuses_plaintext_without_the_flag(prepared: Prepared, tmp_path: Path) -> None:
    config = read_toml(prepared.configs["police"])
    del config["tls"]
    config["policy"]["agreement"] = str(prepared.workdir / "dsa.toml")
    police = tmp_path / "police.toml"
    police.write_text(tomli_w.dumps(config))
    code, _, err = await run("adapter", "serve", "--config", str(police), "--listen", "127.0.0.1:0")
    assert code == 2
    assert "the police adapter has no TLS configuration: add a [tls] section" in err


async def test_adapter_match_dry_run(tmp_path: Path, prepared: Prepared) -> None:
    example = prepared.examples.three_agencies
    person = person_of(prepared, example)
    [record] = records_of(prepared, "socialcare", person)
    nobody = person_of(prepared, prepared.examples.unknown)
    given, family, born = person.given_names[0], person.family_name, person.date_of_birth.isoformat()
    queries = tmp_path / "queries.csv"
    queries.write_text(
        "query_id,given_name,family_name,date_of_birth,gender,address,postcode,nhs_number\n"
        f"q1,{given},{family},{born},{person.gender},,{person.address.postcode},\n"
        f"q2,X,{family},,,,,{person.nhs_number}\n"
        f"q3,{nobody.given_names[0]},{nobody.family_name},{nobody.date_of_birth},,,,\n"
        f"q4,{given},{family},,,,,\n"
        f"q5,{given},,2012-13-01,,,,\n"
    )
    output = tmp_path / "results.csv"
    config = str(prepared.configs["socialcare"])
    code, _, err = await run(
        "adapter", "match", "--config", config, "--input", str(queries), "--output", str(output), "--explain"
    )
    assert code == 0, err
    assert "5 queries matched (INVALID 1, KNOWN 2, NOT_KNOWN 1, POSSIBLE 1)" in err
    with output.open() as handle:
        rows = list(csv.DictReader(handle))
    key = str(record.record_id)
    assert [(r["query_id"], r["outcome"]) for r in rows] == [
        ("q1", "KNOWN"),
        ("q2", "KNOWN"),
        ("q3", "NOT_KNOWN"),
        ("q4", "POSSIBLE"),
        ("q5", "INVALID"),
    ]
    assert float(rows[0]["score"]) >= 0.999
    assert float(rows[1]["score"]) >= 0.999
    assert 0.5 <= float(rows[3]["score"]) < 1.0
    assert rows[4]["score"] == ""
    assert [rows[0]["record_key"], rows[1]["record_key"], rows[2]["record_key"]] == [key, key, ""]
    assert key in rows[3]["record_key"].split(";")
    assert rows[4]["explanation"] == "family_name is required; date_of_birth is not a real calendar date"
    assert rows[0]["explanation"].startswith(f"KNOWN: {key} p=")
    assert "given exact" in rows[0]["explanation"]
    assert "dob exact" in rows[0]["explanation"]
    assert "nhs exact" in rows[1]["explanation"]


async def test_adapter_match_rejects_unknown_columns(tmp_path: Path, prepared: Prepared) -> None:
    queries = tmp_path / "queries.csv"
    queries.write_text("query_id,surname\nq1,Clarke\n")
    code, _, err = await run(
        "adapter",
        "match",
        "--config",
        str(prepared.configs["police"]),
        "--input",
        str(queries),
        "--output",
        str(tmp_path / "out.csv"),
    )
    assert code == 2
    assert "unknown column(s) ['surname']" in err


def test_demo_smoke(tmp_path: Path) -> None:
    result = subprocess.run(
        [*LATERAL, "demo", "--smoke", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo smoke test passed" in result.stdout
    assert "Federation stopped." in result.stdout
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [
        "audit",
        "broker.toml",
        "dsa.signatures.toml",
        "dsa.toml",
        "fire.db",
        "fire.toml",
        "keys",
        "linkage",
        "nhs.db",
        "nhs.toml",
        "pki",
        "police.db",
        "police.toml",
        "socialcare.db",
        "socialcare.toml",
        "truth",
        "web-accounts.toml",
    ]
    keys = tmp_path / "demo" / "keys"
    assert sorted(p.name for p in keys.iterdir()) == [
        "northshire-council.key",
        "northshire-fire.key",
        "northshire-nhs.key",
        "northshire-police.key",
    ]
    assert {p.stat().st_mode & 0o777 for p in keys.iterdir()} == {0o600}
    issued = tmp_path / "demo" / "pki" / "issued"
    assert {p.stat().st_mode & 0o777 for p in issued.glob("*.key")} == {0o600}
    # The broker, four adapters, two case systems and the linkage service.
    assert len(list(issued.glob("*.crt"))) == 8
    linkage = tmp_path / "demo" / "linkage"
    assert sorted(p.name for p in linkage.glob("*.key")) == [
        "fire-tokens.key",
        "linkage.key",
        "nhs-tokens.key",
        "police-tokens.key",
        "socialcare-tokens.key",
    ]
    assert {p.stat().st_mode & 0o777 for p in linkage.glob("*.key")} == {0o600}
    assert "proactive" in result.stdout.lower()
    assert "PLAINTEXT" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "demo" / "truth").iterdir()) == [
        "manifest.json",
        "people.csv",
        "truth.csv",
    ]


async def test_adapter_serve_on_a_taken_port_says_so(prepared: Prepared) -> None:
    configs = prepared.configs
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await run(
            "adapter",
            "serve",
            "--config",
            str(configs["fire"]),
            "--listen",
            f"127.0.0.1:{port}",
            "--insecure-dev",
        )
    assert code == 1
    assert f"the fire adapter cannot listen on 127.0.0.1:{port}: is another server using it?" in err


async def test_adapter_estimate_writes_weights_a_configuration_can_use(
    tmp_path: Path, prepared: Prepared
) -> None:
    weights = tmp_path / "weights.toml"
    code, _, err = await run(
        "adapter",
        "estimate",
        "--config",
        str(prepared.configs["nhs"]),
        "--output",
        str(weights),
        "--pairs",
        "5000",
    )
    assert code == 0, err
    assert f"wrote {weights}" in err
    assert "[levels.dob]" in weights.read_text()
    # The generated configuration has an absolute database URL, so a copy beside the weights works.
    config = tmp_path / "nhs.toml"
    config.write_text(prepared.configs["nhs"].read_text() + "\n[matching]\nweights_file = 'weights.toml'\n")
    queries = tmp_path / "q.csv"
    person = person_of(prepared, prepared.examples.three_agencies)
    queries.write_text(
        "query_id,given_name,family_name,date_of_birth,postcode\n"
        f"q1,{person.given_names[0]},{person.family_name},{person.date_of_birth},{person.address.postcode}\n"
    )
    output = tmp_path / "out.csv"
    code, _, err = await run(
        "adapter", "match", "--config", str(config), "--input", str(queries), "--output", str(output)
    )
    assert code == 0, err
    assert "KNOWN 1" in err


async def test_index_status_asks_the_running_adapter(federation: Federation, prepared: Prepared) -> None:
    _, port = federation.adapters["fire"]
    config = str(prepared.configs["fire"])
    code, out, err = await run(
        "adapter", "index", "status", "--config", config, "--address", f"127.0.0.1:{port}"
    )
    assert code == 0, err
    assert out.startswith("fire: ")
    assert out.strip().endswith("source OK")


async def test_review_candidates_and_a_review_from_the_command_line(
    federation: Federation, prepared: Prepared
) -> None:
    tls = prepared.pki.client_tls(DEMO_CALLER.organisation)
    who = ["--broker", federation.broker_address, "--ca", tls.ca, "--cert", tls.cert, "--key", tls.key]
    code, out, _ = await run("review", "candidates", *who, "--role", "mash-manager", "--json")
    assert code == 0
    first = json.loads(out)["candidates"][0]["candidate_id"]
    code, out, _ = await run(
        "review",
        "request",
        first,
        "--justification",
        "Three agencies",
        "--case-ref",
        "PRO-5",
        *who,
        "--role",
        "mash-manager",
    )
    assert code == 0
    assert "Identified" in out
    code, _, err = await run("review", "candidates", *who, "--role", "mash-social-worker")
    assert code == 4
    assert "the listing was refused: the data-sharing agreement does not permit this listing" in err
    code, _, err = await run(
        "review",
        "request",
        "f" * 32,
        "--justification",
        "x",
        "--case-ref",
        "PRO-5",
        *who,
        "--role",
        "mash-manager",
    )
    assert code == 5
    assert "no such review candidate" in err
