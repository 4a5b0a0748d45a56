"""Real `python -m service` processes, one per replica, each logging to a file of the run's
own, and what the run learns from their logs: the bound ports, and every RPC's final code as
the replica answered it (which a caller whose deadline passed never sees)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parent.parent
# The start: connect to Postgres, migrate, bind; well under this on a busy laptop.
_START_SECONDS = 60.0


async def stop_process(process: asyncio.subprocess.Process, *, grace_seconds: float) -> None:
    """SIGTERM, then SIGKILL after the grace."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace_seconds)
        except TimeoutError:
            with suppress(ProcessLookupError):
                process.kill()
    await process.wait()


@dataclass
class ReplicaLog:
    """What the run keeps of one replica's log lines, across its restarts."""

    codes: Counter[str] = field(default_factory=Counter)
    """RPC method's last part and code, as logged: `CreateSession INTERNAL`."""
    bugs: list[dict[str, Any]] = field(default_factory=list)
    """Lines that say a bug happened: unexpected errors, webhook 500s, failed sweeps."""
    orphans_expired: list[str] = field(default_factory=list)
    """Sessions the sweep found open at Stripe without a ledger row, and expired."""
    adopted: list[str] = field(default_factory=list)
    """Sessions found at Stripe without a ledger row, and adopted (by the sweep, or by the
    reconciliation after the database changed)."""
    events: Counter[str] = field(default_factory=Counter)
    """Lines by event, for the few a run reports on (the database changes, reconciliations)."""
    webhooks_deferred: Counter[str] = field(default_factory=Counter)
    raw_lines: int = 0

    def read(self, line: dict[str, Any]) -> None:
        event = line.get("event")
        self.events[str(event)] += 1
        if event == "rpc":
            method = str(line.get("method", "")).rsplit("/", 1)[-1]
            self.codes[f"{method} {line.get('code')}"] += 1
        elif event in _BUG_EVENTS or line.get("level") in ("error", "critical"):
            self.bugs.append(line)
        elif event == "open session at Stripe without a ledger row expired":
            self.orphans_expired.append(str(line.get("session")))
        elif event == "session at Stripe without a ledger row adopted":
            self.adopted.append(str(line.get("session")))
        elif event == "webhook deferred":
            self.webhooks_deferred[str(line.get("reason"))] += 1
        elif "raw" in line:
            self.raw_lines += 1


_BUG_EVENTS = frozenset({"unexpected error", "webhook failed: a bug", "sweep failed"})


@dataclass
class Replica:
    """One incarnation of a replica's process."""

    name: str
    process: asyncio.subprocess.Process
    grpc_port: int
    http_port: int
    log: ReplicaLog
    reader: asyncio.Task[None]

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @classmethod
    async def start(
        cls, name: str, environ: dict[str, str], log_file: Path, log: ReplicaLog
    ) -> Replica:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service",
            cwd=REPO,
            env=environ,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Log lines of a failing call carry a stack trace: more than asyncio's 64 KiB
            # default line limit is possible.
            limit=1 << 22,
        )
        serving: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        out = log_file.open("a", encoding="utf-8")
        reader = asyncio.create_task(_read_log(process, out, log, serving))
        try:
            line = await asyncio.wait_for(serving, _START_SECONDS)
        except BaseException:
            if process.returncode is None:
                with suppress(ProcessLookupError):  # it exited on its own meanwhile
                    process.kill()
            await process.wait()
            await reader
            raise
        grpc_port = int(str(line["grpc"]).rsplit(":", 1)[1])
        http_port = int(str(line["http"]).rsplit(":", 1)[1])
        return cls(name, process, grpc_port, http_port, log, reader)

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye; in-flight calls die with the process."""
        if self.process.returncode is None:
            with suppress(ProcessLookupError):
                self.process.kill()

    async def wait(self) -> int:
        code = await self.process.wait()
        await self.reader
        return code

    async def stop(self) -> int:
        await stop_process(self.process, grace_seconds=20)
        await self.reader
        assert self.process.returncode is not None
        return self.process.returncode


async def _read_log(
    process: asyncio.subprocess.Process,
    out: TextIO,
    log: ReplicaLog,
    serving: asyncio.Future[dict[str, Any]],
) -> None:
    """Copy every line to the replica's file and read it, until the process exits; the pipe
    never fills, so the replica never blocks on its own logging."""
    assert process.stdout is not None
    with out:
        while raw := await process.stdout.readline():
            text = raw.decode(errors="replace")
            out.write(text)
            line = _parse(text)
            log.read(line)
            if line.get("event") == "serving" and not serving.done():
                serving.set_result(line)
    if not serving.done():
        serving.set_exception(
            RuntimeError(f"the replica exited with {await process.wait()} before serving")
        )


def _parse(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"raw": text}
    return parsed if isinstance(parsed, dict) else {"raw": text}
