"""The whole bench, in order, with every part a real process on this machine: Postgres, the
sandbox, the bare baseline server, the service, and a load-generator process per suite of
workloads (bench/loadgen.py)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import procfs, servers
from bench import workloads as w
from bench.feed import Feed, FeedResult, run_feed
from bench.plan import Plan
from bench.postgres import Postgres
from bench.sandbox_api import (
    CHECKOUT_SESSIONS,
    add_latency,
    clear_faults,
    create_webhook_endpoint,
    point_webhook_endpoint,
)
from bench.workloads import (
    Load,
    LoadResult,
    OpenLoad,
    OpenResult,
    Watch,
    WatchResult,
    run_open,
    run_suite,
    run_watch,
)
from sandbox.launcher import SandboxProcess

TASK_NEVER_RETRIEVED = "Task exception was never retrieved"
_BEGAN = time.perf_counter()
_IDLE_SETTLE_S = 1.0
_GC_SETTLE_S = 2.0


@dataclass
class Row:
    label: str
    result: LoadResult


@dataclass
class StderrCounts:
    before_watch: int = 0
    after_watch: int = 0
    after_stop: int = 0
    stop_async_iteration: int = 0
    excerpt: str = ""


@dataclass
class Measurements:
    starts_s: list[float] = field(default_factory=list)
    idle_rss_mb: float = 0.0
    final_rss_mb: float = 0.0
    rows: list[Row] = field(default_factory=list)
    creates: list[OpenResult] = field(default_factory=list)
    """One per window: each rate and path, in each round."""
    watch: WatchResult | None = None
    feed: FeedResult | None = None
    stderr: StderrCounts = field(default_factory=StderrCounts)

    def results(self, kind: str) -> list[LoadResult]:
        return [row.result for row in self.rows if row.result.kind == kind]

    def windows(self, kind: str, rate: float) -> list[OpenResult]:
        """The open-loop windows of one path at one rate, in round order."""
        return [r for r in self.creates if r.kind == kind and r.rate == rate]


def service_env(pg: Postgres, sandbox_url: str, webhook_secret: str) -> dict[str, str]:
    """The caller's environment, with the bench's Postgres and sandbox and free ports; never a
    real Stripe key or a fault."""
    env = {k: v for k, v in os.environ.items() if k not in ("STRIPE_API_KEY", "CHECKOUT_FAULT")}
    env.update(
        DATABASE_URL=pg.dsn,
        STRIPE_API_BASE=sandbox_url,
        STRIPE_WEBHOOK_SECRET=webhook_secret,
        GRPC_ADDR="127.0.0.1:0",
        HTTP_ADDR="127.0.0.1:0",
        # The load generator is one caller doing the work of many: no share of its own.
        CALLER_STRIPE_CALLS_PER_SECOND="10000",
        CALLER_STRIPE_BURST="100000",
        CALLER_MAX_STREAMS="1000000",
    )
    return env


def _say(what: str) -> None:
    """Progress on stderr, so that a long run shows where it is."""
    print(f"bench [{time.perf_counter() - _BEGAN:5.0f} s] {what}", file=sys.stderr, flush=True)


def measure(plan: Plan, pg: Postgres, sandbox: SandboxProcess, log_dir: Path) -> Measurements:
    m = Measurements()
    _say("starting the service (migrations), then timing its starts")
    endpoint_id, secret = create_webhook_endpoint(sandbox.url)
    env = service_env(pg, sandbox.url, secret)
    # The first start applies the migrations; the timed ones find them applied.
    servers.start("service-migrate", "service", env, log_dir).stop()
    service = None
    for i in range(plan.timed_starts):
        if service is not None:
            service.stop()
        service = servers.start(f"service-{i}", "service", env, log_dir)
        m.starts_s.append(service.start_s)
    assert service is not None
    try:
        point_webhook_endpoint(sandbox.url, endpoint_id, service.http)
        time.sleep(_IDLE_SETTLE_S)
        m.idle_rss_mb = procfs.rss_mb(service.pid)
        _say(f"reads and reuses against the bare server, {plan.rounds} rounds")
        _reads(plan, m, pg, service, log_dir)
        _say(f"{plan.watchers} watchers: idle, then a payment")
        m.stderr.before_watch = _count(service.stderr, TASK_NEVER_RETRIEVED)
        m.watch = run_watch(
            Watch(
                target=service.grpc,
                server_pid=service.pid,
                sandbox_url=sandbox.url,
                dsn=pg.dsn,
                watchers=plan.watchers,
                sessions=plan.watch_sessions,
                baseline_s=plan.watch_baseline_s,
                idle_s=plan.watch_idle_s,
                timeout_s=plan.watch_timeout_s,
            )
        )
        time.sleep(_GC_SETTLE_S)
        m.stderr.after_watch = _count(service.stderr, TASK_NEVER_RETRIEVED)
        _say(f"{plan.feed_streams} StreamEvents streams: idle, then payments")
        m.feed = run_feed(
            Feed(
                target=service.grpc,
                metrics_url=f"http://{service.http}/metrics",
                server_pid=service.pid,
                sandbox_url=sandbox.url,
                dsn=pg.dsn,
                streams=plan.feed_streams,
                payments=plan.feed_payments,
                idle_s=plan.watch_idle_s,
                timeout_s=plan.watch_timeout_s,
            )
        )
        # Last: the creates leave thousands of sessions behind, which the service's sweep then
        # works through, and the watchers' idle figures would carry that.
        rates = "/".join(f"{rate:g}" for rate in plan.create_rates)
        _say(f"new-order creates at {rates}/s, service and direct, {plan.create_rounds} round(s)")
        _creates(plan, m, pg, sandbox, service, log_dir)
        m.final_rss_mb = procfs.rss_mb(service.pid)
    finally:
        service.stop()
    _say("done")
    m.stderr.after_stop = _count(service.stderr, TASK_NEVER_RETRIEVED)
    m.stderr.stop_async_iteration = _count(service.stderr, "StopAsyncIteration")
    m.stderr.excerpt = _excerpt(service.stderr, TASK_NEVER_RETRIEVED)
    return m


def _reads(
    plan: Plan, m: Measurements, pg: Postgres, service: servers.ServerProcess, log_dir: Path
) -> None:
    """Health, GetSession and reusing CreateSession, interleaved with the bare baseline at the
    same concurrency."""
    bare = servers.start("bare", "bench.bare_server", dict(os.environ), log_dir)
    try:

        def load(kind: str, server: servers.ServerProcess) -> Load:
            return Load(
                kind=kind,
                target=server.grpc,
                concurrency=plan.concurrency,
                warmup_s=plan.warmup_s,
                duration_s=plan.window_s,
                server_pid=server.pid,
                postgres_pid=pg.pid if server is service else 0,
                fixtures=plan.read_fixtures,
            )

        loads = [load(w.BARE_HEALTH, bare)]
        loads += [load(kind, service) for kind in (w.HEALTH, w.GET_BY_ID, w.GET_BY_ORDER, w.REUSE)]
        results = run_suite(loads, plan.rounds)
    finally:
        bare.stop()
        service.forget_log()
    m.rows += [Row("bare grpc.aio" if r.kind == w.BARE_HEALTH else "service", r) for r in results]


def _creates(
    plan: Plan,
    m: Measurements,
    pg: Postgres,
    sandbox: SandboxProcess,
    service: servers.ServerProcess,
    log_dir: Path,
) -> None:
    """New-order creates at each rate, open loop, through the service and straight at a
    sandbox, interleaved round by round (the two paths' order swapped every other round), with
    the sandboxes holding every session create for `stripe_latency_ms`. The direct client has a
    sandbox of its own, as another Stripe account: in the service's, its sessions would carry
    order ids the ledger does not know, and the service's sweep would expire them (on the
    service's CPU) as the sessions of answers it lost."""
    direct = servers.start_sandbox(log_dir, name="sandbox-direct")
    try:
        for api in (sandbox, direct):
            add_latency(api.url, CHECKOUT_SESSIONS, plan.stripe_latency_ms)
        for n in range(plan.create_rounds):
            for rate in plan.create_rates:
                paths = [(w.CREATE, sandbox), (w.DIRECT_CREATE, direct)]
                for kind, api in paths if n % 2 == 0 else reversed(paths):
                    load = create_load(plan, kind, n, rate, pg, api, service)
                    m.creates.append(run_open(load))
    finally:
        clear_faults(sandbox.url)
        direct.stop()
        service.forget_log()


def create_load(
    plan: Plan,
    kind: str,
    round_: int,
    rate: float,
    pg: Postgres,
    sandbox: SandboxProcess,
    service: servers.ServerProcess,
) -> OpenLoad:
    """One window of `kind` at `rate`; `sandbox` is the one that path calls."""
    direct = kind == w.DIRECT_CREATE
    return OpenLoad(
        kind=kind,
        round=round_,
        target=sandbox.url if direct else service.grpc,
        rate=rate,
        warmup_s=plan.create_warmup_s,
        duration_s=plan.create_window_s,
        server_pid=0 if direct else service.pid,
        sandbox_pid=sandbox.pid,
        postgres_pid=0 if direct else pg.pid,
        direct_client=plan.direct_client,
    )


def _count(path: Path, needle: str) -> int:
    return path.read_text(errors="replace").count(needle)


def _excerpt(path: Path, needle: str, lines: int = 12) -> str:
    text = path.read_text(errors="replace")
    at = text.find(needle)
    return "" if at < 0 else "\n".join(text[at:].splitlines()[:lines])
