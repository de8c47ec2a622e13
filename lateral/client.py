"""A LateralCheck client, as the CLI and case systems use it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from lateral.config import ConfigError
from lateral.identity import Caller
from lateral.rpc import insecure_channel, secure_channel
from pki.assertion import METADATA_KEY, mint
from pki.tls import Tls
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


class _Identity:
    """The caller's identity for each call: a fresh user assertion signed with the system's certificate key
    (mutual TLS), or the stated identity (plaintext development)."""

    def __init__(self, caller: Caller, tls: Tls | None) -> None:
        self._caller = caller
        self._tls = tls

    def stated(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        if self._tls is None:
            added = self._caller.metadata()
        else:
            tls, caller = self._tls, self._caller
            added = ((METADATA_KEY, mint(tls.private_key, tls.identity, user=caller.user, role=caller.role)),)
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *added)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files each interceptor under one kind of call only: one class per kind.
class _IdentifiesUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, identity: _Identity) -> None:
        self._identity = identity

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(self._identity.stated(details), request)


class _IdentifiesStream(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, identity: _Identity) -> None:
        self._identity = identity

    async def intercept_stream_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(self._identity.stated(details), request_iterator)


def broker_channel(address: str, caller: Caller, tls: Tls | None = None) -> grpc.aio.Channel:
    """A channel to the broker on which every call carries the caller's identity.

    With tls (a case system's client certificate), the organisation and system are the certificate's and
    each call carries a user assertion for caller.user and caller.role; without, plaintext development.

    Raises:
        ConfigError: the certificate belongs to another organisation than caller.organisation.
    """
    identity = _Identity(caller, tls)
    interceptors: list[grpc.aio.ClientInterceptor] = [_IdentifiesUnary(identity), _IdentifiesStream(identity)]
    if tls is None:
        return insecure_channel(address, interceptors=interceptors)
    if caller.organisation and caller.organisation != tls.identity.organisation:
        raise ConfigError(
            f"the client certificate is {tls.identity.organisation}'s, not {caller.organisation}'s"
        )
    return secure_channel(address, tls.channel_credentials(), interceptors=interceptors)


async def check(
    address: str,
    request: broker_pb2.CheckRequest,
    *,
    caller: Caller,
    timeout: float,
    tls: Tls | None = None,
) -> broker_pb2.CheckResponse:
    """Sends one check to the broker at address as caller (raises grpc.aio.AioRpcError on failure)."""
    async with broker_channel(address, caller, tls) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        return await stub.Check(request, timeout=timeout)
