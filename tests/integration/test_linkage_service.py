"""The linkage service on its own (docs/proactive.md): who may publish and read, what a bad publication is
told, publishing changes only, rotating the shared key, and refusing to publish to the wrong service."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from adapters.core.config import load_adapter_config
from adapters.core.index import MatchIndex
from adapters.core.publish import Publisher, PublishError
from adapters.core.refresh import build_index
from lateral.config import ConfigError
from lateral.demo import Prepared
from lateral.demo.agreement import AGREEMENT_FILE
from lateral.errors import field_violations
from lateral.rpc import secure_channel
from linkage.keyfiles import write_shared_key
from linkage.service import LinkageServer, create_server
from linkage.service.config import LinkageServerSection, LinkageServiceConfig, StoreSection
from pki.tls import Tls
from policy.agreement import Agreement, load_agreement
from policy.trust import PolicySection
from protos.lateral.v1 import linkage_pb2, linkage_pb2_grpc

if TYPE_CHECKING:
    from protos.lateral.v1.linkage_pb2_grpc import LinkageAsyncStub

pytestmark = pytest.mark.integration

LINKAGE = "spiffe://northshire/org/northshire-council/linkage/mash-linkage"


def _config(prepared: Prepared, tmp_path: Path) -> LinkageServiceConfig:
    return LinkageServiceConfig(
        linkage=LinkageServerSection(listen="127.0.0.1:0", relink_after_seconds=0.0),
        store=StoreSection(url=f"sqlite:///{tmp_path / 'encodings.db'}"),
        tls=prepared.pki.linkage_tls(),
        audit=prepared.audit["linkage"].model_copy(update={"url": f"sqlite:///{tmp_path / 'audit.db'}"}),
        policy=PolicySection(agreement=str(prepared.workdir / AGREEMENT_FILE)),
    )


@pytest.fixture
async def service(prepared: Prepared, tmp_path: Path) -> AsyncIterator[tuple[LinkageServer, int]]:
    server, port = await create_server(_config(prepared, tmp_path), "127.0.0.1:0")
    await server.start()
    yield server, port
    await server.stop(None)


def _stub(prepared: Prepared, port: int, as_: str) -> tuple[grpc.aio.Channel, LinkageAsyncStub]:
    """A channel to the service with the certificate of `as_`: "broker" or an agency's adapter."""
    section = prepared.pki.broker_tls if as_ == "broker" else prepared.pki.adapter_tls(as_)
    channel = secure_channel(f"127.0.0.1:{port}", Tls(section).channel_credentials())
    return channel, linkage_pb2_grpc.LinkageStub(channel)


def _agreement(prepared: Prepared) -> Agreement:
    return load_agreement(prepared.workdir / AGREEMENT_FILE)[0]


def _index(prepared: Prepared, agency: str) -> MatchIndex:
    return build_index(load_adapter_config(prepared.configs[agency]))


@pytest.fixture
async def channels() -> AsyncIterator[list[grpc.aio.Channel]]:
    """Channels the test opened, closed at its end."""
    opened: list[grpc.aio.Channel] = []
    yield opened
    for channel in opened:
        await channel.close()


def _publisher(
    prepared: Prepared, agency: str, port: int, channels: list[grpc.aio.Channel], key: Path | None = None
) -> Publisher:
    channel, stub = _stub(prepared, port, agency)
    channels.append(channel)
    return Publisher(
        agency,
        f"127.0.0.1:{port}",
        key or prepared.linkage_folder / "linkage.key",
        prepared.linkage_folder / f"{agency}-tokens.key",
        stub,
        Tls(prepared.pki.adapter_tls(agency)),
    )


async def test_a_bad_publication_is_refused_naming_every_bad_field(
    prepared: Prepared, service: tuple[LinkageServer, int]
) -> None:
    channel, stub = _stub(prepared, service[1], "police")
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Publish(
                linkage_pb2.PublishRequest(
                    agency_id="police",
                    key_id="1:0123456789abcdef",
                    upserts=[
                        linkage_pb2.Encoding(
                            token="Jane Smith",
                            bloom=b"\x00" * 5,
                            digest="0" * 64,
                            activity=[linkage_pb2.Activity(date="1999-01-01", category="arrest")],
                        )
                    ],
                    removals=["x"],
                ),
                timeout=5,
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [(v.field, v.description) for v in field_violations(refused.value)] == [
        ("upserts[0].token", "must be 32 hex digits"),
        ("upserts[0].bloom", "must be 128 bytes"),
        (
            "upserts[0].activity[0].date",
            "must be a YYYY-MM-DD date within the agreement's look-back of 365 days",
        ),
        ("removals[0]", "must be 32 hex digits"),
    ]
    assert service[0].servicer.linked is None or not service[0].servicer.linked.encodings.get("police")


async def test_only_an_agencys_own_adapter_publishes_and_only_the_broker_reads(
    prepared: Prepared, service: tuple[LinkageServer, int]
) -> None:
    channel, as_fire = _stub(prepared, service[1], "fire")
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as other_agency:
            await as_fire.Holdings(
                linkage_pb2.HoldingsRequest(agency_id="police", key_id="1:0123456789abcdef"), timeout=5
            )
        with pytest.raises(grpc.aio.AioRpcError) as adapter_reading:
            await as_fire.ListCandidates(linkage_pb2.ListCandidatesRequest(), timeout=5)
    assert (other_agency.value.code(), other_agency.value.details()) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "only an adapter of the party that holds police may publish its encodings",
    )
    assert (adapter_reading.value.code(), adapter_reading.value.details()) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "only the federation's broker may read review candidates",
    )
    channel, as_broker = _stub(prepared, service[1], "broker")
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as broker_publishing:
            await as_broker.Publish(
                linkage_pb2.PublishRequest(agency_id="police", key_id="1:0123456789abcdef"), timeout=5
            )
        listing = await as_broker.ListCandidates(linkage_pb2.ListCandidatesRequest(), timeout=5)
    assert broker_publishing.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert list(listing.candidates) == []


async def test_publications_send_only_changes_and_a_new_key_retires_the_old(
    prepared: Prepared,
    service: tuple[LinkageServer, int],
    tmp_path: Path,
    channels: list[grpc.aio.Channel],
) -> None:
    server, port = service
    agreement, today = _agreement(prepared), dt.date.today()
    indexes = {agency: _index(prepared, agency) for agency in ("police", "nhs", "socialcare", "fire")}
    first = {}
    for agency, index in indexes.items():
        first[agency] = await _publisher(prepared, agency, port, channels).publish(
            agreement, index, today, frozenset()
        )
        assert first[agency].published == first[agency].sent > 0
    again = await _publisher(prepared, "police", port, channels).publish(
        agreement, indexes["police"], today, frozenset()
    )
    assert (again.published, again.sent, again.removed) == (first["police"].published, 0, 0)
    # Tomorrow's window loses the oldest day's people: only they are removed.
    later = today + dt.timedelta(days=60)
    moved = await _publisher(prepared, "police", port, channels).publish(
        agreement, indexes["police"], later, frozenset()
    )
    assert moved.published < first["police"].published
    assert moved.removed == first["police"].published - moved.published
    linked = await server.servicer.relink()
    assert linked is not None
    old_key = linked.key_id
    # A rotation: the police publish under epoch 2 and their epoch-1 encodings go; the others' stay until
    # they rotate, and the service links the newest key only.
    rotated = tmp_path / "linkage-2.key"
    key = write_shared_key(rotated, epoch=2)
    await _publisher(prepared, "police", port, channels, rotated).publish(
        agreement, indexes["police"], today, frozenset()
    )
    linked = await server.servicer.relink()
    assert linked is not None
    assert linked.key_id == key.key_id != old_key
    assert linked.encodings == {"police": first["police"].published}
    channel, as_police = _stub(prepared, port, "police")
    async with channel:
        held = await as_police.Holdings(
            linkage_pb2.HoldingsRequest(agency_id="police", key_id=old_key), timeout=5
        )
    assert list(held.holdings) == []


async def test_an_adapter_publishes_only_to_the_service_the_agreement_names(
    prepared: Prepared, service: tuple[LinkageServer, int], channels: list[grpc.aio.Channel]
) -> None:
    """Pointed at another federation service (here the linkage service's port, but expecting the broker's
    identity, as a mistyped address would give), nothing is published."""
    agreement = _agreement(prepared)
    impostor = agreement.model_copy(
        update={
            "linkage": agreement.linkage.model_copy(
                update={"service": "spiffe://northshire/org/northshire-council/linkage/other"}
            )
            if agreement.linkage
            else None
        }
    )
    publisher = _publisher(prepared, "fire", service[1], channels)
    with pytest.raises(PublishError) as refused:
        await publisher.publish(impostor, _index(prepared, "fire"), dt.date.today(), frozenset())
    assert str(refused.value) == (
        f"the service at 127.0.0.1:{service[1]} is {LINKAGE}, not the linkage service the agreement names "
        "(spiffe://northshire/org/northshire-council/linkage/other): nothing was published"
    )
    assert publisher.latest is None


async def test_the_service_refuses_a_certificate_that_is_not_the_agreements_linkage_service(
    prepared: Prepared, tmp_path: Path
) -> None:
    config = _config(prepared, tmp_path)
    as_broker = config.model_copy(
        update={
            "tls": config.tls.model_copy(update=prepared.pki.broker_tls.model_dump()) if config.tls else None
        }
    )
    with pytest.raises(ConfigError) as refused:
        await create_server(as_broker, "127.0.0.1:0")
    assert str(refused.value) == (
        "tls.cert: this certificate is spiffe://northshire/org/northshire-council/broker/hub, not the "
        f"linkage service the agreement names ({LINKAGE})"
    )
