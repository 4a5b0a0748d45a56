"""The reconciliation sweep's clock: every interval, on whichever replica holds the lock, one
pass of StripeSync.reconcile. Failures are logged and retried at the next pass."""

from __future__ import annotations

import asyncio

import structlog

from service.domain.errors import CheckoutError
from service.domain.ports import LeaderLock
from service.domain.sync import StripeSync

log = structlog.get_logger("sweep")


async def sweep_forever(sync: StripeSync, lock: LeaderLock, interval_seconds: float) -> None:
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            async with lock.try_hold() as held:
                if not held:
                    continue
                report = await sync.sweep()
        except CheckoutError as exc:
            log.warning("sweep skipped", reason=exc.reason)
            continue
        except Exception:
            log.exception("sweep failed")
            continue
        for session in report.orphans:
            log.warning("open session at Stripe without a ledger row expired", session=session)
        for session in report.missing:
            log.warning("session unknown to Stripe; its row is ended as expired", session=session)
        if report.examined:
            log.info(
                "sweep",
                examined=report.examined,
                missing=len(report.missing),
                caught_up=report.caught_up,
                orphans=len(report.orphans),
                failed=[{"session": s, "reason": e.reason} for s, e in report.failed],
            )
