"""The audit trail of real checks: what the broker and each agency record, that no row holds a name, date of
birth, address or NHS number, that a check fails closed when its log cannot be written, and a log shared by
several writers on PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.keys import load_keys, read_auditor_key
from audit.reader import read_events
from audit.sealing import unseal
from audit.store import AuditLog, payloads
from audit.verify import verify_log
from broker import BrokerConfig, create_server
from broker.config import AgencyEndpoint
from lateral.client import broker_channel
from lateral.demo import Federation, Prepared
from lateral.demo.agreement import AGREEMENT_FILE, DEMO_CALLER
from lateral.demo.auditing import prepare_audit
from policy.trust import PolicySection
from protos.lateral.v1 import broker_pb2_grpc, common_pb2
from tests.databases import fresh_database
from tests.integration.truth import person_of
from tests.scan import rows_text


async def test_a_check_is_recorded_at_the_broker_and_at_each_agency(
    federation: Federation, prepared: Prepared
) -> None:
    example = prepared.examples.three_agencies
    async with federation.channel(DEMO_CALLER) as channel:
        response = await broker_pb2_grpc.LateralCheckStub(channel).Check(example.request(), timeout=5)
    await federation.stop()  # flushes checkpoints
    broker = [
        e
        for e in read_events(prepared.audit["broker"].url)
        if (e.payload or {}).get("check_id") == response.check_id
    ]
    assert [e.kind for e in broker] == ["check-received", "check-completed"]
    received, completed = (e.payload or {} for e in broker)
    assert {k: received[k] for k in ("organisation", "system", "user", "role", "purpose", "case_ref")} == {
        "organisation": "northshire-council",
        "system": "case-system",
        "user": DEMO_CALLER.user,
        "role": DEMO_CALLER.role,
        "purpose": "child-safeguarding",
        "case_ref": "MASH-0142",
    }
    assert received["agencies_asked"] == ["police", "fire", "nhs", "socialcare"]
    assert received["decisions"]["police"] == {"reason": "PERMITTED", "clauses": ["P1"]}
    assert completed["review_required"] is True
    for row in response.results:
        outcome = common_pb2.Outcome.Name(row.finding.outcome).removeprefix("OUTCOME_")
        assert completed["results"][row.agency_id]["outcome"] == outcome
    # Each agency's own disclosure log names the same check.
    for agency in ("police", "fire", "nhs", "socialcare"):
        [disclosure] = [
            e
            for e in read_events(prepared.audit[agency].url)
            if (e.payload or {}).get("check_id") == response.check_id
        ]
        assert disclosure.kind == "disclosure"
        assert disclosure.payload is not None
        assert disclosure.payload["released"] == completed["results"][agency]["released"]
        assert disclosure.payload["subject_pseudonym"]
    # The auditors, and only they, can read who was checked and why.
    auditor = read_auditor_key(prepared.workdir / "audit" / "auditor.key")
    opened = json.loads(unseal(auditor, received["sealed"]))
    assert opened["subject"]["familyName"] == example.args["family-name"]
    assert opened["justification"] == example.args["justification"]
    for service, section in prepared.audit.items():
        result = verify_log(section.url, load_keys(section).signer.public_key())
        assert result.ok, (service, [str(p) for p in result.problems])


async def test_no_audit_row_holds_a_name_date_of_birth_address_or_nhs_number(
    federation: Federation, prepared: Prepared
) -> None:
    async with federation.channel(DEMO_CALLER) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        for example in prepared.examples.all():
            await stub.Check(example.request(), timeout=5)
    await federation.stop()
    secrets: set[str] = set()
    for example in prepared.examples.all():
        person = person_of(prepared, example)
        secrets |= {
            person.family_name,
            *person.given_names,
            person.date_of_birth.isoformat(),
            person.address.postcode,
        }
        secrets.add(person.address.line)
        if person.nhs_number:
            secrets.add(person.nhs_number)
    for section in prepared.audit.values():
        for table, text in rows_text(section.url):
            leaked = {s for s in secrets if len(s) > 2 and s.casefold() in text.casefold()}
            assert not leaked, (table, leaked)


@pytest.fixture
async def own_log_broker(
    federation: Federation, prepared: Prepared, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """A broker (on the running adapters) with a log of its own in tmp_path: (address, log URL)."""
    section = prepare_audit(tmp_path, ["broker"])["broker"]
    assert federation.pki is not None
    config = BrokerConfig(
        tls=federation.pki.broker_tls,
        audit=section,
        policy=PolicySection(agreement=str(prepared.workdir / AGREEMENT_FILE)),
        agencies=[
            AgencyEndpoint(id=agency, name=agency, address=f"127.0.0.1:{port}")
            for agency, (_, port) in federation.adapters.items()
        ],
    )
    server, port = await create_server(config, "127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", section.url
    await server.stop(None)


async def test_a_check_fails_closed_when_its_log_cannot_be_written(
    federation: Federation, prepared: Prepared, own_log_broker: tuple[str, str]
) -> None:
    address, url = own_log_broker
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE audit_payloads"))
    engine.dispose()
    before = {a: len(read_events(prepared.audit[a].url)) for a in ("police", "fire", "nhs", "socialcare")}
    tls = federation.client_tls(DEMO_CALLER)
    async with broker_channel(address, DEMO_CALLER, tls) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await broker_pb2_grpc.LateralCheckStub(channel).Check(
                prepared.examples.three_agencies.request(), timeout=5
            )
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.UNAVAILABLE,
        "the audit log cannot be written, so nothing was done; try again shortly",
    )
    assert {a: len(read_events(prepared.audit[a].url)) for a in before} == before  # no agency was asked


@pytest.fixture(params=["postgresql", "mariadb"])
def server_log(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from fresh_database(request.param)


def test_several_writers_share_one_log_on_a_database_server(server_log: str) -> None:
    key = Ed25519PrivateKey.generate()
    logs = [AuditLog(server_log, key, checkpoint_every=7) for _ in range(3)]

    def write(log: AuditLog, n: int) -> None:
        for i in range(n):
            log.append("check-received", {"writer": id(log), "i": i})

    threads = [threading.Thread(target=write, args=(log, 20)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    logs[0].checkpoint()
    for log in logs:
        log.close()
    result = verify_log(server_log, key.public_key())
    assert (result.ok, result.size) == (True, 60), [str(p) for p in result.problems]
    assert result.checkpoints >= 2  # concurrent writers may sign the same size once
    engine = sa.create_engine(server_log)
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.select(payloads.c.seq)).scalars()) == list(range(1, 61))
    engine.dispose()


async def test_reconcile_matches_broker_and_agency_logs_by_check_id(
    federation: Federation, prepared: Prepared
) -> None:
    from click.testing import CliRunner

    from lateral.cli import main

    async with federation.channel(DEMO_CALLER) as channel:
        await broker_pb2_grpc.LateralCheckStub(channel).Check(prepared.examples.unknown.request(), timeout=5)
    await federation.stop()
    agencies = [f"{a}={prepared.audit[a].url}" for a in ("police", "fire", "nhs", "socialcare")]
    args = ["audit", "reconcile", "--broker", prepared.audit["broker"].url]
    for agency in agencies:
        args += ["--agency", agency]
    clean = CliRunner().invoke(main, args)
    assert clean.exit_code == 0, clean.output
    assert clean.output.strip().endswith("agency answers reconciled: all match")
    # A disclosure the broker never asked for (say, someone calling the adapter with a stolen broker key):
    fire = prepared.audit["fire"]
    log = AuditLog(fire.url, load_keys(fire).signer)
    log.append("disclosure", {"check_id": "f" * 32, "outcome": "KNOWN"})
    log.close()
    dirty = CliRunner().invoke(main, args)
    assert dirty.exit_code == 1
    assert f"recorded by fire, unknown to the broker: check {'f' * 32}" in dirty.output.splitlines()


async def test_auditors_list_show_and_report_and_their_reading_is_logged(
    federation: Federation, prepared: Prepared
) -> None:
    from click.testing import CliRunner

    from lateral.cli import main

    example = prepared.examples.three_agencies
    async with federation.channel(DEMO_CALLER) as channel:
        response = await broker_pb2_grpc.LateralCheckStub(channel).Check(example.request(), timeout=5)
    await federation.stop()
    config = str(prepared.workdir / "broker.toml")
    auditor = str(prepared.workdir / "audit" / "auditor.key")
    who = ["--config", config, "--reader", "a.auditor"]
    listed = CliRunner().invoke(
        main,
        [
            "audit",
            "list",
            *who,
            "--case-ref",
            "MASH-0142",
            "--kind",
            "check-received",
            "--auditor-key",
            auditor,
        ],
    )
    assert listed.exit_code == 0, listed.output
    mine = [json.loads(line) for line in listed.output.splitlines() if response.check_id in line]
    assert len(mine) == 1
    assert mine[0]["payload"]["sealed"]["subject"]["familyName"] == example.args["family-name"]
    family = example.args["family-name"]
    by_name = CliRunner().invoke(
        main, ["audit", "list", *who, "--subject-family-name", family.upper(), "--auditor-key", auditor]
    )
    assert response.check_id in by_name.output
    shown = CliRunner().invoke(main, ["audit", "show", *who, str(mine[0]["seq"])])
    assert json.loads(shown.output)["payload"]["check_id"] == response.check_id
    report = json.loads(CliRunner().invoke(main, ["audit", "report", *who]).output)
    assert report["per_user"][f"northshire-council/{DEMO_CALLER.user}"] >= 1
    reads = [e.payload for e in read_events(prepared.audit["broker"].url) if e.kind == "audit-read"]
    assert [r["action"] for r in reads if r and r["reader"] == "a.auditor"][-4:] == [
        "list",
        "list",
        "show",
        "report",
    ]
    assert not any(family.casefold() in json.dumps(r).casefold() for r in reads)  # searching names no one
