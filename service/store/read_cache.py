"""The mechanism under CachedLedger: ledger rows by key, each indexed by the session and the
order it is about, so that a change to either removes it; nothing kept while disabled (the
change feed is disconnected). A read that started before an invalidation must not store what
it read: every invalidation moves a generation counter on, and a read stores its row only if
the counter has not moved since it started. Concurrent misses for one key share a single query.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from service.domain.model import LedgerEntry

# Rows of the sessions callers are asking about now (a page being paid, a watcher, a poll): a
# row kept here holds its Stripe parameters and snapshot, about 10 KB for the README's cart
# (tracemalloc, 400 orders each read by id and by order: 20 KB an order), so 1,000 are about
# 10 MB, and a miss costs one indexed read. The soak (make soak) found 20,000 far too many: at
# its rates a replica's memory climbed 4 MB a minute from the start, towards 200 MB; and at
# 2,000 the cache would still fill for some 20 minutes (about 100 new rows a minute per
# replica, 725 six minutes in), longer than the soak's warm-up, as it would be for an operator.
MAX_ENTRIES = 1_000


class ReadCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._rows: OrderedDict[Hashable, LedgerEntry | None] = OrderedDict()
        self._keys_of_session: dict[str, set[Hashable]] = {}
        self._keys_of_order: dict[tuple[str, str], set[Hashable]] = {}
        self._inflight: dict[Hashable, asyncio.Future[LedgerEntry | None]] = {}
        self._max = max_entries
        self._generation = 0
        self._enabled = False

    def enable(self, enabled: bool) -> None:
        """The change feed is connected (True) or not (False); either way, start empty."""
        self._enabled = enabled
        self.clear()

    def clear(self) -> None:
        self._generation += 1
        self._rows.clear()
        self._keys_of_session.clear()
        self._keys_of_order.clear()

    def forget(self, *, session_id: str | None, order: tuple[str, str] | None) -> None:
        """A row of this session, or of this order (caller, order id), changed."""
        self._generation += 1
        keys = set() if order is None else self._keys_of_order.pop(order, set())
        if session_id is not None:
            keys |= self._keys_of_session.pop(session_id, set())
        for key in keys:
            self._rows.pop(key, None)

    def drop(self, key: Hashable) -> None:
        """What is kept under `key` changed."""
        self._generation += 1
        self._rows.pop(key, None)

    @property
    def generation(self) -> int:
        """Moves on at every invalidation: a row read when it stood at `n` is current only if
        it still stands at `n` (see `offer`)."""
        return self._generation

    def peek(self, key: Hashable) -> LedgerEntry | None:
        """The row cached under `key`, without a query; None if there is none."""
        if not self._enabled:
            return None
        entry = self._rows.get(key)
        if entry is not None:
            self._rows.move_to_end(key)
        return entry

    def offer(self, key: Hashable, entry: LedgerEntry, *, read_at: int) -> None:
        """Keep a row the database gave some other way than `read`, read when the generation
        stood at `read_at`: kept only if nothing changed since."""
        if self._enabled and read_at == self._generation:
            self._keep(key, entry, None, None)

    async def read(
        self,
        key: Hashable,
        load: Callable[[], Awaitable[LedgerEntry | None]],
        *,
        session_id: str | None = None,
        order: tuple[str, str] | None = None,
    ) -> LedgerEntry | None:
        """The cached row under `key`, else `load()`'s, kept if nothing changed meanwhile.
        `session_id` and `order` (caller, order id) name what the answer depends on, so that a
        change to them removes it, even when the answer is "no such row"."""
        if not self._enabled:
            return await load()
        if key in self._rows:
            self._rows.move_to_end(key)
            return self._rows[key]
        pending = self._inflight.get(key)
        if pending is not None:
            # Share the query in flight; if it fails or is cancelled, make our own.
            await asyncio.wait((pending,))
            if not pending.cancelled() and pending.exception() is None:
                return pending.result()
            return await load()
        generation = self._generation
        future: asyncio.Future[LedgerEntry | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            entry = await load()
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._inflight[key]
        future.set_result(entry)
        if self._enabled and generation == self._generation:
            self._keep(key, entry, session_id, order)
        return entry

    def _keep(
        self,
        key: Hashable,
        entry: LedgerEntry | None,
        session_id: str | None,
        order: tuple[str, str] | None,
    ) -> None:
        self._rows[key] = entry
        if entry is not None:
            order = (entry.caller, entry.order_id)
            session_id = entry.session_id or session_id
        if session_id is not None:
            self._keys_of_session.setdefault(session_id, set()).add(key)
        if order is not None:
            self._keys_of_order.setdefault(order, set()).add(key)
        while len(self._rows) > self._max:
            self._rows.popitem(last=False)
        if len(self._keys_of_session) + len(self._keys_of_order) > 4 * self._max:
            # The indexes still name evicted rows; start again rather than let them grow.
            self.clear()
