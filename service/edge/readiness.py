"""Whether this replica should be sent traffic, told to gRPC health checks and to HTTP /readyz.

Not while it shuts down, not while Postgres cannot be reached (every RPC but health needs it,
so a load balancer is better off sending calls to a replica that has it), not while the ledger
may lack sessions Stripe has, after the database changed (a failover that lost the last
commits: service/store/failover.py) and until a reconciliation with Stripe has run, which the
probe's loop runs itself; and not while one of its background tasks is down after failing again
and again (supervisor.py): a replica whose callers file is no longer re-read, say, must not
keep serving as if it were. Liveness is another matter (a dead database is no reason to restart
this process), so /livez does not ask.
https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from grpc_health.v1 import health

from service.domain.errors import CheckoutError
from service.edge.server import set_serving

log = structlog.get_logger("readiness")


class Readiness:
    def __init__(
        self,
        health_servicer: health.aio.HealthServicer,
        stopping: asyncio.Event,
        database_answers: Callable[[], Awaitable[bool]],
        *,
        tasks_up: Callable[[], bool],
        ledger_behind: Callable[[], bool],
        reconcile: Callable[[], Awaitable[None]],
        interval_seconds: float,
    ) -> None:
        """`ledger_behind()`: whether the ledger may lack sessions Stripe has; `reconcile()`
        reconciles it with Stripe, and clears that."""
        self._health = health_servicer
        self._stopping = stopping
        self._database_answers = database_answers
        self._tasks_up = tasks_up
        self._ledger_behind = ledger_behind
        self._reconcile = reconcile
        self._interval = interval_seconds
        self._database_up = True
        self._serving = True

    @property
    def ready(self) -> bool:
        return (
            self._database_up
            and not self._ledger_behind()
            and self._tasks_up()
            and not self._stopping.is_set()
        )

    async def watch(self) -> None:
        """Probe the database every interval (a new server is noticed by the probe's
        connection, if nothing else made one), reconcile the ledger with Stripe when it may be
        behind, and tell health checks when the answer changes."""
        while not self._stopping.is_set():
            up = await self._database_answers()
            if up != self._database_up:
                self._database_up = up
                if up:
                    log.info("database reachable again")
                else:
                    log.warning("database unreachable: not serving until it is back")
            await self.recheck()
            if up and self._ledger_behind():
                try:
                    await self._reconcile()
                except CheckoutError as exc:
                    # Stripe, or the database again: tried once more next interval.
                    log.warning("reconciliation with Stripe failed", reason=exc.reason)
                await self.recheck()
            await asyncio.sleep(self._interval)

    async def recheck(self) -> None:
        """Tell health checks if readiness changed (the database, or a background task)."""
        ready = self.ready
        if ready != self._serving and not self._stopping.is_set():
            self._serving = ready
            await set_serving(self._health, ready)
            log.info("readiness changed", ready=ready)
