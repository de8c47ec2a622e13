"""The exception tree raised by servicers, and the one place it becomes a gRPC status.

Servicers raise these; `maps_errors` turns them into a rich status (google.rpc.Status with details).
Messages are read by operators and callers, so they never hold personal data: name the field, not the value.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

log = logging.getLogger(__name__)

ERROR_DOMAIN = "lateral.safeguarding"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: a dotted path into the request (e.g. "subject.date_of_birth") and the problem."""

    field: str
    description: str


class LateralError(Exception):
    """Base of every error a servicer may raise on purpose."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> Sequence[Message]:
        """Rich error details attached to the status."""
        return ()


class InvalidRequestError(LateralError):
    """The request breaks one or more validation rules (INVALID_ARGUMENT with google.rpc.BadRequest)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        fields = ", ".join(v.field for v in violations)
        super().__init__(f"invalid request: {fields}")
        self.violations = tuple(violations)

    def details(self) -> Sequence[Message]:
        return (
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in self.violations
                ]
            ),
        )


class PermissionDeniedError(LateralError):
    """The caller may not make this request (PERMISSION_DENIED with google.rpc.ErrorInfo)."""

    code = grpc.StatusCode.PERMISSION_DENIED

    def __init__(self, message: str, reason: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = dict(metadata or {})

    def details(self) -> Sequence[Message]:
        return (error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata),)


class UnauthenticatedError(LateralError):
    """The caller's identity could not be established."""

    code = grpc.StatusCode.UNAUTHENTICATED


class UnavailableError(LateralError):
    """The service cannot answer now but may shortly (UNAVAILABLE with google.rpc.RetryInfo)."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def details(self) -> Sequence[Message]:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(self.retry_after_seconds * 1e9))
        return (error_details_pb2.RetryInfo(retry_delay=delay),)


class NotFoundError(LateralError):
    """What the request names does not exist (any more): NOT_FOUND."""

    code = grpc.StatusCode.NOT_FOUND


class TooLateError(LateralError):
    """Too little of the caller's deadline is left to do anything useful (DEADLINE_EXCEEDED)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class OverloadedError(UnavailableError):
    """Too much work in flight: shed load (RESOURCE_EXHAUSTED with google.rpc.RetryInfo)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


def to_status(error: LateralError) -> grpc.Status:
    """Builds the rich gRPC status for an error."""
    details = []
    for detail in error.details():
        packed = any_pb2.Any()
        packed.Pack(detail)
        details.append(packed)
    code: int = error.code.value[0]
    return rpc_status.to_status(status_pb2.Status(code=code, message=error.message, details=details))


def _internal_status(reference: str) -> grpc.Status:
    message = f"internal error (reference {reference})"
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message=message))


@runtime_checkable
class ObservesErrors(Protocol):
    """A servicer that counts the errors its calls end in (for metrics)."""

    def observe_error(self, method: str, code: grpc.StatusCode) -> None: ...


def _observe(servicer: object, method: str, code: grpc.StatusCode) -> None:
    if isinstance(servicer, ObservesErrors):
        servicer.observe_error(method, code)


Req = TypeVar("Req")
Resp = TypeVar("Resp")
Self_ = TypeVar("Self_")
Handler = Callable[[Self_, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]


def maps_errors(method: Handler[Self_, Req, Resp]) -> Handler[Self_, Req, Resp]:
    """Wraps an async servicer method so the error tree, and anything unexpected, become statuses.

    Unexpected exceptions are logged by type and a reference only: their messages may quote request data.
    """

    @functools.wraps(method)
    async def wrapper(self: Self_, request: Req, context: grpc.aio.ServicerContext[Req, Resp]) -> Resp:
        try:
            return await method(self, request, context)
        except LateralError as error:
            _observe(self, method.__name__, error.code)
            await context.abort_with_status(to_status(error))
        except Exception as error:
            reference = uuid.uuid4().hex[:12]
            log.error("unexpected %s in %s (reference %s)", type(error).__name__, method.__name__, reference)
            _observe(self, method.__name__, grpc.StatusCode.INTERNAL)
            await context.abort_with_status(_internal_status(reference))
        raise AssertionError("abort_with_status returned")  # pragma: no cover - abort always raises

    return wrapper


StreamHandler = Callable[[Self_, Req, grpc.aio.ServicerContext[Any, Resp]], AsyncIterator[Resp]]


def maps_stream_errors(method: StreamHandler[Self_, Req, Resp]) -> StreamHandler[Self_, Req, Resp]:
    """maps_errors for a method that streams its responses: an error ends the stream with its status."""

    @functools.wraps(method)
    async def wrapper(
        self: Self_, request: Req, context: grpc.aio.ServicerContext[Any, Resp]
    ) -> AsyncIterator[Resp]:
        try:
            async for response in method(self, request, context):
                yield response
        except LateralError as error:
            _observe(self, method.__name__, error.code)
            await context.abort_with_status(to_status(error))
        except Exception as error:
            reference = uuid.uuid4().hex[:12]
            log.error("unexpected %s in %s (reference %s)", type(error).__name__, method.__name__, reference)
            _observe(self, method.__name__, grpc.StatusCode.INTERNAL)
            await context.abort_with_status(_internal_status(reference))

    return wrapper


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The rich status (with details) a server attached to a failed call, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def field_violations(error: grpc.aio.AioRpcError) -> list[FieldViolation]:
    """The google.rpc.BadRequest field violations of a failed call; empty when there are none."""
    status = status_of(error)
    out: list[FieldViolation] = []
    for detail in status.details if status else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    return out
