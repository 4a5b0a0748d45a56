"""What every kind of test shares: the Stripe sandbox as a real `python -m sandbox` process
(started by sandbox/launcher.py, as everything that runs it does), and waiting for effects that
happen in the background."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sandbox.launcher import SandboxProcess, start_sandbox

ROOT = Path(__file__).resolve().parent.parent
# Webhook retries 50 ms apart at first, so a test that makes a receiver fail twice waits 150 ms.
# The service's tests never depend on the sandbox's retry timing.
FAST_RETRIES = ("--webhook-retry-delay", "0.05", "--webhook-timeout", "2")


async def run_sandbox(*args: str, env: dict[str, str] | None = None) -> SandboxProcess:
    """`python -m sandbox *args`, once it says where it listens (off the event loop)."""
    return await asyncio.to_thread(start_sandbox, *args, env=env, timeout_seconds=15)


async def stop_sandbox(sandbox: SandboxProcess) -> int:
    """Stop it with SIGTERM (unless it already exited); its exit code."""
    return await asyncio.to_thread(sandbox.stop, 15)


async def eventually(check: Callable[[], Awaitable[bool]], within_seconds: float = 20) -> None:
    """Wait until `check()` holds: for effects applied in the background (webhook deliveries,
    other processes), which have no moment to wait for."""
    try:
        async with asyncio.timeout(within_seconds) as deadline:
            while True:
                if await check():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        if not deadline.expired():
            raise  # from `check` itself
        raise AssertionError(f"gave up waiting after {within_seconds} s") from None


class Postgres:
    """A pgserver Postgres that a test may stop and start again on the same data."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._server = self._started()
        self.dsn = str(self._server.get_uri())

    def start(self) -> None:
        self._server = self._started()

    def _started(self) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            from pgserver.postgres_server import get_server

            return get_server(self._folder, cleanup_mode="stop")

    def stop(self) -> None:
        self._server.cleanup()
