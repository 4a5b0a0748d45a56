"""The one table from domain errors to gRPC statuses, as https://google.aip.dev/193 describes.

Every error carries ErrorInfo{reason, domain}; each kind adds the detail a client acts on.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service.domain.errors import (
    BadSignature,
    CheckoutError,
    Conflict,
    CursorOutOfRange,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    TooManyWatchers,
    Unauthenticated,
    Unavailable,
    UpstreamRejected,
)

ERROR_DOMAIN = "checkout.v1"

# Subclasses take their parent's row (StripeMisconfigured is Unavailable, UpstreamMissing is
# UpstreamRejected). tests/unit/test_status.py checks every error of the domain has one.
CODES: dict[type[CheckoutError], int] = {
    Unauthenticated: code_pb2.UNAUTHENTICATED,
    PermissionDenied: code_pb2.PERMISSION_DENIED,
    InvalidRequest: code_pb2.INVALID_ARGUMENT,
    NotFound: code_pb2.NOT_FOUND,
    FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    Conflict: code_pb2.ABORTED,
    DeadlineExceeded: code_pb2.DEADLINE_EXCEEDED,
    TooManyWatchers: code_pb2.RESOURCE_EXHAUSTED,
    QuotaExceeded: code_pb2.RESOURCE_EXHAUSTED,
    CursorOutOfRange: code_pb2.OUT_OF_RANGE,
    Unavailable: code_pb2.UNAVAILABLE,
    # A refusal that a use case did not turn into InvalidRequest is about the session's state
    # at Stripe, not the caller's input.
    UpstreamRejected: code_pb2.FAILED_PRECONDITION,
    # Webhooks only (HTTP 400 there); listed so that the table is whole.
    BadSignature: code_pb2.INVALID_ARGUMENT,
}


def code_for(exc: CheckoutError) -> int:
    return next((c for kind, c in CODES.items() if isinstance(exc, kind)), code_pb2.INTERNAL)


def status_for(exc: CheckoutError) -> grpc.Status:
    code = code_for(exc)
    info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=ERROR_DOMAIN)
    if exc.upstream_request_id:
        info.metadata["stripe_request_id"] = exc.upstream_request_id
    if isinstance(exc, UpstreamRejected) and exc.code:
        info.metadata["stripe_code"] = exc.code
    if isinstance(exc, CursorOutOfRange):
        # The cursor to go on from, where a client reads machine-readable facts.
        key, cursor = exc.resume
        info.metadata[key] = cursor
    details = [info, *_details(exc)]
    status = status_pb2.Status(code=code, message=exc.message)
    for detail in details:
        status.details.add().Pack(detail)
    return rpc_status.to_status(status)


def internal_status() -> grpc.Status:
    """For bugs: a generic message; the stack trace goes to the log, not to the caller."""
    status = status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))
    return rpc_status.to_status(status)


def _details(exc: CheckoutError) -> list[Message]:
    if isinstance(exc, InvalidRequest):
        return [_bad_request((v.field, v.description) for v in exc.violations)]
    if isinstance(exc, FailedPrecondition):
        v = exc.violation
        return [
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=v.type, subject=v.subject, description=v.description
                    )
                ]
            )
        ]
    if isinstance(exc, NotFound):
        return [
            error_details_pb2.ResourceInfo(
                resource_type=exc.resource_type,
                resource_name=exc.resource_name,
                description=exc.message,
            )
        ]
    if isinstance(exc, UpstreamRejected):
        return [
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=exc.reason, subject="stripe", description=exc.message
                    )
                ]
            )
        ]
    if isinstance(exc, CursorOutOfRange):
        # https://cloud.google.com/apis/design/errors#error_payloads: BadRequest for OUT_OF_RANGE.
        return [_bad_request([("after", exc.message)])]
    if isinstance(exc, Unavailable):
        return [_retry_info(exc.retry_after_seconds)]
    if isinstance(exc, QuotaExceeded):
        # https://google.aip.dev/193#resource_exhausted: which quota, and when to come back.
        violation = error_details_pb2.QuotaFailure.Violation(
            subject=f"caller:{exc.caller}", description=exc.message
        )
        return [
            error_details_pb2.QuotaFailure(violations=[violation]),
            _retry_info(exc.retry_after_seconds),
        ]
    return []


def _bad_request(violations: Iterable[tuple[str, str]]) -> error_details_pb2.BadRequest:
    """Each (field, description) as a field violation."""
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations
        ]
    )


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration(seconds=int(seconds), nanos=int((seconds - int(seconds)) * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)
