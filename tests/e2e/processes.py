"""Real `python -m service` processes, as an operator runs them (one per replica)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from tests.e2e.helpers import Stub


@dataclass
class ServiceProcess:
    process: asyncio.subprocess.Process
    lines: list[dict[str, Any]] = field(default_factory=list)
    grpc_port: int = 0
    http_port: int = 0
    channel: grpc.aio.Channel | None = None

    @property
    def stub(self) -> Stub:
        assert self.channel is not None
        return api_grpc.CheckoutServiceStub(self.channel)

    async def next_event(self, event: str, within_seconds: float = 60) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(within_seconds):
            while True:
                raw = await self.process.stdout.readline()
                assert raw, f"the service exited before logging {event!r}: {self.lines}"
                line = _parse(raw)
                self.lines.append(line)
                if line.get("event") == event:
                    return dict(line)

    async def drain_output(self) -> None:
        """Keep reading its log so that the pipe never fills and blocks it."""
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            self.lines.append(_parse(raw))


def _parse(raw: bytes) -> dict[str, Any]:
    """A JSON log line; anything else the process printed (a library's warning on stderr) is
    kept whole, so that a test that reads every line also reads those."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"raw": raw.decode(errors="replace")}
    return parsed if isinstance(parsed, dict) else {"raw": raw.decode(errors="replace")}


@asynccontextmanager
async def service_process(
    environ: dict[str, str], *, log_level: str = "info"
) -> AsyncIterator[ServiceProcess]:
    """`log_level` is info or lower: the start waits for the `serving` line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        env={**environ, "LOG_LEVEL": log_level, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    running = ServiceProcess(process)
    try:
        serving = await running.next_event("serving")
        running.grpc_port = int(serving["grpc"].rsplit(":", 1)[1])
        running.http_port = int(serving["http"].rsplit(":", 1)[1])
        running.channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}")
        yield running
    finally:
        if running.channel is not None:
            await running.channel.close()
        if process.returncode is None:
            process.kill()
        await process.wait()


@asynccontextmanager
async def replicas(environ: dict[str, str], count: int) -> AsyncIterator[list[ServiceProcess]]:
    """`count` processes sharing one Postgres and one Stripe, each draining its own log."""
    async with AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(stack.enter_async_context(service_process(environ)) for _ in range(count))
        )
        drains = [asyncio.create_task(p.drain_output()) for p in started]
        try:
            yield list(started)
        finally:
            for task in drains:
                task.cancel()
