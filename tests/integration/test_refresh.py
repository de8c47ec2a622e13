"""The index follows the agency database: changes by watermark, applied while queries go on."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.core import build_index, create_server, load_adapter_config, refresh_index
from adapters.core.config import AdapterConfig
from adapters.core.disclosure import finding_for
from adapters.core.matching import Matcher
from adapters.core.source import Contact
from adapters.police import schema
from lateral.demo.agreement import DEMO_CALLER, write_signed_agreement
from lateral.rpc import insecure_channel
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, common_pb2
from synth import SynthConfig, generate, write_adapter_configs, write_databases

LATER = dt.datetime(2030, 1, 1, 12, 0)
DESK = Contact("Desk")


@pytest.fixture
def police(tmp_path: Path) -> AdapterConfig:
    url = f"sqlite:///{tmp_path / 'police.db'}"
    write_signed_agreement(tmp_path)
    write_databases(generate(SynthConfig(people=3000, seed=3), dt.date(2026, 11, 21)), {"police": url})
    return load_adapter_config(write_adapter_configs(tmp_path, {"police": url})["police"])


def subject(given: str, family: str, born: dt.date) -> common_pb2.Subject:
    return common_pb2.Subject(given_names=[given], family_name=family, date_of_birth=born.isoformat())


def nominal(engine: sa.Engine, nominal_id: int) -> sa.RowMapping:
    with engine.connect() as conn:
        return (
            conn.execute(sa.select(schema.nominal).where(schema.nominal.c.nominal_id == nominal_id))
            .mappings()
            .one()
        )


def test_changes_are_applied_and_the_old_index_is_left_alone(police: AdapterConfig) -> None:
    index = build_index(police)
    assert set(index.watermarks) == {"people", "events"}
    engine = sa.create_engine(police.source.url)
    renamed, busy = nominal(engine, 1), nominal(engine, 2)
    born = renamed["date_of_birth"]
    with engine.begin() as conn:
        conn.execute(
            schema.nominal.update()
            .where(schema.nominal.c.nominal_id == 1)
            .values(surname="Newname", last_updated=LATER)
        )
        conn.execute(
            schema.nominal.insert().values(
                nominal_id=999_999,
                forenames="Newly",
                surname="Arrived",
                date_of_birth=dt.date(2001, 2, 3),
                sex="F",
                home_address="1 New Road",
                home_postcode="NT1 1AB",
                sensitivity_marker="N",
                last_updated=LATER,
            )
        )
        conn.execute(
            schema.occurrence.insert().values(
                occurrence_id=999_999,
                occurrence_ref="OCC-2030-X",
                occurrence_type="WELF",
                reported_at=LATER,
                restricted=False,
                last_updated=LATER,
            )
        )
        conn.execute(
            schema.occurrence_nominal.insert().values(
                occurrence_id=999_999, nominal_id=2, involvement="SUBJECT"
            )
        )
    engine.dispose()

    refreshed = refresh_index(police, index)
    assert (refreshed.changed, refreshed.full) == (3, False)
    new = refreshed.index
    assert new.record_count == index.record_count + 1
    assert str(new.watermarks["people"]) > str(index.watermarks["people"])
    matcher, old_matcher = Matcher(new), Matcher(index)
    first = renamed["forenames"].split()[0]
    renamed_now = matcher.match(subject(first, "Newname", born))
    assert (renamed_now.outcome, renamed_now.record_keys[:1]) == (common_pb2.OUTCOME_KNOWN, ("1",))
    assert old_matcher.match(subject(first, "Newname", born)).outcome != common_pb2.OUTCOME_KNOWN
    assert matcher.match(subject("Newly", "Arrived", dt.date(2001, 2, 3))).record_keys == ("999999",)
    busy_subject = subject(busy["forenames"].split()[0], busy["surname"], busy["date_of_birth"])
    before = finding_for(old_matcher.match(busy_subject), index, DESK)
    after = finding_for(matcher.match(busy_subject), new, DESK)
    assert after.activity_count == before.activity_count + 1
    assert after.latest_activity_date == "2030-01-01"
    assert after.categories[0] == "concern-for-welfare"
    # Nothing more changed: nothing is re-read.
    again = refresh_index(police, new)
    assert (again.changed, again.index.record_count) == (0, new.record_count)
    assert again.index.refreshed_at >= new.refreshed_at


async def test_a_running_adapter_refreshes_by_itself(police: AdapterConfig) -> None:
    config = police.model_copy(update={"refresh": police.refresh.model_copy(update={"interval_seconds": 1})})
    server, port = await create_server(config, "127.0.0.1:0", insecure_dev=True)
    await server.start()
    try:
        async with insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = adapter_pb2_grpc.AgencyAdapterStub(channel)
            first = await stub.Describe(adapter_pb2.DescribeRequest(), timeout=5)
            engine = sa.create_engine(config.source.url)
            with engine.begin() as conn:
                conn.execute(
                    schema.nominal.insert().values(
                        nominal_id=888_888,
                        forenames="Late",
                        surname="Comer",
                        date_of_birth=dt.date(1999, 9, 9),
                        sex="M",
                        home_address="2 New Road",
                        home_postcode="NT1 1AB",
                        sensitivity_marker="N",
                        last_updated=LATER,
                    )
                )
            engine.dispose()
            request = adapter_pb2.MatchRequest(
                check_id="t",
                subject=subject("Late", "Comer", dt.date(1999, 9, 9)),
                purpose="adult-safeguarding",
                justification="Concern raised",
                case_ref="ASC-1",
                requester=adapter_pb2.Requester(
                    organisation=DEMO_CALLER.organisation, role=DEMO_CALLER.role, user="u", system="s"
                ),
            )
            for _ in range(50):
                await asyncio.sleep(0.1)
                answer = await stub.Match(request, timeout=5)
                if answer.finding.outcome == common_pb2.OUTCOME_KNOWN:
                    break
            assert answer.finding.outcome == common_pb2.OUTCOME_KNOWN
            second = await stub.Describe(adapter_pb2.DescribeRequest(), timeout=5)
        assert second.record_count == first.record_count + 1
        assert second.index_refreshed_at.ToDatetime() > first.index_refreshed_at.ToDatetime()
        assert second.index_built_at == first.index_built_at
    finally:
        await server.stop(None)
