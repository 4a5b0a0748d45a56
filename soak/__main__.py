"""`python -m soak [--minutes N] [--seed N] [--dir D]` (`make soak`, SOAK_MINUTES): the soak,
its tables on stdout, and exit status 1 if a figure grew without bound."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
from pathlib import Path

# As for the chaos run: the soak starts processes while its gRPC channels are busy.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from soak.plan import full
from soak.report import render
from soak.run import run_soak


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0, help="of load (default 30)")
    parser.add_argument("--seed", type=int, help="repeat a run's choices (default: random)")
    parser.add_argument("--dir", type=Path, help="where logs and Postgres go (default: temp)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    run_dir = args.dir or Path(tempfile.mkdtemp(prefix="soak-"))
    run_dir.mkdir(parents=True, exist_ok=True)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    soak = asyncio.run(run_soak(full(args.minutes), run_dir, seed=seed, progress=progress))
    print(render(soak), flush=True)
    raise SystemExit(0 if soak.passed else 1)


if __name__ == "__main__":
    main()
