"""`make bench` (`python -m bench [--quick]`): the service side by side with a bare grpc.aio
server and with stripe-python calling the sandbox directly, in one run on this machine, so
that the comparisons hold on a noisy machine even when the absolute figures do not. Prints the
tables and writes bench/results.json; nothing here asserts a timing. `--profile` instead
samples the service with py-spy while it creates sessions (bench/profile.py)."""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench import procfs
from bench.plan import FULL, QUICK
from bench.postgres import postgres
from bench.profile import profile_creates
from bench.report import write
from bench.run import measure
from bench.servers import start_sandbox


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs: under two minutes")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only a py-spy profile of the service creating sessions (bench/create-profile.txt)",
    )
    parser.add_argument(
        "--direct-client",
        choices=("aiohttp", "httpx"),
        default="aiohttp",
        help="stripe-python's HTTP client for the direct baseline (see bench/calls.py)",
    )
    args = parser.parse_args()
    plan = replace(QUICK if args.quick else FULL, direct_client=args.direct_client)
    began, stolen = time.perf_counter(), procfs.steal_seconds()
    # Postgres first: pgserver forks, and nothing else has started a thread yet.
    with (
        tempfile.TemporaryDirectory(prefix="checkout-bench-") as tmp,
        postgres(Path(tmp)) as pg,
    ):
        sandbox = start_sandbox(Path(tmp))
        try:
            if args.profile:
                profile_creates(plan, pg, sandbox, Path(tmp))
                return
            measurements = measure(plan, pg, sandbox, Path(tmp))
        finally:
            sandbox.stop()
    wall_s = time.perf_counter() - began
    write(plan, measurements, wall_s, pg.describe, stolen_s=procfs.steal_seconds() - stolen)


if __name__ == "__main__":
    main()
