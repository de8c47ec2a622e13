"""A LateralCheck client, as the CLI and case systems use it."""

from __future__ import annotations

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


async def check(
    address: str, request: broker_pb2.CheckRequest, *, timeout: float
) -> broker_pb2.CheckResponse:
    """Sends one check to the broker at address (raises grpc.aio.AioRpcError on failure)."""
    async with insecure_channel(address) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        return await stub.Check(request, timeout=timeout)
