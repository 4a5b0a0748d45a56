"""Stripe-shaped refusals.

Every refusal is a `StripeError`, rendered as Stripe's body
`{"error": {"type", "code", "param", "message", "doc_url"}}` with the matching HTTP status, which
stripe-python maps to its own exception classes (https://docs.stripe.com/api/errors,
https://docs.stripe.com/error-codes, and `specific_v1_api_error` in
https://github.com/stripe/stripe-python/blob/master/stripe/_api_requestor.py):

    StripeError
      400/404 invalid_request_error  -> InvalidRequestError (.param, .code)
      400 idempotency_error          -> IdempotencyError
      402 card_error                 -> CardError (.code, .decline_code)
      401                            -> AuthenticationError
      409                            -> APIError
      429                            -> RateLimitError
      5xx api_error                  -> APIError
"""

from typing import Any

# Stripe links each error code to a page named after it, with dashes.
_DOC_BASE = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """A refusal in Stripe's wire format.

    `saved` tells the idempotency layer whether the refusal happened after the endpoint began
    executing; Stripe replays those under the same key and forgets validation failures
    (https://docs.stripe.com/api/idempotent_requests).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = False,
        decline_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.saved = saved
        self.decline_code = decline_code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = _DOC_BASE + self.code.replace("_", "-")
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(message, param=param, code=code)


def parameter_missing(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", param, "parameter_missing")


def parameter_unknown(param: str) -> StripeError:
    return invalid(f"Received unknown parameter: {param}", param, "parameter_unknown")


def parameters_exclusive(*params: str, param: str | None = None) -> StripeError:
    names = ", ".join(params)
    return invalid(
        f"You may only specify one of these parameters: {names}.",
        param or params[0],
        "parameters_exclusive",
    )


def invalid_empty(param: str) -> StripeError:
    return invalid(
        f"You passed an empty string for '{param}'. We assume empty values are an attempt to "
        f"unset a parameter; however '{param}' cannot be unset. You should remove '{param}' "
        "from your request or supply a non-empty value.",
        param,
        "parameter_invalid_empty",
    )


def resource_missing(kind: str, object_id: str, param: str, *, status: int = 400) -> StripeError:
    """An unknown id: 404 when it names the path's resource, 400 when the body references it."""
    return StripeError(
        f"No such {kind}: '{object_id}'", status=status, param=param, code="resource_missing"
    )


def not_found(method: str, path: str) -> StripeError:
    return StripeError(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or "
        "we can help at https://support.stripe.com/.",
        status=404,
    )


def api_error(message: str = "An unknown error occurred", *, status: int = 500) -> StripeError:
    return StripeError(message, status=status, type="api_error", saved=True)


def rate_limited() -> StripeError:
    return StripeError(
        "Request rate limit exceeded. You can learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        status=429,
        code="rate_limit",
    )
