"""What every kind of test shares: the Stripe sandbox as a real `python -m sandbox` process, and
waiting for effects that happen in the background."""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LISTENING = "sandbox listening on "
# Webhook retries 50 ms apart at first, so a test that makes a receiver fail twice waits 150 ms.
# The service's tests never depend on the sandbox's retry timing.
FAST_RETRIES = ("--webhook-retry-delay", "0.05", "--webhook-timeout", "2")


@dataclass
class SandboxProcess:
    url: str
    process: asyncio.subprocess.Process


async def start_sandbox(*args: str, env: dict[str, str] | None = None) -> SandboxProcess:
    """Run `python -m sandbox *args` and wait for the line that gives its address (it prints
    nothing else on stdout, so the pipe never fills)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 15)).decode()
    assert line.startswith(LISTENING), f"unexpected first line: {line!r}"
    return SandboxProcess(url=line.removeprefix(LISTENING).strip(), process=process)


async def stop_sandbox(sandbox: SandboxProcess) -> int:
    """Stop it with SIGTERM (unless it already exited); its exit code."""
    if sandbox.process.returncode is None:
        sandbox.process.terminate()
    await asyncio.wait_for(sandbox.process.communicate(), 15)
    assert sandbox.process.returncode is not None
    return sandbox.process.returncode


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
