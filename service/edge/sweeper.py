"""The reconciliation sweep's clock: every interval, on whichever replica holds the lock, one
pass of StripeSync.sweep. Failures are logged and counted, and retried at the next pass. And
the reconciliation after the database changed (readiness.py runs it), reported the same way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import timedelta

import structlog

from service.domain.errors import CheckoutError, OrderPaidTwice
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


async def reconcile_after_failover(sync: StripeSync, metrics: Metrics) -> None:
    """One reconciliation of the ledger with Stripe after the database changed
    (StripeSync.reconcile_after_failover); raises CheckoutError if it could not finish."""
    began = time.monotonic()
    found = await sync.reconcile_after_failover()
    metrics.sweep_repairs.labels("adopted").inc(len(found.adopted))
    metrics.sweep_repairs.labels("orphan").inc(len(found.expired))
    _adopted_and_expired(found.adopted, found.expired)
    _paid_twice(found.paid_twice, metrics)
    if found.failed:
        # A session not judged may be an order's lost one: not reconciled yet.
        raise found.failed[0][1]
    log.info(
        "ledger reconciled with Stripe after the database changed",
        adopted=len(found.adopted),
        expired=len(found.expired),
        paid_twice=len(found.paid_twice),
        seconds=round(time.monotonic() - began, 2),
    )


def _adopted_and_expired(adopted: Iterable[str], expired: Iterable[str]) -> None:
    for session in adopted:
        log.warning("session at Stripe without a ledger row adopted", session=session)
    for session in expired:
        log.warning("open session at Stripe without a ledger row expired", session=session)


def _paid_twice(found: Iterable[OrderPaidTwice], metrics: Metrics) -> None:
    for exc in found:
        metrics.orders_paid_twice.inc()
        log.error(
            "order paid twice: refund one of its two payments (docs/runbook.md)",
            caller=exc.caller,
            order=exc.order_id,
            sessions=list(exc.sessions),
        )


def _report(report: SweepReport, metrics: Metrics) -> None:
    repairs = metrics.sweep_repairs
    repairs.labels("updated").inc(report.updated)
    repairs.labels("missing").inc(len(report.missing))
    repairs.labels("caught_up").inc(report.caught_up)
    repairs.labels("orphan").inc(len(report.orphans))
    repairs.labels("adopted").inc(len(report.adopted))
    repairs.labels("payment_updated").inc(report.payments_updated)
    repairs.labels("operation_resumed").inc(report.operations_resumed)
    repairs.labels("failed").inc(len(report.failed))
    metrics.pending_oldest_age.set(report.oldest_pending_seconds)
    metrics.feed_pruned.inc(report.pruned)
    _adopted_and_expired(report.adopted, report.orphans)
    _paid_twice(report.paid_twice, metrics)
    for session in report.missing:
        log.warning("session unknown to Stripe; its row is ended as expired", session=session)
    if (
        report.examined
        or report.caught_up
        or report.failed
        or report.pruned
        or report.operations_resumed
        or report.adopted
    ):
        log.info(
            "sweep",
            examined=report.examined,
            updated=report.updated,
            missing=len(report.missing),
            caught_up=report.caught_up,
            orphans=len(report.orphans),
            adopted=len(report.adopted),
            pruned=report.pruned,
            payments_updated=report.payments_updated,
            operations_resumed=report.operations_resumed,
            failed=[{"session": s, "reason": e.reason} for s, e in report.failed],
        )
