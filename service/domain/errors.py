"""Errors of the domain; the edge maps each to one gRPC status (service/edge/status.py).

    CheckoutError
    ├── Unauthenticated       no credentials, or credentials of no known caller
    ├── PermissionDenied      a known caller whose role may not do this
    ├── InvalidRequest        the caller sent something we or Stripe refuse; names the fields
    ├── NotFound              no such session or order
    ├── FailedPrecondition    the order's state forbids it (paid, not open)
    ├── Conflict              a concurrent change won; retry the whole call
    │   └── AttemptDropped    the attempt's ledger row went away while we worked on it
    ├── DeadlineExceeded      too little of the caller's deadline was left to go on
    ├── TooManyWatchers       this replica serves as many WatchSession streams as it may
    ├── QuotaExceeded         the caller used up its share (open streams, Stripe calls per second)
    ├── CursorOutOfRange      an event feed cursor that cannot be resumed from without a gap
    ├── Unavailable           Stripe or Postgres is unreachable or slow; retry later
    │   ├── StripeMisconfigured   Stripe refuses our key or its permissions: an operator's fix
    │   ├── IdempotencyKeySpent   Stripe replays a saved failure for an attempt's key
    │   └── OrderPaidTwice        two sessions of one order were paid: an operator's fix
    ├── UpstreamRejected      Stripe definitely refused a request; nothing was changed there
    │   └── UpstreamMissing   ... because the object does not exist at Stripe (404)
    └── BadSignature          a webhook whose signature is missing, wrong or stale

Adapters (gateway, store) translate foreign exceptions into these once, chained with `from`;
the edge maps each to one gRPC status (service/edge/status.py) and the webhook route to one
HTTP status. Anything else reaching the edge is a bug, and only a bug is INTERNAL.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field, named by its path in the request (`line_items[1].quantity`)."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class PreconditionViolation:
    """One unmet precondition: `type` is a machine-readable kind, `subject` what it concerns."""

    type: str
    subject: str
    description: str


class CheckoutError(Exception):
    """Root of the domain's errors. `reason` is an UPPER_SNAKE machine-readable cause."""

    reason = "CHECKOUT_ERROR"

    def __init__(self, message: str, *, upstream_request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Stripe's `req_…` id, when Stripe was involved: for debugging with Stripe support.
        self.upstream_request_id = upstream_request_id


class Unauthenticated(CheckoutError):
    reason = "UNAUTHENTICATED"


class PermissionDenied(CheckoutError):
    reason = "PERMISSION_DENIED"


class InvalidRequest(CheckoutError):
    reason = "INVALID_REQUEST"

    def __init__(
        self,
        violations: list[FieldViolation],
        *,
        reason: str | None = None,
        upstream_request_id: str | None = None,
    ) -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(summary, upstream_request_id=upstream_request_id)
        self.violations = violations
        if reason is not None:
            self.reason = reason


class NotFound(CheckoutError):
    reason = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_name: str, message: str) -> None:
        super().__init__(message)
        self.resource_type = resource_type
        self.resource_name = resource_name


class FailedPrecondition(CheckoutError):
    reason = "FAILED_PRECONDITION"

    def __init__(self, violation: PreconditionViolation, *, reason: str | None = None) -> None:
        super().__init__(violation.description)
        self.violation = violation
        if reason is not None:
            self.reason = reason


class Conflict(CheckoutError):
    reason = "CONFLICT"


class AttemptDropped(Conflict):
    """The ledger row of an attempt is gone (its attempt was refused and dropped elsewhere)
    while this process was still working on it."""

    reason = "ATTEMPT_DROPPED"


class DeadlineExceeded(CheckoutError):
    reason = "DEADLINE_TOO_SHORT"


class TooManyWatchers(CheckoutError):
    reason = "TOO_MANY_WATCHERS"


class QuotaExceeded(CheckoutError):
    """The caller has used up its own share of something every caller needs: open streams, or
    calls to Stripe, whose rate limit is the whole account's. Nothing was written or sent; the
    call may be made again after `retry_after_seconds`."""

    reason = "QUOTA_EXCEEDED"

    def __init__(
        self, message: str, *, caller: str, limit: str, reason: str, retry_after_seconds: float
    ) -> None:
        super().__init__(message)
        self.caller = caller
        self.limit = limit
        """Which share: `streams` or `stripe_calls` (a metric label)."""
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds


class CursorOutOfRange(CheckoutError):
    """An event feed cursor that the feed cannot resume from without leaving out events:
    older than the oldest event retained (`CURSOR_EXPIRED`), or naming an event the database
    does not have, as after a failover that lost the last commits (`CURSOR_UNKNOWN`). Never a
    silent restart: the caller learns it, and `resume` names the cursor it may go on from
    (`oldest_cursor` or `latest_cursor`, and the cursor itself), knowing what it missed."""

    def __init__(self, message: str, *, reason: str, resume: tuple[str, str]) -> None:
        super().__init__(message)
        self.reason = reason
        self.resume = resume


class Unavailable(CheckoutError):
    """A dependency failed in a way that a later retry may fix; the outcome may be unknown."""

    reason = "UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        reason: str = "UPSTREAM_UNAVAILABLE",
        retry_after_seconds: float = 1.0,
        upstream_request_id: str | None = None,
    ) -> None:
        super().__init__(message, upstream_request_id=upstream_request_id)
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds


class StripeMisconfigured(Unavailable):
    """Stripe refuses this service's key (revoked, wrong mode) or a restricted key lacks a
    permission: nothing a caller did, and nothing a retry fixes until an operator acts, but
    the call may succeed later, so it is UNAVAILABLE with a long retry delay, not INTERNAL."""

    def __init__(self, message: str, *, upstream_request_id: str | None = None) -> None:
        super().__init__(
            message,
            reason="STRIPE_MISCONFIGURED",
            retry_after_seconds=30.0,
            upstream_request_id=upstream_request_id,
        )


class OrderPaidTwice(Unavailable):
    """An order was paid through two sessions: one the ledger holds, and one it did not know
    (a recovered cart's copy, or a session whose row a database failover lost) that the
    customer paid too. Nothing automatic can undo it and the ledger keeps one payment per order:
    an operator refunds one of the two (the runbook). The event stays unapplied, so that Stripe
    keeps retrying it, and is said once more each time."""

    def __init__(self, caller: str, order_id: str, held: str, other: str) -> None:
        super().__init__(
            f"order {order_id} was paid by session {held} and by {other}, which the ledger did "
            "not know: refund one of them",
            reason="ORDER_PAID_TWICE",
            retry_after_seconds=3600.0,
        )
        self.caller = caller
        self.order_id = order_id
        self.sessions = (held, other)


class UpstreamRejected(CheckoutError):
    """Stripe definitely refused the request (HTTP 4xx): nothing was created or changed.

    Use cases turn a refusal of the caller's input into InvalidRequest on the right field; one
    that escapes them is a refusal of the session's state, answered FAILED_PRECONDITION."""

    reason = "STRIPE_REFUSED"

    def __init__(
        self, message: str, *, param: str | None, code: str | None, request_id: str | None
    ) -> None:
        super().__init__(message, upstream_request_id=request_id)
        self.param = param
        self.code = code
        self.request_id = request_id


class UpstreamMissing(UpstreamRejected):
    """Stripe does not know the object (`resource_missing`): a session created with another
    key or account, or deleted there."""

    reason = "STRIPE_RESOURCE_MISSING"


class BadSignature(CheckoutError):
    """A webhook whose signature is missing, wrong or stale."""

    reason = "BAD_WEBHOOK_SIGNATURE"


class IdempotencyKeySpent(Unavailable):
    """Stripe saved a failure (a 500) under an attempt's idempotency key and replays it to
    every retry with that key for 24 hours: the attempt needs a new key, once it is certain
    that the failed attempt created nothing."""

    def __init__(self, message: str, *, upstream_request_id: str | None = None) -> None:
        super().__init__(
            message,
            reason="STRIPE_ATTEMPT_FAILED",
            retry_after_seconds=1.0,
            upstream_request_id=upstream_request_id,
        )
