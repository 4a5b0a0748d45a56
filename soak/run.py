"""One soak from start to finish: Postgres, the sandbox and the replicas up; the load and the
sampling together for the plan's length; the samples judged; everything started here stopped
here, whatever fails."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chaos.callers import run_callers, write_callers_file
from chaos.cluster import Cluster, Settings
from chaos.postgres import Postgres
from chaos.sandbox import SandboxControl, SandboxProcess
from soak.load import SoakLoad
from soak.plan import Plan
from soak.sampler import sample
from soak.verdict import Finding, Sample, judge


@dataclass
class Soak:
    plan: Plan
    run_dir: Path
    postgres: str
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    load_average: tuple[tuple[float, float, float], tuple[float, float, float]] = (
        (0.0, 0.0, 0.0),
        (0.0, 0.0, 0.0),
    )
    """The machine's load average when the load began and when it ended."""
    load_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.findings


async def run_soak(
    plan: Plan,
    run_dir: Path,
    *,
    seed: int,
    progress: Callable[[str], None] = lambda _: None,
    postgres_folder: Path | None = None,
) -> Soak:
    began = time.monotonic()

    def say(message: str) -> None:
        progress(f"[{time.monotonic() - began:7.1f} s] {message}")

    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    name = f"soak-{uuid.uuid4().hex[:8]}"
    postgres = await Postgres.open(postgres_folder or run_dir, name)
    say(f"Postgres: {postgres.describe()}")
    try:
        sandbox = await SandboxProcess.start(log_dir)
        try:
            say(f"sandbox at {sandbox.url}")
            soak = Soak(plan, run_dir, postgres.describe())
            await _soak(soak, postgres, sandbox, name, seed, say)
            return soak
        finally:
            await sandbox.stop()
    finally:
        await postgres.close()


async def _soak(
    soak: Soak,
    postgres: Postgres,
    sandbox_process: SandboxProcess,
    name: str,
    seed: int,
    say: Callable[[str], None],
) -> None:
    plan = soak.plan
    sandbox = SandboxControl(sandbox_process.url)
    callers = run_callers()
    settings = Settings(
        postgres.dsn,
        sandbox.url,
        write_callers_file(soak.run_dir / "callers.json", callers),
        # The sweep a little more often than production's 30 s, and quiet rows re-read after
        # 5 minutes: more of its work in half an hour.
        sweep_interval_seconds=10.0,
        sweep_quiet_seconds=300.0,
        connections_named_by_replica=True,
    )
    cluster = Cluster(settings, sandbox, soak.run_dir / "logs")
    try:
        await cluster.start(plan.replicas)
        say(f"{plan.replicas} replicas serving; load for {plan.minutes:g} min")
        load = SoakLoad(plan, cluster, sandbox, callers, f"{name}-", seed)
        start = time.monotonic()
        until = start + plan.minutes * 60
        soak.load_average = (os.getloadavg(), soak.load_average[1])
        async with asyncio.TaskGroup() as group:
            group.create_task(load.run(until))
            group.create_task(_sample_until(soak, cluster, postgres, name, start, until, say))
        soak.load_seconds = time.monotonic() - start
        soak.load_average = (soak.load_average[0], os.getloadavg())
        soak.outcomes = dict(load.outcomes)
        soak.skipped = dict(load.skipped)
        soak.findings = judge(soak.samples, plan)
    finally:
        await cluster.stop()
        await sandbox.close()


async def _sample_until(
    soak: Soak,
    cluster: Cluster,
    postgres: Postgres,
    name: str,
    start: float,
    until: float,
    say: Callable[[str], None],
) -> None:
    """A sample at the start, then every `sample_seconds` to the end (the last at the end)."""
    interval = soak.plan.sample_seconds
    due = start
    async with httpx.AsyncClient(timeout=10) as http:
        while due <= until + 1e-6:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            at = time.monotonic() - start
            taken = await sample(http, cluster.http_ports(), postgres.admin_dsn, name, at)
            for replica, one in taken.items():
                soak.samples.setdefault(replica, []).append(one)
            summary = ", ".join(
                f"{r} {s.rss_bytes / 2**20:.0f} MB {s.open_fds:g} fds {s.asyncio_tasks:g} tasks"
                for r, s in taken.items()
            )
            say(f"sample at {at:.0f} s: {summary}")
            due += interval
