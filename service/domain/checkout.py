"""The use cases: create, read, expire and list an order's Checkout Sessions.

The per-order rules (docs/architecture.md, "Creating a session for an order") hold across
replicas because they are enforced by the ledger (a unique index over an order's active rows),
not by this process's memory; and a crash between Stripe's answer and our write converges on the
same session because the Stripe idempotency key is stored with the pending row before the call.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from service.domain import rate_limits
from service.domain.commands import CreateSessionCommand
from service.domain.create_plan import CheckedCreate, field_for_stripe_param, plan_create
from service.domain.errors import (
    AttemptDropped,
    Conflict,
    FailedPrecondition,
    FieldViolation,
    IdempotencyKeySpent,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    PreconditionViolation,
    Unavailable,
    UpstreamRejected,
)
from service.domain.model import (
    ORDER_ID_KEY,
    Attempt,
    Caller,
    Claim,
    CreateResult,
    LedgerEntry,
    LedgerState,
    Page,
    RequestRecord,
    SessionSnapshot,
    order_name,
    session_name,
)
from service.domain.page_tokens import Cursor, PageTokens
from service.domain.ports import Clock, OrderLedger, PaymentGateway, SessionChanges
from service.domain.seen_requests import SeenRequests
from service.domain.validation import validate_lookup

# A changed cart expires the order's open session and claims again; a concurrent caller can
# win each new claim, so give up after a few rounds instead of spinning.
_MAX_CLAIM_ROUNDS = 4
# Stripe's clock and ours may differ a little; look that much further back for an attempt's
# session.
_CLOCK_SKEW_SECONDS = 300
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


class Checkout:
    def __init__(
        self,
        ledger: OrderLedger,
        gateway: PaymentGateway,
        changes: SessionChanges,
        clock: Clock,
        page_tokens: PageTokens,
        new_key: Callable[[], str] = lambda: str(uuid.uuid4()),
        *,
        default_tax_behavior: str | None = None,
    ) -> None:
        """`default_tax_behavior`: the tax behaviour for inline prices that give none
        (DEFAULT_TAX_BEHAVIOR; create_plan.py); None leaves it to the account's Tax settings."""
        self._ledger = ledger
        self._gateway = gateway
        self._changes = changes
        self._clock = clock
        self._page_tokens = page_tokens
        self._new_key = new_key
        self._seen = SeenRequests()
        self._default_tax_behavior = default_tax_behavior

    async def create_session(
        self, caller: Caller, request: bytes, read: Callable[[bytes], CreateSessionCommand]
    ) -> CreateResult:
        """Give the order one payable session: reuse the open one built from the same request,
        replace one built from another, refuse if the order is paid or its payment pending.
        `request` is the request's bytes, equal for equal requests, and `read` finds its
        command in them: a request seen lately is neither read nor checked again."""
        _require_write(caller)
        now = self._clock.now()
        cmd, checked = self._seen.check(request, read, now)
        if cmd.request_id:
            replay = await self._replay(caller.name, cmd.request_id, checked.fingerprint)
            if replay is not None:
                return replay
        attempt = partial(self._attempt, caller.name, cmd, checked, now)
        claim = await self._ledger.claim(
            caller=caller.name,
            order_id=checked.order_id,
            fingerprint=checked.fingerprint,
            attempt=attempt,
        )
        if _reusable(claim, checked, now):
            # The same request again, the most common create of all: the order's open
            # session, made from the same payload, which a cached ledger knows without a
            # query. Answered here rather than in _settle, so that it awaits nothing more.
            result = CreateResult(claim.entry, reused=True)
        else:
            result = await self._settle(caller.name, checked, attempt, claim)
        if cmd.request_id:
            await self._remember(caller.name, cmd.request_id, checked.fingerprint, result)
        return result

    async def get_session(
        self, caller: Caller, lookup: Lookup, *, refresh: bool = False
    ) -> LedgerEntry:
        entry = await self._find(caller, lookup, materialized=True)
        return await self.bring_up_to_date(entry) if refresh else entry

    async def expire_session(self, caller: Caller, lookup: Lookup) -> LedgerEntry:
        """Make the session unpayable. Already expired: nothing to do. Complete: refused,
        because the customer has paid (or a delayed payment is under way)."""
        _require_write(caller)
        entry = await self._find(caller, lookup, materialized=False)
        entry = await self._expire(entry)
        if entry.state == LedgerState.COMPLETE:
            raise _already_complete(entry)
        return entry

    async def watch_session(
        self, caller: Caller, lookup: Lookup
    ) -> AsyncGenerator[LedgerEntry, None]:
        """The session now, then each stored change until it is final. Notifications carry
        changes from every replica, and the change feed wakes every watcher when it loses its
        connection and again when it has it back, so nothing polls."""
        entry = await self._find(caller, lookup, materialized=True)
        assert entry.session_id is not None  # materialized rows have one
        async with self._changes.subscribe(entry.session_id) as changes:
            # Read again once subscribed, so that a change in between is not missed.
            entry = await self._ledger.by_row_id(entry.row_id)
            yield entry
            while not entry.is_final:
                await changes.wait()
                latest = await self._ledger.by_row_id(entry.row_id)
                if latest.updated_at != entry.updated_at:
                    entry = latest
                    yield entry

    async def bring_up_to_date(self, entry: LedgerEntry) -> LedgerEntry:
        """Resume a pending row's Stripe call, or re-read a session from Stripe."""
        if entry.state == LedgerState.PENDING:
            return await self._materialize(entry)
        if entry.session_id is None:
            return entry
        snapshot = await self._gateway.retrieve_session(entry.session_id)
        return await self._ledger.record_snapshot(entry.row_id, snapshot)

    async def list_sessions(
        self, caller: Caller, lookup: Lookup, page_size: int, page_token: str
    ) -> Page:
        validate_lookup(order_id=lookup.order_id, caller=lookup.caller, page_token=page_token)
        if not lookup.order_id.strip():
            raise InvalidRequest([FieldViolation("order_id", "required")])
        whose = _whose_orders(caller, lookup)
        if page_size == 0:
            page_size = DEFAULT_PAGE_SIZE
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidRequest(
                [FieldViolation("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")]
            )
        after = None
        if page_token:
            cursor = self._page_tokens.read(page_token, whose, lookup.order_id)
            after = (cursor.created_at, cursor.row_id)
        rows = await self._ledger.list_for_order(
            whose, lookup.order_id, limit=page_size + 1, after=after
        )
        entries = tuple(rows[:page_size])
        token = ""
        if len(rows) > page_size:
            last = entries[-1]
            token = self._page_tokens.issue(
                whose, lookup.order_id, Cursor(last.created_at, last.row_id)
            )
        return Page(entries, token)

    async def _replay(self, caller: str, request_id: str, fingerprint: str) -> CreateResult | None:
        record = await self._ledger.find_request(caller, request_id)
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise _request_id_reused()
        entry = await self._ledger.by_row_id(record.row_id)
        return CreateResult(entry, record.reused)

    async def _remember(
        self, caller: str, request_id: str, fingerprint: str, result: CreateResult
    ) -> None:
        stored = await self._ledger.save_request(
            RequestRecord(caller, request_id, fingerprint, result.entry.row_id, result.reused)
        )
        if stored.fingerprint != fingerprint:
            raise _request_id_reused()

    def _attempt(
        self, caller: str, cmd: CreateSessionCommand, checked: CheckedCreate, now: datetime
    ) -> Attempt:
        """A new pending row for the request, asked for only when a claim is about to insert
        one: a fresh idempotency key, and the exact Stripe parameters (building them is a good
        part of a create's work, which a repeated create does not need). A request to Stripe
        follows the insert: the caller's token is taken first, so that a caller out of them is
        refused before anything is written (rate_limits.py)."""
        rate_limits.reserve()
        plan = plan_create(
            cmd,
            now,
            caller=caller,
            default_tax_behavior=self._default_tax_behavior,
            checked=checked,
        )
        return Attempt(self._new_key(), plan.stripe_params, plan.expires_at)

    async def _settle(
        self, caller: str, checked: CheckedCreate, attempt: Callable[[], Attempt], claim: Claim
    ) -> CreateResult:
        """Take the claim to a session, claiming again while the order's holder lets go of it
        (a different cart's session expired, the same cart's lapsed)."""
        for again in range(_MAX_CLAIM_ROUNDS):
            if again:
                claim = await self._ledger.claim(
                    caller=caller,
                    order_id=checked.order_id,
                    fingerprint=checked.fingerprint,
                    attempt=attempt,
                )
            result = await self._outcome(claim, checked)
            if result is not None:
                return result
        raise Conflict("the order's session kept changing during the call; retry it")

    async def _outcome(self, claim: Claim, checked: CheckedCreate) -> CreateResult | None:
        """The session a claim leads to; None when the order is to be claimed again."""
        entry = claim.entry
        if claim.won:
            return CreateResult(await self._materialize(entry), reused=False)
        if entry.state == LedgerState.COMPLETE:
            # Paid, or a delayed payment under way: the order is not to be charged again.
            raise _already_complete(entry)
        if entry.fingerprint != checked.fingerprint:
            await self._supersede(entry)
            return None
        if entry.state == LedgerState.PENDING:
            # Another call, here or on another replica, or one that crashed, is creating this
            # very session: the stored idempotency key makes Stripe return it.
            entry = await self._materialize(entry)
        elif entry.expires_at <= self._clock.now():
            # Stripe expires sessions on its own; do not hand out one that has lapsed.
            entry = await self.bring_up_to_date(entry)
        if entry.is_active:
            return CreateResult(entry, reused=True)
        if entry.state == LedgerState.COMPLETE:
            raise _already_complete(entry)
        return None

    async def _supersede(self, entry: LedgerEntry) -> None:
        """A different cart holds the order: its session must be unpayable before a new one
        is handed out, or the order could be paid twice (docs/architecture.md, "Invariants")."""
        try:
            expired = await self._expire(entry)
        except InvalidRequest:
            # That cart's unfinished attempt was refused by Stripe when resumed, and dropped:
            # there is nothing to expire, and the refusal is not this caller's to hear.
            return
        if expired.state == LedgerState.COMPLETE:
            raise _already_complete(expired)

    async def _materialize(self, entry: LedgerEntry, *, fresh_key: bool = False) -> LedgerEntry:
        """Make the pending row's Stripe call (again), with the row's own key and parameters."""
        try:
            snapshot = await self._gateway.create_session(
                entry.stripe_params, idempotency_key=entry.idempotency_key
            )
        except UpstreamRejected as exc:
            # A definite refusal created nothing: drop the row so the order is free again.
            await self._ledger.discard_pending(entry.row_id)
            raise _refusal(exc) from exc
        except IdempotencyKeySpent:
            if fresh_key:
                raise
            return await self._materialize(await self._renew_key(entry), fresh_key=True)
        try:
            return await self._ledger.record_snapshot(entry.row_id, snapshot)
        except AttemptDropped:
            # The row went while Stripe made the session (another process got a refusal
            # for it and dropped it): no row owns the session, so nobody may pay it.
            await self.expire_at_stripe(snapshot.id)
            raise

    async def _renew_key(self, entry: LedgerEntry) -> LedgerEntry:
        """Stripe replays a saved failure for the row's key for a day. Before the attempt goes
        on with a new key, make sure the failed one left no session behind: an open session
        for the order that the ledger does not know may be its, and a second one must not
        be made beside it (the sweep expires such orphans; the attempt resumes after)."""
        since = int(entry.created_at.timestamp()) - _CLOCK_SKEW_SECONDS
        for session in await self._gateway.open_sessions(created_since=since):
            if session.metadata.get(ORDER_ID_KEY) != entry.order_id:
                continue
            if await self._ledger.by_session_id(session.id) is None:
                raise Unavailable(
                    f"Stripe holds an open session for order {entry.order_id} that the ledger "
                    "does not know; retry once the sweep has settled it",
                    reason="STRIPE_ATTEMPT_UNSETTLED",
                    retry_after_seconds=5.0,
                )
        return await self._ledger.replace_key(
            entry.row_id, old_key=entry.idempotency_key, new_key=self._new_key()
        )

    async def expire_at_stripe(self, session_id: str) -> SessionSnapshot:
        """Expire a session at Stripe. A fixed key per session, so that a retry after a lost
        answer replays Stripe's answer instead of failing on a session no longer open; if
        Stripe saved a failure under that key, once more with a key of its own (expiring is
        safe to repeat: a second expiry is refused, never doubled)."""
        try:
            return await self._gateway.expire_session(
                session_id, idempotency_key=f"expire-{session_id}"
            )
        except IdempotencyKeySpent:
            return await self._gateway.expire_session(
                session_id, idempotency_key=f"expire-{session_id}-{self._new_key()}"
            )

    async def _expire(self, entry: LedgerEntry) -> LedgerEntry:
        if entry.state == LedgerState.PENDING:
            entry = await self._materialize(entry)
        if entry.state != LedgerState.OPEN or entry.session_id is None:
            return entry
        try:
            snapshot = await self.expire_at_stripe(entry.session_id)
        except UpstreamRejected:
            # Stripe expires only open sessions; it has moved on (paid, or lapsed). Its current
            # state is the answer: https://docs.stripe.com/api/checkout/sessions/expire
            snapshot = await self._gateway.retrieve_session(entry.session_id)
        return await self._ledger.record_snapshot(entry.row_id, snapshot)

    async def _find(self, caller: Caller, lookup: Lookup, *, materialized: bool) -> LedgerEntry:
        validate_lookup(
            session_id=lookup.session_id, order_id=lookup.order_id, caller=lookup.caller
        )
        if lookup.session_id:
            entry = await self._ledger.by_session_id(lookup.session_id)
            # Another caller's session looks exactly like one that does not exist, so that
            # session ids cannot be probed.
            if entry is None or not (caller.sees_every_order or entry.caller == caller.name):
                raise NotFound(
                    "checkout.v1.Session",
                    session_name(lookup.session_id),
                    f"no session {lookup.session_id}",
                )
            return entry
        order_id = lookup.order_id
        if not order_id.strip():
            raise InvalidRequest(
                [FieldViolation("session_id", "one of session_id or order_id is required")]
            )
        whose = _whose_orders(caller, lookup)
        if materialized:
            rows = await self._ledger.list_for_order(whose, order_id, limit=1, after=None)
            found = rows[0] if rows else None
        else:
            found = await self._ledger.active_or_latest(whose, order_id)
        if found is None:
            raise NotFound(
                "checkout.v1.Order", order_name(order_id), f"order {order_id} has no session"
            )
        return found


@dataclass(frozen=True, slots=True)
class Lookup:
    """Which session a read or an expiry is about: by id, or an order's latest. `caller` is
    for operators, who name the caller whose order they mean; callers leave it empty."""

    session_id: str = ""
    order_id: str = ""
    caller: str = ""


def _reusable(claim: Claim, checked: CheckedCreate, now: datetime) -> bool:
    entry = claim.entry
    return (
        not claim.won
        and entry.state == LedgerState.OPEN
        and entry.fingerprint == checked.fingerprint
        and entry.expires_at > now
    )


def _whose_orders(caller: Caller, lookup: Lookup) -> str:
    """The caller among whose orders `lookup.order_id` is looked up."""
    if caller.sees_every_order:
        if not lookup.caller:
            raise InvalidRequest(
                [FieldViolation("caller", "operators name the caller that owns order_id")]
            )
        return lookup.caller
    if lookup.caller and lookup.caller != caller.name:
        raise InvalidRequest(
            [FieldViolation("caller", "only operators may name another caller's orders")]
        )
    return caller.name


def _require_write(caller: Caller) -> None:
    if not caller.may_write:
        raise PermissionDenied(f"the {caller.role} role may only read sessions")


def _refusal(exc: UpstreamRejected) -> InvalidRequest:
    field = field_for_stripe_param(exc.param, exc.code) or "request"
    return InvalidRequest(
        [FieldViolation(field, f"Stripe refused it: {exc.message}")],
        reason="STRIPE_REFUSED",
        upstream_request_id=exc.request_id,
    )


def _request_id_reused() -> InvalidRequest:
    return InvalidRequest(
        [FieldViolation("request_id", "already used for a request with a different payload")],
        reason="REQUEST_ID_REUSED",
    )


def _already_complete(entry: LedgerEntry) -> FailedPrecondition:
    payment = entry.snapshot.payment_status if entry.snapshot else "unknown"
    return FailedPrecondition(
        PreconditionViolation(
            type="SESSION_COMPLETE",
            subject=session_name(entry.session_id or ""),
            description=(
                f"order {entry.order_id} has a completed checkout session "
                f"(payment_status {payment}); it cannot be paid again or expired"
            ),
        ),
        reason="ORDER_ALREADY_PAID",
    )
