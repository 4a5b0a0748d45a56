"""The one error table: every error of the domain has a row, and only a bug is INTERNAL."""

from __future__ import annotations

import inspect

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from service.domain import errors
from service.edge.status import CODES, code_for, status_for

DOMAIN_ERRORS = [
    kind
    for _, kind in inspect.getmembers(errors, inspect.isclass)
    if issubclass(kind, errors.CheckoutError) and kind is not errors.CheckoutError
]


@pytest.mark.parametrize("kind", DOMAIN_ERRORS, ids=lambda kind: kind.__name__)
def test_every_error_of_the_domain_has_a_row_that_is_not_internal(
    kind: type[errors.CheckoutError],
) -> None:
    assert any(issubclass(kind, row) for row in CODES), f"{kind.__name__} has no row"
    assert code_pb2.INTERNAL not in CODES.values()


def test_a_session_stripe_does_not_know_is_a_failed_precondition_not_internal() -> None:
    missing = errors.UpstreamMissing(
        "No such checkout.session", param="session", code="resource_missing", request_id="req_1"
    )
    assert code_for(missing) == code_pb2.FAILED_PRECONDITION


def test_a_refused_key_is_unavailable_for_an_operator_to_fix() -> None:
    refused = errors.StripeMisconfigured("Invalid API Key provided")
    assert code_for(refused) == code_pb2.UNAVAILABLE
    assert refused.reason == "STRIPE_MISCONFIGURED"


def test_a_cursor_out_of_range_names_after_and_the_cursor_to_go_on_from() -> None:
    expired = errors.CursorOutOfRange(
        "older than the oldest event", reason="CURSOR_EXPIRED", resume=("oldest_cursor", "c-1")
    )

    answer = status_for(expired)

    assert answer.code == grpc.StatusCode.OUT_OF_RANGE
    sent = status_pb2.Status.FromString(dict(answer.trailing_metadata)["grpc-status-details-bin"])
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    [packed_info, packed_bad] = sent.details
    assert packed_info.Unpack(info) and packed_bad.Unpack(bad)
    assert (info.reason, dict(info.metadata)) == ("CURSOR_EXPIRED", {"oldest_cursor": "c-1"})
    assert [v.field for v in bad.field_violations] == ["after"]
