"""The ChangeSignal that the change feed (and the unit tests' in-memory one) hands a watcher:
set when its session may have changed, awaited with a bound."""

from __future__ import annotations

import asyncio
from contextlib import suppress


class Signal:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, at_most_seconds: float | None) -> None:
        with suppress(TimeoutError):
            async with asyncio.timeout(at_most_seconds):
                await self._event.wait()
        self._event.clear()
