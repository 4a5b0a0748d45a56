"""What Stripe tells a client about a failed API request besides the error itself.

- `Stripe-Should-Retry`: whether retrying the same request could succeed. Stripe sends it so
  that its libraries know (stripe-python's `_should_retry` obeys it before anything else,
  https://github.com/stripe/stripe-python/blob/master/stripe/_http_client.py). The sandbox
  sends `true` on a 409 (a concurrent request holds the idempotency key or a lock) and on a
  5xx that a retry could change; `false` on a 5xx saved under the request's idempotency key
  (a retry would only replay it: "we expect the stripe-should-retry header to be false in most
  cases when a 500 is returned, since our idempotency framework would typically replay it
  anyway"), and on every other 4xx, which the same request would meet again.
- `request_log_url` in the error object (https://docs.stripe.com/api/errors#errors-request_log_url):
  the Dashboard page of the request's log. The sandbox has no Dashboard, so the link is Stripe's
  format, `https://dashboard.stripe.com/test/logs/req_…?t=…`, and leads nowhere; an integration
  should only log it. Refusals of the API key itself (401) carry none: no account, no log.
"""

from typing import Any

from aiohttp import web

from .errors import StripeError

HEADER = "Stripe-Should-Retry"
_LOG_URL = "https://dashboard.stripe.com/test/logs/{request_id}?t={now}"


def should_retry(status: int, replays_failure: bool = False) -> str | None:
    """The header's value for a response with `status`; None for a success."""
    if status < 400:
        return None
    if status == 409:
        return "true"
    if status >= 500:
        return "false" if replays_failure else "true"
    return "false"


def mark(response: web.StreamResponse, replays_failure: bool = False) -> None:
    """Set `Stripe-Should-Retry` on an API response, unless it already says."""
    value = should_retry(response.status, replays_failure)
    if value is not None:
        response.headers.setdefault(HEADER, value)


def with_log_url(body: dict[str, Any], request_id: str, now: int) -> dict[str, Any]:
    """An error body with its request's `request_log_url` (a success body is left alone)."""
    error = body.get("error")
    if isinstance(error, dict) and "request_log_url" not in error:
        error["request_log_url"] = _LOG_URL.format(request_id=request_id, now=now)
    return body


def error_body(error: StripeError, request_id: str, now: int) -> dict[str, Any]:
    body = error.body()
    return body if error.status == 401 else with_log_url(body, request_id, now)
