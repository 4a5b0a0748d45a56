"""The failover run of `make chaos`, short (issue 22): replicas whose DATABASE_URL lists a
primary and its asynchronous streaming standby, a small load of orders whose customers pay
every link they were given, the standby's WAL receiver stopped while the primary keeps
committing, the primary SIGKILLed and the standby promoted. Then every replica was ready again
within 10 s of the promotion, nothing was answered INTERNAL or UNKNOWN, every session at Stripe
is in the ledger or expired, no order was paid twice or has two open sessions, and no session a
caller was told of is missing from the ledger unless it is expired.

The run is the same code as `make chaos` (chaos/failover.py), at its smallest size; on failure
the assertion message is the run's whole table."""

from __future__ import annotations

import random
from pathlib import Path

from chaos.failover import run_failover
from chaos.report import render_failover
from chaos.scenario import FAILOVER_SHORT


async def test_a_failover_that_loses_commits_loses_no_money(
    tmp_path: Path, postgres_folder: Path
) -> None:
    outcome = await run_failover(
        FAILOVER_SHORT, tmp_path, seed=random.randrange(1 << 31), postgres_folder=postgres_folder
    )
    table = render_failover(outcome)
    passed = outcome.passed  # not `outcome.passed` in the assert: its repr is pages long

    assert passed, table
    # The failover did what it says, or its zeros mean nothing: commits were lost, callers
    # had been told of sessions the promoted standby lacked, and the replicas noticed.
    assert outcome.lost_commits > 0, table
    assert outcome.told_lost, table
    assert outcome.tally.payments > 0, table
    assert all(
        log.events["ledger reconciled with Stripe after the database changed"]
        for log in outcome.replica_logs.values()
    ), table
