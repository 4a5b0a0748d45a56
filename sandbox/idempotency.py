"""Stripe's `Idempotency-Key` semantics for POST requests
(https://docs.stripe.com/api/idempotent_requests).

The first request with a key saves its status and body once the endpoint has begun executing
(successes, 500s, and refusals made while executing); a later request with the same key and the
same endpoint and parameters gets that response again with `Idempotent-Replayed: true`. The same
key with other parameters is an `idempotency_error`; a key whose first request is still running
gets a 409 `idempotency_key_in_use`. Validation failures, 409s and 429s are not saved, so they
are safe to retry. Keys are forgotten after 24 hours.
"""

from typing import Any

from .clock import Clock
from .errors import StripeError
from .store import Store

# Keys are up to 255 characters, and may be pruned once they are 24 hours old:
# https://docs.stripe.com/api/idempotent_requests
MAX_KEY_LENGTH = 255
RETENTION_SECONDS = 24 * 60 * 60


class Idempotency:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._in_flight: set[str] = set()

    def claim(self, key: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """Return the saved record to replay, or mark the key in flight and return None.

        `request` is what must match for a replay: method, path and decoded parameters.
        """
        if len(key) > MAX_KEY_LENGTH:
            raise StripeError(
                f"Idempotency keys can be at most {MAX_KEY_LENGTH} characters long; this one "
                f"has {len(key)}.",
                param="Idempotency-Key",
            )
        self._forget_old()
        if key in self._in_flight:
            raise StripeError(
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still going "
                f"through): {key}. Please try again later.",
                status=409,
                code="idempotency_key_in_use",
            )
        record: dict[str, Any] | None = self._store.idempotency.get(key)
        if record is not None:
            if record["request"] != request:
                raise StripeError(
                    "Keys for idempotent requests can only be used with the same parameters they "
                    f"were first used with. Try using a key other than '{key}' if you meant to "
                    "execute a different request.",
                    type="idempotency_error",
                )
            return record
        self._in_flight.add(key)
        return None

    def save(
        self, key: str, request: dict[str, Any], status: int, body: str, request_id: str
    ) -> None:
        self._store.idempotency[key] = {
            "request": request,
            "status": status,
            "body": body,
            "request_id": request_id,
            "created": self._clock.now(),
        }
        self._store.changed()

    def release(self, key: str) -> None:
        self._in_flight.discard(key)

    def _forget_old(self) -> None:
        """Records are kept in the order they were made, by a clock that only moves forward:
        the old ones are at the front, and the scan stops at the first young one. Scanning them
        all cost every POST time in proportion to the keys kept (`make bench` saw a create
        cost five times more after 8,000 of them)."""
        cutoff = self._clock.now() - RETENTION_SECONDS
        old = []
        for key, record in self._store.idempotency.items():
            if record["created"] >= cutoff:
                break
            old.append(key)
        for key in old:
            del self._store.idempotency[key]
        if old:
            self._store.changed()
