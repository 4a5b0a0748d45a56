"""`make bench PROFILE=1` (`python -m bench --profile`): where the service's CPU goes on the
create path. New-order creates arrive at `profile_rate` per second, open loop, the sandbox
adding `stripe_latency_ms` to each, while py-spy (https://github.com/benfred/py-spy) samples the
service's threads that are on the CPU. The stacks are written to bench/create-profile.txt (one
`frame;frame;… count` line per stack: speedscope.app and flamegraph.pl read it), and the tables
say which libraries and which functions the samples fall in. py-spy reads the process's memory
with ptrace: root, or `kernel.yama.ptrace_scope` 0."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from bench import servers
from bench import workloads as w
from bench.plan import Plan
from bench.postgres import Postgres
from bench.run import create_load, service_env
from bench.sandbox_api import (
    CHECKOUT_SESSIONS,
    add_latency,
    clear_faults,
    create_webhook_endpoint,
    point_webhook_endpoint,
)
from bench.stacks import summary
from bench.workloads import run_open
from sandbox.launcher import SandboxProcess

STACKS = Path(__file__).with_name("create-profile.txt")
_SAMPLES_PER_SECOND = 250


def profile_creates(plan: Plan, pg: Postgres, sandbox: SandboxProcess, logs: Path) -> None:
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise SystemExit(f"{spy} is missing: `make install` brings py-spy (the dev extra)")
    endpoint_id, secret = create_webhook_endpoint(sandbox.url)
    service = servers.start("service", "service", service_env(pg, sandbox.url, secret), logs)
    try:
        point_webhook_endpoint(sandbox.url, endpoint_id, service.http)
        add_latency(sandbox.url, CHECKOUT_SESSIONS, plan.stripe_latency_ms)
        # The generator starts arriving within its warm-up; py-spy samples from then on.
        load = replace(
            create_load(plan, w.CREATE, 0, plan.profile_rate, pg, sandbox, service),
            warmup_s=2,
            duration_s=plan.profile_s,
        )
        record = [
            *(str(spy), "record", "--pid", str(service.pid), "--format", "raw"),
            *("--rate", str(_SAMPLES_PER_SECOND), "--duration", f"{plan.profile_s + 2:g}"),
            *("--output", str(STACKS)),
        ]
        with subprocess.Popen(record, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as py:
            window = run_open(load)
            _, complaint = py.communicate()
        if py.returncode != 0:
            raise SystemExit(f"py-spy failed ({py.returncode}): {complaint.decode().strip()}")
    finally:
        clear_faults(sandbox.url)
        service.stop()
    print(
        f"\n{window.calls} creates at {plan.profile_rate:g}/s: the service's CPU "
        f"{window.server_cpu_us / 1000:.2f} ms per create (while sampled), p50 "
        f"{window.p50_ms:.0f} ms, {window.errors} errors; stacks in {STACKS}\n"
    )
    print("\n".join(summary(STACKS.read_text())))
