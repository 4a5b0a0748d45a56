"""Which Postgres server the pool reaches, and whether that changed: after a failover to a
standby (or a restart), the database may lack the last commits the old server acknowledged, when
the standby replicated asynchronously (https://www.postgresql.org/docs/current/warm-standby.html,
"asynchronous replication"). The sessions those commits recorded still exist at Stripe; until
the ledger has adopted them again, the order they belong to must not be given a new session,
or it could be paid twice.

Every new pooled connection reads its server's start time (`pg_postmaster_start_time()`): a
standby promoted, or a server restarted, started at another moment than the one before it.
The first connection to a new server marks the ledger behind Stripe, before it is handed out,
so that no claim runs on that server before the mark is seen (PostgresLedger.claim); the mark
stays until a reconciliation with Stripe has run since (StripeSync.reconcile_after_failover,
from service/edge/readiness.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
import structlog

from service.domain.errors import Unavailable

log = structlog.get_logger("database")


class ServerWatch:
    def __init__(self, on_change: Callable[[bool], None] | None = None) -> None:
        """`on_change(behind)` hears of each change of `behind` (the metrics' gauge)."""
        self._server: datetime | None = None
        self._generation = 0
        self._reconciled = 0
        self._on_change = on_change

    @property
    def behind(self) -> bool:
        """Whether the server changed since the ledger was last reconciled with Stripe."""
        return self._reconciled != self._generation

    async def connected(self, conn: asyncpg.Connection) -> None:
        """A new pooled connection, before its first use (the pool's `init`)."""
        started: datetime = await conn.fetchval("SELECT pg_postmaster_start_time()")
        if self._server is None:
            self._server = started  # the first server this process reaches
        elif started != self._server:
            log.warning(
                "database server changed: a failover or a restart, which may have lost the last "
                "commits; new sessions wait until the ledger is reconciled with Stripe",
                server_started=started.isoformat(),
                previous_server_started=self._server.isoformat(),
            )
            self._server = started
            self._generation += 1
            self._changed()

    async def reconcile(self, run: Callable[[], Awaitable[object]]) -> None:
        """Reconcile the ledger with Stripe (`run`), and clear the mark if no other change of
        server came meanwhile."""
        generation = self._generation
        await run()
        self._reconciled_at(generation)

    def _reconciled_at(self, generation: int) -> None:
        if generation > self._reconciled:
            was_behind = self.behind
            self._reconciled = generation
            if was_behind != self.behind:
                self._changed()

    def refuse_while_behind(self) -> None:
        """Raise Unavailable while the ledger may lack sessions Stripe has."""
        if self.behind:
            raise Unavailable(
                "the database changed (a failover or a restart) and the ledger is being "
                "reconciled with Stripe; retry shortly",
                reason="LEDGER_RECONCILING",
                retry_after_seconds=2.0,
            )

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.behind)
