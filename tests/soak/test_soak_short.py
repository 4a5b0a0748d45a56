"""The soak of `make soak`, short (issue 22): two replicas under a fixed, mixed load (creates
and changed carts, reads, payments through the sandbox, refunds, expiries, watchers opening and
hanging up) for a minute and a half, sampled every 5 s after a half-minute warm-up; no
replica's memory grows more than 10 %, and no count (file descriptors, asyncio tasks, pool
connections, Postgres connections) grows without bound (soak/verdict.py).

The run is the same code as `make soak` (soak/), at its smallest size; on failure the assertion
message is its table."""

from __future__ import annotations

import random
from pathlib import Path

from soak.plan import SHORT
from soak.report import render
from soak.run import run_soak
from soak.verdict import judged


async def test_a_short_soak_grows_nothing_without_bound(
    tmp_path: Path, postgres_folder: Path
) -> None:
    soak = await run_soak(
        SHORT, tmp_path, seed=random.randrange(1 << 31), postgres_folder=postgres_folder
    )
    table = render(soak, every_seconds=15)

    assert soak.passed, table
    # It carried the load it says, or its verdict means nothing: every kind of operation
    # succeeded, and each replica was sampled throughout.
    done = {
        kind
        for (kind, outcome), n in soak.outcomes.items()
        if n and outcome in ("OK", "paid", "ended", "hung up")
    }
    assert done == {"create", "read", "pay", "refund", "expire", "watch", "feed"}, table
    assert set(soak.samples) == {"replica-1", "replica-2"}, table
    for samples in soak.samples.values():
        assert len(judged(samples, SHORT)) >= 12, table
        assert all(s.postgres_connections >= 2 for s in samples), table
