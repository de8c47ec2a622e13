"""Proactive identification end to end (docs/proactive.md): the demo federation's adapters publish their
encodings to the linkage service over mutual TLS, the broker lists candidates pseudonymously, and a review
asks the agencies who a candidate is, each deciding for itself, everything audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from adapters.core.config import load_adapter_config
from adapters.core.publish import Publisher
from adapters.core.refresh import build_index, refresh_index
from audit.reader import Event, read_events
from lateral.demo import Federation, Prepared
from lateral.demo.agreement import AGREEMENT_FILE, DEMO_CALLER, DEMO_POLICE_CALLER
from lateral.rpc import insecure_channel
from linkage.service import create_server
from linkage.service.config import LinkageServerSection, LinkageServiceConfig, StoreSection
from policy.agreement import load_agreement
from policy.engine import PolicyEngine
from policy.trust import PolicySection
from protos.lateral.v1 import (
    adapter_pb2,
    adapter_pb2_grpc,
    broker_pb2,
    broker_pb2_grpc,
    common_pb2,
    linkage_pb2,
    linkage_pb2_grpc,
)
from synth import Person
from tests.fault_injection import FaultProxy
from tests.scan import rows_text, scrubbed

pytestmark = pytest.mark.integration

PURPOSE = "proactive-review"


def _review(candidate_id: str) -> broker_pb2.ReviewRequest:
    return broker_pb2.ReviewRequest(
        candidate_id=candidate_id,
        purpose=PURPOSE,
        justification="Activity at several agencies",
        case_ref="PRO-7",
    )


def _person_of(prepared: Prepared, agency: str, identity: common_pb2.Subject) -> int:
    """The true person whose record at the agency an identity is (the ground truth, never the agency's)."""
    records = prepared.data.records[agency]
    truth = {row.record_id: row.person_id for row in records.truth}
    found = {
        truth[seed.record_id]
        for seed in records.people
        if seed.family_name.lower() == identity.family_name.lower()
        and " ".join(seed.given_names).lower() == " ".join(identity.given_names).lower()
        and (seed.date_of_birth.isoformat() if seed.date_of_birth else "") == identity.date_of_birth
    }
    assert len(found) == 1, (agency, found)
    return found.pop()


async def test_candidates_are_pseudonymous_and_a_review_identifies_one_person_at_each_agency(
    federation: Federation, prepared: Prepared
) -> None:
    async with federation.channel(DEMO_CALLER) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        listing = await stub.ListReviewCandidates(
            broker_pb2.ListReviewCandidatesRequest(purpose=PURPOSE), timeout=10
        )
        assert len(listing.candidates) >= 3
        assert listing.agreement.startswith("northshire-mash-lateral-checks v")
        for candidate in listing.candidates:
            assert re.fullmatch(r"[0-9a-f]{32}", candidate.candidate_id)
            assert candidate.agencies
            assert all(a.latest_activity_date for a in candidate.agencies)
        priorities = [c.priority for c in listing.candidates]
        assert priorities == sorted(priorities, reverse=True)
        for candidate in listing.candidates[:3]:
            review = await stub.RequestReview(_review(candidate.candidate_id), timeout=10)
            assert {r.agency_id for r in review.rows} >= {a.agency_id for a in candidate.agencies}
            assert all(r.outcome == common_pb2.OUTCOME_KNOWN for r in review.rows), review
            people = {_person_of(prepared, r.agency_id, r.identity) for r in review.rows}
            assert len(people) == 1, "the linked records are one true person"


def _since(prepared: Prepared, service: str, before: dict[str, int]) -> list[Event]:
    """The events a service's log gained since `before` was taken (the logs outlive one test)."""
    return [e for e in read_events(prepared.audit[service].url) if e.seq > before[service]]


def _sizes(prepared: Prepared) -> dict[str, int]:
    return {service: len(read_events(section.url)) for service, section in prepared.audit.items()}


async def test_a_review_is_recorded_at_the_broker_the_linkage_service_and_each_agency(
    federation: Federation, prepared: Prepared
) -> None:
    before = _sizes(prepared)
    async with federation.channel(DEMO_CALLER) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        listing = await stub.ListReviewCandidates(
            broker_pb2.ListReviewCandidatesRequest(purpose=PURPOSE, limit=1), timeout=10
        )
        candidate = listing.candidates[0]
        review = await stub.RequestReview(_review(candidate.candidate_id), timeout=10)
    broker = _since(prepared, "broker", before)
    listed = next(e for e in broker if e.kind == "review-candidates-listed")
    assert listed.payload is not None
    assert listed.payload["candidates"] == [candidate.candidate_id]
    received = next(e for e in broker if e.kind == "review-received")
    completed = next(e for e in broker if e.kind == "review-completed")
    assert received.seq < completed.seq
    assert received.payload is not None
    assert completed.payload is not None
    assert received.payload["review_id"] == completed.payload["review_id"] == review.review_id
    assert received.payload["user"] == DEMO_CALLER.user
    assert "sealed" in received.payload
    assert "Activity at several agencies" not in str(received.payload)  # the justification is sealed
    assert {r["agency"] for r in completed.payload["rows"]} == {r.agency_id for r in review.rows}
    assert all(r["identity_released"] for r in completed.payload["rows"])
    released = [e for e in _since(prepared, "linkage", before) if e.kind == "candidate-members-released"]
    assert [e.payload["review_id"] for e in released if e.payload] == [review.review_id]
    for row in review.rows:
        events = [e for e in _since(prepared, row.agency_id, before) if e.kind == "reidentification"]
        assert len(events) == 1
        payload = events[0].payload
        assert payload is not None
        assert (payload["review_id"], payload["outcome"], payload["organisation"]) == (
            review.review_id,
            "KNOWN",
            DEMO_CALLER.organisation,
        )
        # Who was disclosed: a keyed pseudonym, and the identity sealed to the auditors, never in clear.
        assert payload["subject_pseudonym"]
        assert payload["sealed"]
        assert row.identity.family_name not in str(payload)


async def test_a_caller_without_a_proactive_permission_is_refused_and_recorded(
    federation: Federation, prepared: Prepared
) -> None:
    before = _sizes(prepared)
    async with federation.channel(DEMO_POLICE_CALLER) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as listing:
            await stub.ListReviewCandidates(
                broker_pb2.ListReviewCandidatesRequest(purpose=PURPOSE), timeout=10
            )
        assert listing.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert listing.value.details() == (
            "the data-sharing agreement does not permit this listing: police: no permission lets "
            "northshire-police ask police; fire: no permission lets northshire-police ask fire for "
            "proactive-review; nhs: no permission lets northshire-police ask nhs for proactive-review; "
            "socialcare: no permission lets northshire-police ask socialcare for proactive-review"
        )
        with pytest.raises(grpc.aio.AioRpcError) as review:
            await stub.RequestReview(_review("0" * 32), timeout=10)
        assert review.value.code() == grpc.StatusCode.PERMISSION_DENIED
    kinds = [e.kind for e in _since(prepared, "broker", before)]
    assert "review-candidates-denied" in kinds
    assert "review-denied" in kinds
    assert "review-received" not in kinds  # refused before the linkage service or any agency was asked


async def test_an_agency_refuses_a_requester_its_own_agreement_does_not_permit_and_records_it(
    federation: Federation, prepared: Prepared
) -> None:
    """The agency has the last word: asked directly (as the broker) on behalf of a police officer, the NHS
    adapter refuses, names why, records the refusal, and says nothing about the record."""
    before = _sizes(prepared)
    async with federation.adapter_channel("nhs") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await adapter_pb2_grpc.AgencyAdapterStub(channel).Reidentify(
                adapter_pb2.ReidentifyRequest(
                    review_id="r" * 32,
                    token="0" * 32,
                    key_id="1:0123456789abcdef",
                    candidate_id="0" * 32,
                    purpose=PURPOSE,
                    justification="no",
                    case_ref="PRO-9",
                    requester=adapter_pb2.Requester(
                        organisation="northshire-police", system="x", user="u", role="mash-police-officer"
                    ),
                ),
                timeout=5,
            )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refused.value.details() == "no permission lets northshire-police ask nhs for proactive-review"
    refusals = [e for e in _since(prepared, "nhs", before) if e.kind == "reidentification-refused"]
    assert [e.payload["reason"] for e in refusals if e.payload] == ["PURPOSE_NOT_PERMITTED"]


async def test_a_review_of_a_candidate_that_no_longer_exists_is_not_found(federation: Federation) -> None:
    async with federation.channel(DEMO_CALLER) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await broker_pb2_grpc.LateralCheckStub(channel).RequestReview(_review("f" * 32), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert missing.value.details() == (
        "no such review candidate: the agencies' encodings may have been linked again since it was listed; "
        "list the candidates again"
    )


def _identities(people: list[Person]) -> dict[str, list[bytes]]:
    """What must never reach the linkage service, as bytes: names (of five letters or more: shorter ones
    occur by chance in random bytes), postcodes with and without their space, NHS numbers, and dates of
    birth as YYYYMMDD and YYYY-MM-DD."""
    names = {n for p in people for n in (*p.given_names, p.family_name, p.birth_family_name) if len(n) >= 5}
    postcodes = {p.address.postcode for p in people} | {p.previous_address.postcode for p in people}
    return {
        "name": [n.lower().encode() for n in names],
        "postcode": [c.encode() for pc in postcodes for c in (pc, pc.replace(" ", ""))],
        "nhs": [p.nhs_number.encode() for p in people],
        "dob": [
            d.encode() for p in people for d in (p.date_of_birth.isoformat(), f"{p.date_of_birth:%Y%m%d}")
        ],
    }


# Every place a value of each kind could start (lookaheads: overlapping matches count too).
_SHAPES = {
    "postcode": re.compile(rb"(?=([A-Z]{1,2}[0-9][0-9A-Z]? ?[0-9][A-Z]{2}))"),
    "nhs": re.compile(rb"(?=([0-9]{10}))"),
    "dob": re.compile(rb"(?=([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}))"),
}


def _found(
    blob: bytes, identities: dict[str, list[bytes]], activity_dates: set[bytes], words: bool = False
) -> dict[str, int]:
    """How many of each kind of identifying value occur in blob: names in any case, anywhere in binary
    traffic, or as whole words in text (where "North" is part of "northshire", not a name)."""
    lowered = blob.lower()
    out = {}
    if words:
        present = set(re.findall(rb"[a-z]+", lowered))
        out["name"] = sum(v in present for v in identities["name"])
    else:
        out["name"] = sum(v in lowered for v in identities["name"])
    for kind, shape in _SHAPES.items():
        seen = {m.group(1) for m in shape.finditer(blob)} | {
            m.group(1).replace(b" ", b"") for m in shape.finditer(blob)
        }
        hits = seen & set(identities[kind])
        if kind == "dob":  # an activity date that happens to be someone's birthday is a date, not a birthday
            hits -= activity_dates
        out[kind] = len(hits)
    return out


async def test_the_linkage_service_never_receives_stores_or_logs_an_identity(
    prepared: Prepared, tmp_path: Path
) -> None:
    """Every byte the four agencies' publications and the broker's reads send to the linkage service (in
    plaintext behind a recording proxy), its encodings database and its audit log are scanned for every
    person's names, postcode, NHS number and date of birth: none is there."""
    agreement_path = prepared.workdir / AGREEMENT_FILE
    config = LinkageServiceConfig(
        linkage=LinkageServerSection(listen="127.0.0.1:0", relink_after_seconds=0.0),
        store=StoreSection(url=f"sqlite:///{tmp_path / 'encodings.db'}"),
        audit=prepared.audit["linkage"].model_copy(update={"url": f"sqlite:///{tmp_path / 'audit.db'}"}),
        policy=PolicySection(agreement=str(agreement_path)),
    )
    server, port = await create_server(config, "127.0.0.1:0", insecure_dev=True)
    await server.start()
    proxy = FaultProxy(port, record=True)
    await proxy.start()
    agreement, _ = load_agreement(agreement_path)
    engine = PolicyEngine(agreement)
    today = dt.date.today()
    try:
        async with insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
            stub = linkage_pb2_grpc.LinkageStub(channel)
            published, blooms = 0, set()
            for agency, path in prepared.configs.items():
                adapter = load_adapter_config(path)
                index = build_index(adapter)
                publisher = Publisher(
                    agency,
                    f"127.0.0.1:{proxy.port}",
                    prepared.linkage_folder / "linkage.key",
                    prepared.linkage_folder / f"{agency}-tokens.key",
                    stub,
                    None,
                )
                report = await publisher.publish(
                    agreement, index, today, engine.unpublished_categories(agency)
                )
                published += report.published
                assert publisher.latest is not None
                blooms |= {e.bloom for e in publisher.latest.encodings.values()}
            await server.servicer.relink()
            listing = await stub.ListCandidates(linkage_pb2.ListCandidatesRequest(), timeout=10)
            assert listing.candidates
            assert published > 1000
            await stub.CandidateMembers(
                linkage_pb2.CandidateMembersRequest(candidate_id=listing.candidates[0].candidate_id),
                timeout=10,
            )
    finally:
        await proxy.stop()
        await server.stop(None)
    assert proxy.seen is not None
    assert len(proxy.seen) > 100_000
    people = list(prepared.data.population.people())
    identities = _identities(people)
    # The encodings themselves are random bits by design: 128 bytes each, in which a five-letter name occurs
    # by chance about once in ten runs. They are taken out before the scan (everything else stays in).
    seen = proxy.seen
    for bloom in blooms:
        at = seen.find(bloom)
        while at >= 0:
            seen[at : at + len(bloom)] = b" " * len(bloom)
            at = seen.find(bloom, at)
    traffic = scrubbed(bytes(seen))  # tokens and digests are hex, where YYYYMMDD turns up by chance

    dates = set(re.findall(rb"\d{4}-\d{2}-\d{2}", traffic))
    none = {"name": 0, "postcode": 0, "nhs": 0, "dob": 0}
    assert _found(traffic, identities, dates) == none
    # The encodings' database and the audit log, row by row (without the encodings, and without the log's
    # signatures and digests, which are base64 and hex: tests/scan.py).
    for database in ("encodings.db", "audit.db"):
        # Without the encodings (binary) and the times rows were written (today may be someone's birthday).
        rows = rows_text(f"sqlite:///{tmp_path / database}", skip_columns={"bloom", "published_at", "at"})
        assert rows
        text = scrubbed(" ".join(text for _, text in rows).encode())
        assert _found(text, identities, dates, words=True) == none, database
    # The scan finds what it looks for: an agency's own database is full of it.
    nhs = " ".join(text for _, text in rows_text(f"sqlite:///{prepared.workdir / 'nhs.db'}")).encode()
    assert all(n > 100 for n in _found(nhs, identities, set(), words=True).values())


async def test_a_record_its_agency_restricts_is_withheld_and_stays_pseudonymous(
    federation: Federation, prepared: Prepared
) -> None:
    """The police restrict one linked record (an investigation opened since it was published): a review
    gets WITHHELD and whom to call from the police, and who it is from the other agencies only."""
    assert federation.linkage is not None
    linked = federation.linkage[0].servicer.linked
    assert linked is not None
    candidate = next(c for c in linked.candidates if "police" in {m.agency for m in c.members})
    token = next(m.token for m in candidate.members if m.agency == "police")
    police, _ = federation.adapters["police"]
    publisher = police.servicer.reidentifier.publisher
    assert publisher is not None
    record_key = publisher.resolve(linked.key_id, token)
    assert record_key is not None
    config = load_adapter_config(prepared.configs["police"])
    engine = sa.create_engine(config.source.url)

    async def restrict(marker: str) -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE nominal SET sensitivity_marker = :m, last_updated = :t WHERE nominal_id = :k"
                ),
                {"m": marker, "t": dt.datetime.now() + dt.timedelta(seconds=1), "k": record_key},
            )
        refreshed = await asyncio.to_thread(refresh_index, config, police.servicer.index)
        police.servicer.install(refreshed.index)

    await restrict("Y")
    try:
        async with federation.channel(DEMO_CALLER) as channel:
            review = await broker_pb2_grpc.LateralCheckStub(channel).RequestReview(
                _review(candidate.candidate_id), timeout=10
            )
    finally:
        await restrict("N")
        engine.dispose()
    rows = {r.agency_id: r for r in review.rows}
    withheld = rows.pop("police")
    assert withheld.outcome == common_pb2.OUTCOME_WITHHELD
    assert not withheld.HasField("identity")
    assert withheld.contact.phone
    assert rows
    assert all(r.outcome == common_pb2.OUTCOME_KNOWN and r.HasField("identity") for r in rows.values())
