"""The event feed (ListEvents, StreamEvents): every payment outcome of a caller's orders, in the
order the changes committed, resumable from any cursor (docs/architecture.md, "The event feed").

Each read of the ledger returns only events below the horizon (ports.FeedLedger.read_feed), so a
consumer resuming after any cursor sees every event committed after it, including one whose
transaction began earlier but committed later. A cursor the feed cannot go on from without a gap
is refused with CursorOutOfRange, never restarted silently: one older than the oldest event
retained (`CURSOR_EXPIRED`), and one naming an event the database does not have and did not
prune (`CURSOR_UNKNOWN`), which is what a consumer holds after a failover lost the last commits:
the transaction ids after it are handed out again, and going on from it would pass over the
events written since. Such a consumer is told the latest event the database has from before: at
or before its cursor, and written at or before it too, since an event written after the failover
may have a smaller transaction id than the cursor (and then comes after every event from before,
all of whose ids are smaller still).

The live streams of one caller on one replica share one reader (`_Reader`): the change feed wakes
it when an event of that caller commits, it reads once, and hands what it read to every stream.
Idle streams cost no query; a read that finds events held back by an older transaction still
running is repeated after a short delay, and only then.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from service.domain.errors import CursorOutOfRange, FieldViolation, InvalidRequest, Unavailable
from service.domain.feed_cursors import CURSOR_CHARACTERS, CURSOR_MAX, FeedCursors
from service.domain.model import FEED_START, Caller, FeedEvent, FeedPosition, FeedRead
from service.domain.outcomes import EventType
from service.domain.ports import ChangeSignal, FeedChanges, FeedLedger
from service.domain.validation import CALLER_MAX, Problems

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Events read at a time: by a stream catching up on its own, and by a caller's reader.
READ_SIZE = 500
# A read that finds events held back by an older transaction reads again after this, doubling
# while they are: transactions are short here, and one that is not must not be polled hard.
_HELD_BACK_FIRST_SECONDS = 0.05
_HELD_BACK_MAX_SECONDS = 1.0
# Events a stream may fall behind its reader (a consumer not reading) before it is ended, to
# resume from its cursor: what a stalled consumer costs the replica is bounded.
_BEHIND_MAX = 10_000


@dataclass(frozen=True, slots=True)
class FeedQuery:
    """Which events: after a cursor (empty: from the oldest retained), of some types (empty:
    all), and for operators, whose."""

    after: str = ""
    types: tuple[str | None, ...] = ()
    """EventType values; None stands for a type this contract does not know (refused)."""
    caller: str = ""


@dataclass(frozen=True, slots=True)
class FeedItem:
    """An event as a caller receives it: with the cursor that resumes right after it."""

    event: FeedEvent
    cursor: str
    live: bool = False
    """Handed out by a caller's reader as it was read, not read back from a cursor."""


@dataclass(frozen=True, slots=True)
class FeedPage:
    items: tuple[FeedItem, ...]
    next_cursor: str
    """Where the next page starts; empty only while the caller's feed is."""


class EventFeed:
    def __init__(self, ledger: FeedLedger, changes: FeedChanges, cursors: FeedCursors) -> None:
        self._source = _Source(ledger, cursors)
        self._changes = changes
        self._readers: dict[str, _Reader] = {}

    async def list_events(self, caller: Caller, query: FeedQuery, page_size: int) -> FeedPage:
        """A page of events after the cursor. A page with fewer than `page_size` holds every
        event committed so far, and its `next_cursor` is then past the ones skipped by type."""
        whose, types, after = self._open(caller, query, page_size=page_size)
        size = page_size or DEFAULT_PAGE_SIZE
        read = await self._source.read(whose, after, limit=size, types=types)
        items = tuple(self._source.item(whose, event) for event in read.events)
        position = read.events[-1].position if read.events else after
        if len(read.events) < size and read.tail is not None:
            position = max(position, read.tail)
        if position == after:
            next_cursor = query.after
        elif items and position == items[-1].event.position:
            next_cursor = items[-1].cursor
        else:
            next_cursor = self._source.seal(whose, position)
        return FeedPage(items, next_cursor)

    async def stream_events(
        self, caller: Caller, query: FeedQuery
    ) -> AsyncGenerator[tuple[FeedItem, ...], None]:
        """Every event after the cursor, then each as it commits, without end, a batch at a
        time (what one read found): the events of a burst travel together to the edge. The
        stream joins its caller's reader first, then catches up on its own: whatever the reader
        reads after the join is kept for it, and its own reads reach at least as far as the
        reader had, so nothing falls between the two (events it has both ways are sent once)."""
        whose, types, after = self._open(caller, query)
        reader = self._readers.get(whose)
        if reader is None:
            reader = _Reader(whose, self._source, self._changes, self._forget)
            self._readers[whose] = reader
        with reader.joined() as inbox:
            await inbox.ready()
            position = after
            while True:
                read = await self._source.read(whose, position, limit=READ_SIZE, types=types)
                if read.events:
                    yield tuple(self._source.item(whose, event) for event in read.events)
                    position = read.events[-1].position
                if len(read.events) < READ_SIZE:
                    position = max(position, read.tail or position)
                    break
            while True:
                batch = []
                for item in await inbox.take():
                    if item.event.position > position and (not types or item.event.type in types):
                        position = item.event.position
                        batch.append(item)
                if batch:
                    yield tuple(batch)

    def _open(
        self, caller: Caller, query: FeedQuery, *, page_size: int = 0
    ) -> tuple[str, frozenset[str], FeedPosition]:
        """Whose feed, which types and after which position: checked before any query."""
        problems = Problems()
        problems.identifier("caller", query.caller, CALLER_MAX)
        if query.after and (
            len(query.after) > CURSOR_MAX or not CURSOR_CHARACTERS.fullmatch(query.after)
        ):
            problems.add("after", "not a cursor this service issued")
        if len(query.types) > len(EVENT_TYPES):
            problems.add("types", f"at most {len(EVENT_TYPES)} types")
        for index, kind in enumerate(query.types):
            if kind not in EVENT_TYPES:
                problems.add(f"types[{index}]", "not an event type this service knows")
        if not 0 <= page_size <= MAX_PAGE_SIZE:
            problems.add("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
        problems.raise_if_any()
        whose = _whose_feed(caller, query.caller)
        after = FEED_START if not query.after else self._source.open(query.after, whose)
        return whose, frozenset(kind for kind in query.types if kind), after

    def _forget(self, reader: _Reader) -> None:
        if self._readers.get(reader.whose) is reader:
            del self._readers[reader.whose]


class _Source:
    """The ledger's feed, read on from a position only if nothing before it is lost, and its
    events sealed with their cursors."""

    def __init__(self, ledger: FeedLedger, cursors: FeedCursors) -> None:
        self._ledger = ledger
        self._cursors = cursors

    async def first(self, whose: str) -> FeedRead:
        """Where the caller's feed stands: its tail, and whether events are held back."""
        return await self._ledger.read_feed(whose, FEED_START, limit=0)

    async def read(
        self, whose: str, after: FeedPosition, *, limit: int, types: Collection[str] = ()
    ) -> FeedRead:
        read = await self._ledger.read_feed(whose, after, limit=limit, types=types)
        if after == FEED_START:
            return read
        pruned = read.pruned_through
        if pruned is not None and after < pruned:
            raise CursorOutOfRange(
                "the cursor is older than the oldest event retained (EVENT_RETENTION_DAYS): "
                "events after it were deleted; `oldest_cursor` resumes from the oldest one",
                reason="CURSOR_EXPIRED",
                resume=("oldest_cursor", self.seal(whose, pruned)),
            )
        if not read.after_found and (pruned is None or after > pruned):
            latest = await self._ledger.feed_position_at_or_before(whose, after) or pruned
            raise CursorOutOfRange(
                "the cursor names an event the database does not have (lost in a failover, or "
                "not yet in a restored backup): `latest_cursor` is the latest event it has at "
                "or before it, and resumes with the events written since",
                reason="CURSOR_UNKNOWN",
                resume=("latest_cursor", "" if latest is None else self.seal(whose, latest)),
            )
        return read

    def open(self, cursor: str, whose: str) -> FeedPosition:
        return self._cursors.read(cursor, whose)

    def seal(self, whose: str, position: FeedPosition) -> str:
        return self._cursors.issue(whose, position)

    def item(self, whose: str, event: FeedEvent, *, live: bool = False) -> FeedItem:
        return FeedItem(event, self.seal(whose, event.position), live)


EVENT_TYPES = frozenset(EventType)


def _whose_feed(caller: Caller, named: str) -> str:
    """The caller whose events are read: operators name it, callers read their own."""
    if caller.sees_every_order:
        if not named:
            raise InvalidRequest(
                [FieldViolation("caller", "operators name the caller whose events they read")]
            )
        return named
    if named and named != caller.name:
        raise InvalidRequest(
            [FieldViolation("caller", "only operators may read another caller's events")]
        )
    return caller.name


class _Reader:
    """One caller's live feed on this replica, shared by the caller's open streams (its
    operators' included): it reads when woken, and hands each event, sealed once, to every
    stream's inbox. It starts with its first stream and stops with its last; if it fails, each
    of its streams ends with the failure, and the next stream starts a new reader."""

    def __init__(
        self,
        whose: str,
        source: _Source,
        changes: FeedChanges,
        done: Callable[[_Reader], None],
    ) -> None:
        self.whose = whose
        self._source = source
        self._changes = changes
        self._done = done
        self._inboxes: set[_Inbox] = set()
        self._ready = False
        self._task: asyncio.Task[None] | None = None
        self._head = FEED_START
        """Every event of the caller's at or before this was read before the reader started,
        or by it."""

    @contextmanager
    def joined(self) -> Iterator[_Inbox]:
        inbox = _Inbox()
        if self._ready:
            inbox.open()
        self._inboxes.add(inbox)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="feed reader")
        try:
            yield inbox
        finally:
            self._inboxes.discard(inbox)
            if not self._inboxes:
                self._task.cancel()
                self._done(self)

    async def _run(self) -> None:
        try:
            async with self._changes.subscribe_feed(self.whose) as signal:
                # Subscribed first, so that no notice falls between this read and the next.
                first = await self._source.first(self.whose)
                self._head = first.tail or FEED_START
                self._ready = True
                for inbox in self._inboxes:
                    inbox.open()
                delay = _HELD_BACK_FIRST_SECONDS if first.held_back else None
                while True:
                    await _woken(signal, delay)
                    delay = await self._read_on(delay)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the streams end with it; a bug is reported there
            self._fail(exc)

    async def _read_on(self, delay: float | None) -> float | None:
        """Read what the caller's feed has after the head and hand it out; how long to wait
        before reading again without being woken (None: until woken)."""
        try:
            read = await self._source.read(self.whose, self._head, limit=READ_SIZE)
        except CursorOutOfRange as exc:
            raise Unavailable(
                "this replica's place in the feed is no longer in the database (a failover?): "
                "resume from your last cursor",
                reason="FEED_RESYNC",
                retry_after_seconds=0.0,
            ) from exc
        if read.events:
            items = [self._source.item(self.whose, e, live=True) for e in read.events]
            self._head = read.events[-1].position
            for inbox in list(self._inboxes):
                inbox.put(items)
        if len(read.events) == READ_SIZE:
            return 0.0
        if read.held_back:
            return min(2 * delay, _HELD_BACK_MAX_SECONDS) if delay else _HELD_BACK_FIRST_SECONDS
        return None

    def _fail(self, exc: Exception) -> None:
        self._done(self)
        for inbox in self._inboxes:
            inbox.fail(exc)


async def _woken(signal: ChangeSignal, delay: float | None) -> None:
    """Until the signal is set, or `delay` seconds have passed (None: no bound)."""
    if delay is None:
        await signal.wait()
    elif delay > 0:
        with suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await signal.wait()


class _Inbox:
    """What a caller's reader read for one stream, until the stream takes it."""

    def __init__(self) -> None:
        self._items: list[FeedItem] = []
        self._failure: Exception | None = None
        self._opened = False
        self._changed = asyncio.Event()

    def open(self) -> None:
        """The reader knows its head: the stream may catch up to it."""
        self._opened = True
        self._changed.set()

    def put(self, items: list[FeedItem]) -> None:
        if len(self._items) + len(items) > _BEHIND_MAX:
            self.fail(
                Unavailable(
                    f"the stream fell more than {_BEHIND_MAX} events behind: resume from the "
                    "last cursor received",
                    reason="STREAM_BEHIND",
                    retry_after_seconds=0.0,
                )
            )
            return
        self._items.extend(items)
        self._changed.set()

    def fail(self, exc: Exception) -> None:
        if self._failure is None:
            self._failure = exc
            self._changed.set()

    async def ready(self) -> None:
        while not self._opened:
            self._raise_failure()
            await self._changed.wait()
            self._changed.clear()
        self._raise_failure()

    async def take(self) -> list[FeedItem]:
        while not self._items:
            self._raise_failure()
            await self._changed.wait()
            self._changed.clear()
        items, self._items = self._items, []
        return items

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure
