"""When a webhook delivery is tried again, when it is given up, and when its endpoint is disabled.

Stripe's live mode "attempts to deliver a given event to your webhook endpoint for up to 3 days
with an exponential back off", and disables an endpoint that has not answered 2xx for days
(https://docs.stripe.com/webhooks#retries, https://docs.stripe.com/webhooks#disable-behavior).
Stripe publishes no exact intervals; the sandbox's schedule, by default:

- the second attempt 1 minute after the first, then each wait twice the one before (2, 4, 8
  minutes…), 13 attempts in all, the last 2 days 20 hours after the first;
- a further attempt due more than 3 days after the first is not made: the delivery is given up;
- an endpoint whose every attempt has failed since a delivery's first attempt, until that
  delivery is given up after 3 days, is disabled (its `status` becomes `disabled`, as Stripe
  shows it), and nothing more is sent to it until it is enabled again.

All of it runs on the sandbox clock, so `POST /_sandbox/clock/advance` walks a test through the
three days at once. `--webhook-retry-delay` compresses the whole schedule: its first wait, and
the three days with it in proportion (0.05 s makes them 216 s); `--webhook-attempts` caps the
attempts (a delivery given up by that cap disables nothing).
"""

from dataclasses import dataclass
from typing import Any

LIVE_FIRST_DELAY = 60.0
LIVE_WINDOW = 3 * 24 * 60 * 60.0


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: float = LIVE_FIRST_DELAY
    """Seconds before the second attempt; each later wait doubles."""
    attempts: int | None = None
    """At most this many attempts per delivery; None: as many as the window allows."""
    timeout: float = 10.0
    """Seconds one attempt may take, connecting included."""

    @property
    def window(self) -> float:
        """How long a delivery is tried for: three days, scaled with `first_delay`."""
        return LIVE_WINDOW * self.first_delay / LIVE_FIRST_DELAY

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(self.first_delay * 2 ** (attempt - 1))

    def capped(self, attempt: int) -> bool:
        return self.attempts is not None and attempt >= self.attempts

    def next_attempt(self, attempt: int, first_at: float, failed_at: float) -> float | None:
        """When the attempt after failed attempt `attempt` is due; None once given up."""
        if self.capped(attempt):
            return None
        due = failed_at + self.delay(attempt)
        return None if due - first_at > self.window else due


@dataclass
class Delivery:
    """One event owed to one endpoint, as the outbox keeps it (`events.py` writes a bare count
    of attempts, 0, when the event happens)."""

    attempts: int = 0
    first_at: float | None = None
    next_at: float | None = None

    @classmethod
    def load(cls, value: Any) -> "Delivery":
        if isinstance(value, int):
            return cls(attempts=value)
        return cls(value["attempts"], value.get("first_at"), value.get("next_at"))

    def dump(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "first_at": self.first_at, "next_at": self.next_at}
