"""The sandbox's single source of time."""

import time


class Clock:
    """Wall-clock seconds plus an offset that tests can move forward.

    Every timestamp the sandbox writes (`created`, `expires_at`, idempotency ages) comes from
    here, so advancing the offset ages every object consistently.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> int:
        return int(self.time())

    def time(self) -> float:
        """Seconds, with their fraction: what webhook retries are scheduled by."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
