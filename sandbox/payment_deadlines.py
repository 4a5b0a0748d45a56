"""What the sandbox clock does to money after checkout once a deadline passes: authorisations
lapse (`payment_intents.lapse_due`) and bank debits' refunds succeed (`refunds.settle_due`).
Run every second by the server's sweeper and at once by `/_sandbox/clock/advance`."""

from .payment_intents import lapse_due
from .refunds import settle_due
from .store import Store


def run_due(store: Store, now: int) -> None:
    lapse_due(store, now)
    settle_due(store, now)
