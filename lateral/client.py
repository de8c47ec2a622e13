"""A LateralCheck client, as the CLI and case systems use it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from lateral.identity import Caller
from lateral.rpc import insecure_channel
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2

GENDERS = {
    "female": common_pb2.GENDER_FEMALE,
    "male": common_pb2.GENDER_MALE,
    "other": common_pb2.GENDER_OTHER,
    "not-known": common_pb2.GENDER_NOT_KNOWN,
}


def build_request(
    *,
    given_names: list[str],
    family_name: str,
    date_of_birth: str = "",
    gender: str = "",
    postcode: str = "",
    address: str = "",
    nhs_number: str = "",
    purpose: str,
    justification: str = "",
    case_ref: str = "",
) -> broker_pb2.CheckRequest:
    """A check request from plain values (validation is the broker's)."""
    subject = common_pb2.Subject(
        given_names=given_names,
        family_name=family_name,
        date_of_birth=date_of_birth,
        gender=GENDERS.get(gender, common_pb2.GENDER_UNSPECIFIED),
        nhs_number=nhs_number,
        address=common_pb2.Address(lines=[address] if address else [], postcode=postcode),
    )
    return broker_pb2.CheckRequest(
        subject=subject, purpose=purpose, justification=justification, case_ref=case_ref
    )


class _StatesIdentity(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the caller's identity to every call on a channel."""

    def __init__(self, caller: Caller) -> None:
        self._metadata = caller.metadata()

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *self._metadata)
        stated = grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )
        return await continuation(stated, request)


def broker_channel(address: str, caller: Caller) -> grpc.aio.Channel:
    """A channel to the broker on which every call carries the caller's identity (development: metadata)."""
    return insecure_channel(address, interceptors=[_StatesIdentity(caller)])


async def check(
    address: str, request: broker_pb2.CheckRequest, *, caller: Caller, timeout: float
) -> broker_pb2.CheckResponse:
    """Sends one check to the broker at address as caller (raises grpc.aio.AioRpcError on failure)."""
    async with broker_channel(address, caller) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        return await stub.Check(request, timeout=timeout)
