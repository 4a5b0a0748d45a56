"""The use cases: create, read, expire and list an order's Checkout Sessions.

The per-order rules (docs/architecture.md, "Creating a session for an order") hold across
replicas because they are enforced by the ledger (a unique index over an order's active rows),
not by this process's memory; and a crash between Stripe's answer and our write converges on the
same session because the Stripe idempotency key is stored with the pending row before the call.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import AsyncGenerator, Callable
from datetime import datetime

from service.domain.commands import CreateSessionCommand
from service.domain.create_plan import CreatePlan, field_for_stripe_param, plan_create
from service.domain.errors import (
    Conflict,
    FailedPrecondition,
    FieldViolation,
    InvalidRequest,
    NotFound,
    PreconditionViolation,
    UpstreamRejected,
)
from service.domain.model import (
    CreateResult,
    LedgerEntry,
    LedgerState,
    Page,
    RequestRecord,
    order_name,
    session_name,
)
from service.domain.ports import (
    Clock,
    PaymentGateway,
    SessionChanges,
    SessionLedger,
)

# A changed cart expires the order's open session and claims again; a concurrent caller can
# win each new claim, so give up after a few rounds instead of spinning.
_MAX_CLAIM_ROUNDS = 4
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


class Checkout:
    def __init__(
        self,
        ledger: SessionLedger,
        gateway: PaymentGateway,
        changes: SessionChanges,
        clock: Clock,
        new_key: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._ledger = ledger
        self._gateway = gateway
        self._changes = changes
        self._clock = clock
        self._new_key = new_key

    async def create_session(self, cmd: CreateSessionCommand) -> CreateResult:
        """Give the order one payable session: reuse the open one built from the same request,
        replace one built from another, refuse if the order is paid or its payment pending."""
        plan = plan_create(cmd, self._clock.now())
        if cmd.request_id:
            replay = await self._replay(cmd.request_id, plan.fingerprint)
            if replay is not None:
                return replay
        result = await self._create(plan)
        if cmd.request_id:
            stored = await self._ledger.save_request(
                RequestRecord(cmd.request_id, plan.fingerprint, result.entry.row_id, result.reused)
            )
            if stored.fingerprint != plan.fingerprint:
                raise _request_id_reused()
        return result

    async def get_session(
        self, *, session_id: str = "", order_id: str = "", refresh: bool = False
    ) -> LedgerEntry:
        entry = await self._find(session_id=session_id, order_id=order_id, materialized=True)
        return await self.bring_up_to_date(entry) if refresh else entry

    async def expire_session(self, *, session_id: str = "", order_id: str = "") -> LedgerEntry:
        """Make the session unpayable. Already expired: nothing to do. Complete: refused,
        because the customer has paid (or a delayed payment is under way)."""
        entry = await self._find(session_id=session_id, order_id=order_id, materialized=False)
        entry = await self._expire(entry)
        if entry.state == LedgerState.COMPLETE:
            raise _already_complete(entry)
        return entry

    async def watch_session(
        self, *, session_id: str = "", order_id: str = "", poll_seconds: float = 5.0
    ) -> AsyncGenerator[LedgerEntry, None]:
        """The session now, then each stored change until it is final. Notifications carry
        changes from every replica; the poll bounds how stale a lost notification can leave a
        watcher."""
        entry = await self._find(session_id=session_id, order_id=order_id, materialized=True)
        assert entry.session_id is not None  # materialized rows have one
        async with self._changes.subscribe(entry.session_id) as changes:
            # Read again once subscribed, so that a change in between is not missed.
            entry = await self._ledger.by_row_id(entry.row_id)
            yield entry
            while not entry.is_final:
                await changes.wait(poll_seconds)
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

    async def list_sessions(self, order_id: str, page_size: int, page_token: str) -> Page:
        if not order_id.strip():
            raise InvalidRequest([FieldViolation("order_id", "required")])
        if page_size == 0:
            page_size = DEFAULT_PAGE_SIZE
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidRequest(
                [FieldViolation("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")]
            )
        after = _decode_page_token(page_token) if page_token else None
        rows = await self._ledger.list_for_order(order_id, limit=page_size + 1, after=after)
        entries = tuple(rows[:page_size])
        token = _encode_page_token(entries[-1]) if len(rows) > page_size else ""
        return Page(entries, token)

    async def _replay(self, request_id: str, fingerprint: str) -> CreateResult | None:
        record = await self._ledger.find_request(request_id)
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise _request_id_reused()
        entry = await self._ledger.by_row_id(record.row_id)
        return CreateResult(entry, record.reused)

    async def _create(self, plan: CreatePlan) -> CreateResult:
        for _ in range(_MAX_CLAIM_ROUNDS):
            owing = await self._ledger.owing_entry(plan.order_id)
            if owing is not None:
                raise _already_complete(owing)
            claim = await self._ledger.claim(
                order_id=plan.order_id,
                fingerprint=plan.fingerprint,
                idempotency_key=self._new_key(),
                stripe_params=plan.stripe_params,
                expires_at=plan.expires_at,
            )
            entry = claim.entry
            if claim.won:
                return CreateResult(await self._materialize(entry), reused=False)
            if entry.fingerprint != plan.fingerprint:
                # A different cart: its session must be unpayable before a new one is handed
                # out, or the order could be paid twice (docs/architecture.md, "Invariants").
                try:
                    expired = await self._expire(entry)
                except InvalidRequest:
                    # That cart's unfinished attempt was refused by Stripe when resumed, and
                    # dropped: there is nothing to expire, and the refusal is not this
                    # caller's to hear.
                    continue
                if expired.state == LedgerState.COMPLETE:
                    raise _already_complete(expired)
                continue
            if entry.state == LedgerState.PENDING:
                # Another call, here or on another replica, or one that crashed, is creating
                # this very session: the stored idempotency key makes Stripe return it.
                entry = await self._materialize(entry)
            elif entry.expires_at <= self._clock.now():
                # Stripe expires sessions on its own; do not hand out one that has lapsed.
                entry = await self.bring_up_to_date(entry)
            if entry.is_active:
                return CreateResult(entry, reused=True)
            if entry.state == LedgerState.COMPLETE:
                raise _already_complete(entry)
        raise Conflict("the order's session kept changing during the call; retry it")

    async def _materialize(self, entry: LedgerEntry) -> LedgerEntry:
        """Make the pending row's Stripe call (again), with the row's own key and parameters."""
        try:
            snapshot = await self._gateway.create_session(
                entry.stripe_params, idempotency_key=entry.idempotency_key
            )
        except UpstreamRejected as exc:
            # A definite refusal created nothing: drop the row so the order is free again.
            await self._ledger.discard_pending(entry.row_id)
            raise _refusal(exc) from exc
        return await self._ledger.record_snapshot(entry.row_id, snapshot)

    async def _expire(self, entry: LedgerEntry) -> LedgerEntry:
        if entry.state == LedgerState.PENDING:
            entry = await self._materialize(entry)
        if entry.state != LedgerState.OPEN or entry.session_id is None:
            return entry
        try:
            # A fixed key per session: a retry after a lost answer replays Stripe's answer
            # instead of failing on a session that is no longer open.
            snapshot = await self._gateway.expire_session(
                entry.session_id, idempotency_key=f"expire-{entry.session_id}"
            )
        except UpstreamRejected:
            # Stripe expires only open sessions; it has moved on (paid, or lapsed). Its current
            # state is the answer: https://docs.stripe.com/api/checkout/sessions/expire
            snapshot = await self._gateway.retrieve_session(entry.session_id)
        return await self._ledger.record_snapshot(entry.row_id, snapshot)

    async def _find(self, *, session_id: str, order_id: str, materialized: bool) -> LedgerEntry:
        if session_id:
            entry = await self._ledger.by_session_id(session_id)
            if entry is None:
                raise NotFound(
                    "checkout.v1.Session", session_name(session_id), f"no session {session_id}"
                )
            return entry
        if not order_id.strip():
            raise InvalidRequest(
                [FieldViolation("session_id", "one of session_id or order_id is required")]
            )
        if materialized:
            rows = await self._ledger.list_for_order(order_id, limit=1, after=None)
            found = rows[0] if rows else None
        else:
            found = await self._ledger.active_or_latest(order_id)
        if found is None:
            raise NotFound(
                "checkout.v1.Order", order_name(order_id), f"order {order_id} has no session"
            )
        return found


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


def _encode_page_token(entry: LedgerEntry) -> str:
    raw = f"{entry.created_at.isoformat()}|{entry.row_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_page_token(token: str) -> tuple[datetime, int]:
    try:
        created, row_id = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        return datetime.fromisoformat(created), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest(
            [FieldViolation("page_token", "not a token this service returned")]
        ) from None
