"""The chaos run of `make chaos`, short (issue 9, item 10): three replicas on one Postgres and
the Stripe sandbox, a load of creates with changed carts, retries and payments, while Stripe
fails in every way the sandbox can make it, Postgres restarts and a replica is SIGKILLed, and
paid orders are refunded in parts on several replicas at once. Then no order has two open
sessions at Stripe, every paid session is complete in the ledger, nothing open at Stripe lacks
its ledger row, no charge's refunds exceed its capture, every refund a caller was told was made
exists at Stripe once and none exists for a request that was refused, and nothing was answered
INTERNAL or UNKNOWN; and each caller's event feed consumers, hanging up at random and going on
elsewhere, saw every paid order paid exactly once, every refund their caller was told of
refunded exactly once, every event, nothing of another caller, and each order's events in the
order they committed.

The run is the same code as `make chaos` (chaos/), at its smallest size; on failure the
assertion message is the run's whole table, with the order and session ids to look up in the
replicas' logs (kept under the test's tmp_path)."""

from __future__ import annotations

import random
from pathlib import Path

from chaos.report import render
from chaos.run import run_chaos
from chaos.scenario import SHORT


async def test_a_short_chaos_run_keeps_every_invariant(
    tmp_path: Path, postgres_folder: Path
) -> None:
    outcome = await run_chaos(
        SHORT, tmp_path, seed=random.randrange(1 << 31), postgres_folder=postgres_folder
    )
    table = render(outcome)
    passed = outcome.passed  # not `outcome.passed` in the assert: its repr is pages long

    assert passed, table
    # The run did what it says, or its zeros mean nothing.
    assert len(outcome.faults.events) == 2, table  # Postgres went away, a replica was killed
    assert sum(outcome.faults.hits.values()) > 0, table
    assert outcome.tally.payments > 0, table
    assert any(refund.code == "OK" for refund in outcome.tally.refunds), table
    assert any(refund.code == "FAILED_PRECONDITION" for refund in outcome.tally.refunds), table
    assert outcome.audit.stripe_states, table
    # The feed's consumers read events, hung up and went on elsewhere.
    assert outcome.feed.events_in_feed > 0 and outcome.feed.paid_orders > 0, table
    assert all(c.seen and c.hung_up for c in outcome.feed.consumers), table
    # Refunds the callers were told of were looked for in their feeds.
    assert outcome.feed.refunds_told > 0, table
