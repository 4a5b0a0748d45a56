"""`python -m chaos [--quick] [--run faults|failover|both] [--seed N] [--dir D]`: the chaos
runs, the faults run (chaos/run.py) and the failover run (chaos/failover.py) one after the
other, each table on stdout, and exit status 1 if any invariant broke (`make chaos`,
`make chaos QUICK=1`, `make chaos RUN=failover`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

# The run starts processes while its gRPC channels are busy: gRPC's fork handlers are of no
# use to a child that execs at once (chaos/pg_keeper.py says why it matters). gRPC reads the
# variable when it is first imported, below.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from chaos.failover import run_failover
from chaos.report import render, render_failover
from chaos.run import run_chaos
from chaos.scenario import FAILOVER_FULL, FAILOVER_QUICK, FULL, QUICK


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (about a minute each)")
    parser.add_argument(
        "--run", choices=("faults", "failover", "both"), default="both", help="which runs"
    )
    parser.add_argument("--seed", type=int, help="repeat a run's choices (default: random)")
    parser.add_argument(
        "--dir", type=Path, help="where logs (and the embedded Postgres) go (default: a temp dir)"
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    run_dir = args.dir or Path(tempfile.mkdtemp(prefix="chaos-"))
    run_dir.mkdir(parents=True, exist_ok=True)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    passed = True
    if args.run in ("faults", "both"):
        began = time.monotonic()
        scenario = QUICK if args.quick else FULL
        outcome = asyncio.run(run_chaos(scenario, run_dir, seed=seed, progress=progress))
        print(render(outcome), flush=True)
        print(f"wall time, start to stop: {time.monotonic() - began:.0f} s\n", flush=True)
        passed = passed and outcome.passed
    if args.run in ("failover", "both"):
        began = time.monotonic()
        failover = FAILOVER_QUICK if args.quick else FAILOVER_FULL
        failed_over = asyncio.run(
            run_failover(failover, run_dir / "failover", seed=seed, progress=progress)
        )
        print(render_failover(failed_over), flush=True)
        print(f"wall time, start to stop: {time.monotonic() - began:.0f} s", flush=True)
        passed = passed and failed_over.passed
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
