"""The process's long-lived background tasks (the callers file's reload, the sweep, readiness,
the change feed's heartbeat and reconnection), kept running.

A task that ends by an unexpected exception would otherwise stop for good, silently: asyncio
only reports it when the task is collected, if ever. Here each one is restarted after a pause
that doubles with each failure in a row (capped), every failure is logged with the exception's
type and where it was raised (never its message, which may quote a secret) and counted in
`checkout_background_task_failures_total`. After `down_after` failures in a row the task is
down: the replica reports itself not ready (readiness.py) until the task has run again for
`stable_after` seconds without failing.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from service.observability.metrics import Metrics

log = structlog.get_logger("supervisor")

Work = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class _Supervised:
    name: str
    failures: int = 0
    """In a row: a run that lasts `stable_after` seconds starts the count again."""


class Supervisor:
    def __init__(
        self,
        metrics: Metrics,
        *,
        first_backoff: float = 0.5,
        max_backoff: float = 30.0,
        down_after: int = 3,
        stable_after: float = 10.0,
    ) -> None:
        self._metrics = metrics
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._down_after = down_after
        self._stable_after = stable_after
        self._down: set[str] = set()
        self.on_change: Callable[[], Awaitable[None]] | None = None
        """Told when a task goes down or comes back (readiness re-checks)."""

    @property
    def all_up(self) -> bool:
        return not self._down

    def start(self, name: str, work: Work) -> asyncio.Task[None]:
        """Run `work()` under supervision until it returns, or the task returned is cancelled.
        `name` is fixed (a metric label)."""
        self._metrics.task_up.labels(name).set(1)
        return asyncio.get_running_loop().create_task(self._supervise(name, work), name=name)

    async def _supervise(self, name: str, work: Work) -> None:
        task = _Supervised(name)
        while True:
            try:
                await self._run(task, work)
                return
            except Exception as exc:
                task.failures += 1
                pause = min(self._first_backoff * 2 ** (task.failures - 1), self._max_backoff)
                self._metrics.task_failures.labels(name).inc()
                log.error(
                    "background task failed; restarting it",
                    task=name,
                    error_type=type(exc).__name__,
                    where=_where(exc),
                    failures_in_a_row=task.failures,
                    restart_in_seconds=pause,
                )
                if task.failures >= self._down_after and name not in self._down:
                    log.error("background task keeps failing: not ready until it runs", task=name)
                    await self._set_down(name, True)
            await asyncio.sleep(pause)

    async def _run(self, task: _Supervised, work: Work) -> None:
        """One run of `work`; once it has lasted `stable_after` seconds, the failures before
        it no longer count, and a task that was down is up again."""
        running = asyncio.ensure_future(work())
        try:
            done, _ = await asyncio.wait((running,), timeout=self._stable_after)
            if not done:
                task.failures = 0
                if task.name in self._down:
                    log.info("background task running again", task=task.name)
                    await self._set_down(task.name, False)
            await running
        finally:
            if not running.done():
                running.cancel()
                with suppress(asyncio.CancelledError):
                    await running

    async def _set_down(self, name: str, down: bool) -> None:
        if down:
            self._down.add(name)
        else:
            self._down.discard(name)
        self._metrics.task_up.labels(name).set(0 if down else 1)
        if self.on_change is not None:
            await self.on_change()


def _where(exc: BaseException) -> str:
    """The function, file and line the exception was raised at: enough to find it, nothing
    from its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    frame = frames[-1]
    return f"{frame.name} ({Path(frame.filename).name}:{frame.lineno})"
