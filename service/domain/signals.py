"""The ChangeSignal that the change feed (and the unit tests' in-memory one) hands a watcher:
set when its session may have changed."""

from __future__ import annotations

import asyncio


class Signal:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event.clear()
