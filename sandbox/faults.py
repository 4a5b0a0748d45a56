"""Injected failures for tests: errors, latency and dropped connections on chosen routes.

A fault applies to the next `count` requests whose path starts with `path_prefix` (and whose
method is `method`, if given). It may hold the request for `delay_ms` first; the key of an
idempotent request is claimed during that wait, so a concurrent retry sees a 409. Then it answers
`status` (429 as Stripe's rate limit, 5xx as `api_error`) or drops the connection without an
answer. With `phase: before` (the default) the request never reaches the API, as when Stripe's
edge fails, and nothing is saved under its idempotency key; with `phase: after` the request is
executed and its result saved, and only the answer is lost, as when a response dies on the way
back; with `phase: during` the request fails once execution has begun: nothing is done, and
the failure (a 500) is saved under its idempotency key and replayed to every retry with that
key, as Stripe does for 24 hours (https://docs.stripe.com/api/idempotent_requests).
"""

import itertools
from dataclasses import asdict, dataclass
from typing import Any

from .errors import StripeError, api_error, rate_limited
from .params import Boolean, Choice, Integer, Text, hash_of

# The sandbox's own bounds, not Stripe's: a fault answers with an HTTP error status, 4xx or 5xx
# (https://www.rfc-editor.org/rfc/rfc9110#section-15), and holds a request for at most two
# minutes, longer than any client here waits.
FAULT_STATUS_MIN, FAULT_STATUS_MAX = 400, 599
FAULT_DELAY_MS_MAX = 120_000

FAULT_PARAMS = hash_of(
    "path_prefix",
    path_prefix=Text(),
    method=Choice(("GET", "POST", "DELETE")),
    status=Integer(FAULT_STATUS_MIN, FAULT_STATUS_MAX),
    count=Integer(1),
    delay_ms=Integer(0, FAULT_DELAY_MS_MAX),
    drop=Boolean(),
    phase=Choice(("before", "during", "after")),
)


@dataclass
class Fault:
    id: str
    path_prefix: str
    method: str | None
    status: int | None
    count: int
    delay_ms: int
    drop: bool
    phase: str

    def error(self) -> StripeError:
        assert self.status is not None
        if self.status == 429:
            return rate_limited()
        if self.status >= 500:
            return api_error(status=self.status)
        return StripeError(f"Injected fault: HTTP {self.status}", status=self.status)


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, params: dict[str, Any]) -> Fault:
        """Add a fault from parameters already checked against `FAULT_PARAMS`."""
        if "status" not in params and not params.get("drop") and not params.get("delay_ms"):
            raise StripeError("A fault needs a `status`, `drop: true` or a `delay_ms`.")
        if not params["path_prefix"].startswith("/"):
            raise StripeError("`path_prefix` must start with `/`.", param="path_prefix")
        fault = Fault(
            id=f"fault_{next(self._ids)}",
            path_prefix=params["path_prefix"],
            method=params.get("method"),
            status=params.get("status"),
            count=params.get("count", 1),
            delay_ms=params.get("delay_ms", 0),
            drop=params.get("drop", False),
            phase=params.get("phase", "before"),
        )
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counting the request against it."""
        for fault in self._faults:
            if path.startswith(fault.path_prefix) and fault.method in (None, method):
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()

    def describe(self) -> list[dict[str, Any]]:
        return [asdict(fault) for fault in self._faults]
