"""The reconciliation sweep's clock: every interval, on whichever replica holds the lock, one
pass of StripeSync.sweep. Failures are logged and counted, and retried at the next pass."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from service.domain.errors import CheckoutError
from service.domain.ports import LeaderLock
from service.domain.sync import StripeSync, SweepReport
from service.observability.metrics import Metrics

log = structlog.get_logger("sweep")


async def sweep_forever(
    sync: StripeSync, lock: LeaderLock, interval_seconds: float, metrics: Metrics
) -> None:
    interval = timedelta(seconds=interval_seconds)
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            async with lock.try_hold() as held:
                if not held or not await sync.due(interval):
                    metrics.sweep_runs.labels("skipped").inc()
                    continue
                report = await sync.sweep()
        except CheckoutError as exc:
            metrics.sweep_runs.labels("failed").inc()
            log.warning("sweep skipped", reason=exc.reason)
            continue
        except Exception:
            metrics.sweep_runs.labels("failed").inc()
            log.exception("sweep failed")
            continue
        metrics.sweep_runs.labels("ok").inc()
        _report(report, metrics)


def _report(report: SweepReport, metrics: Metrics) -> None:
    repairs = metrics.sweep_repairs
    repairs.labels("updated").inc(report.updated)
    repairs.labels("missing").inc(len(report.missing))
    repairs.labels("caught_up").inc(report.caught_up)
    repairs.labels("orphan").inc(len(report.orphans))
    repairs.labels("payment_updated").inc(report.payments_updated)
    repairs.labels("operation_resumed").inc(report.operations_resumed)
    repairs.labels("failed").inc(len(report.failed))
    metrics.pending_oldest_age.set(report.oldest_pending_seconds)
    metrics.feed_pruned.inc(report.pruned)
    for session in report.orphans:
        log.warning("open session at Stripe without a ledger row expired", session=session)
    for session in report.missing:
        log.warning("session unknown to Stripe; its row is ended as expired", session=session)
    if (
        report.examined
        or report.caught_up
        or report.failed
        or report.pruned
        or report.operations_resumed
    ):
        log.info(
            "sweep",
            examined=report.examined,
            updated=report.updated,
            missing=len(report.missing),
            caught_up=report.caught_up,
            orphans=len(report.orphans),
            pruned=report.pruned,
            payments_updated=report.payments_updated,
            operations_resumed=report.operations_resumed,
            failed=[{"session": s, "reason": e.reason} for s, e in report.failed],
        )
