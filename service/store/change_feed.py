"""Session-change notifications from every replica: one LISTEN connection per process, fanned
out to the watchers of each session, to the event feed's reader of each caller (for a notice
that names an event), and told to the read cache (CachedLedger)
(https://www.postgresql.org/docs/current/sql-listen.html,
https://www.postgresql.org/docs/current/sql-notify.html).

LISTEN needs a session-level connection of its own, outside the pool: it does not survive a
pooler in transaction mode (https://www.pgbouncer.org/features.html). If the connection drops,
every watcher is woken (they re-read the ledger), the feed reconnects in the background, and
every watcher is woken once more when it is back: a change made in between is read then, so
watchers never poll. The event feed's readers are woken only when it is back: one catch-up read
each. A heartbeat query finds a connection that died without a word (a half-open TCP
connection), which asyncpg alone would not notice.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import asyncpg
import structlog

from service.domain.errors import Unavailable
from service.domain.signals import Signal
from service.store.db_errors import translate_db_errors
from service.store.repository import NOTIFY_CHANNEL

log = structlog.get_logger(__name__)

# How often the LISTEN connection is asked a trivial query, and how long it may take to answer.
_HEARTBEAT_SECONDS = 15.0

# Starts a named background task: the composition root passes one that restarts it if it
# fails (service/edge/supervisor.py).
Spawn = Callable[[str, Callable[[], Coroutine[Any, Any, None]]], "asyncio.Task[None]"]


def _plain_task(name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(work(), name=name)


class ChangeListener(Protocol):
    """Told what the feed hears, beside the watchers (CachedLedger)."""

    def connected(self) -> None:
        """From now on every change is heard of."""
        ...

    def disconnected(self) -> None:
        """Changes may go unheard until the feed is connected again."""
        ...

    def changed(self, session_id: str | None, caller: str, order_id: str) -> None:
        """A row of this session, of this caller's order, changed."""
        ...

    def changed_unknown(self) -> None:
        """Something changed, and the notice does not say what."""
        ...


class ChangeFeed:
    def __init__(
        self,
        dsn: str,
        *,
        listener: ChangeListener | None = None,
        connect_timeout: float = 5.0,
        spawn: Spawn = _plain_task,
    ) -> None:
        self._dsn = dsn
        self._listener = listener
        self._connect_timeout = connect_timeout
        self._spawn = spawn
        self._watchers: defaultdict[str, set[Signal]] = defaultdict(set)
        self._feeds: defaultdict[str, set[Signal]] = defaultdict(set)
        """The feed readers of each caller (service/domain/feed.py)."""
        self._conn: asyncpg.Connection | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        await self._connect()
        self._heartbeat = self._spawn("change_feed_heartbeat", self._beat)

    async def _beat(self) -> None:
        while not self._closed:
            await asyncio.sleep(_HEARTBEAT_SECONDS)
            conn = self._conn
            if conn is None or conn.is_closed():
                continue
            try:
                async with translate_db_errors(within=_HEARTBEAT_SECONDS):
                    await conn.execute("SELECT 1")
            except Unavailable:
                log.warning("change feed heartbeat failed; reconnecting")
                # Closing runs the termination listener: watchers wake, the feed reconnects.
                conn.terminate()

    async def close(self) -> None:
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with suppress(asyncio.CancelledError):
                await self._reconnecting
        if self._conn is not None:
            await self._conn.close()

    @asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[Signal]:
        signal = Signal()
        self._watchers[session_id].add(signal)
        try:
            yield signal
        finally:
            watchers = self._watchers[session_id]
            watchers.discard(signal)
            if not watchers:
                del self._watchers[session_id]

    @asynccontextmanager
    async def subscribe_feed(self, caller: str) -> AsyncIterator[Signal]:
        signal = Signal()
        self._feeds[caller].add(signal)
        try:
            yield signal
        finally:
            readers = self._feeds[caller]
            readers.discard(signal)
            if not readers:
                del self._feeds[caller]

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        await conn.add_listener(NOTIFY_CHANNEL, self._notified)
        conn.add_termination_listener(self._lost)
        self._conn = conn
        if self._listener is not None:
            self._listener.connected()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            notice = json.loads(str(payload))
            session_id, caller, order_id = notice["session"], notice["caller"], notice["order"]
        except (ValueError, KeyError, TypeError):
            # Not one of ours (or from an older version): anything may have changed.
            log.warning("change notice not understood; read cache cleared")
            if self._listener is not None:
                self._listener.changed_unknown()
            self._wake_all()
            self._wake_feeds()
            return
        if self._listener is not None:
            self._listener.changed(session_id, caller, order_id)
        for signal in self._watchers.get(session_id, ()):
            signal.set()
        # A notice from a replica of a version before the feed names no event: it may have.
        if notice.get("event", True) is not None:
            for signal in self._feeds.get(caller, ()):
                signal.set()

    def _lost(self, _conn: object) -> None:
        self._conn = None
        if self._listener is not None:
            self._listener.disconnected()
        self._wake_all()
        if not self._closed and (self._reconnecting is None or self._reconnecting.done()):
            self._reconnecting = self._spawn("change_feed_reconnect", self._reconnect)

    def _wake_all(self) -> None:
        for watchers in self._watchers.values():
            for signal in watchers:
                signal.set()

    def _wake_feeds(self) -> None:
        for readers in self._feeds.values():
            for signal in readers:
                signal.set()

    async def _reconnect(self) -> None:
        delay = 0.5
        while not self._closed:
            try:
                async with translate_db_errors():
                    await self._connect()
            except Unavailable as exc:
                log.warning("change feed reconnect failed", error=type(exc.__cause__).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            log.info("change feed reconnected")
            # Whatever changed while it was away was not notified: every watcher reads its
            # session once more, and every feed reader its caller's feed, which is all the
            # polling there is.
            self._wake_all()
            self._wake_feeds()
            return
