"""Keeping each session's payment converging on Stripe after checkout: the webhooks about
PaymentIntents, charges, refunds and disputes as they come, and the sweep's share of the work
(docs/architecture.md, "Payments after checkout").

As for sessions (sync.py), an event is a hint: the payment is read again from Stripe (the
PaymentIntent, its charge's refunds, its dispute) and stored, with the event's id, in one
transaction, once. A refund made in Stripe's Dashboard is found the same way. The sweep resumes
the operations whose outcome is unknown, with their stored keys, and reads again the payments
not settled that have heard nothing for a while, or whose authorisation has lapsed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from service.domain.adoption import Adoption
from service.domain.checkout import Checkout
from service.domain.errors import CheckoutError, FailedPrecondition, InvalidRequest
from service.domain.model import LedgerEntry
from service.domain.payment_model import PAYMENT_EVENTS, MoneySweep, PaymentEvent, WriteOutcome
from service.domain.payments import Payments
from service.domain.ports import Clock, MoneyGateway, PaymentLedger, SyncLedger
from service.domain.sync import EventOutcome

# An operation the sweep fails to resume waits 30 s, then 1, 2, 4… minutes, at most an hour; a
# payment it fails to read, a minute.
_FIRST_RETRY_SECONDS = 30.0
_MAX_RETRY_SECONDS = 3600.0
_PAYMENT_RETRY = timedelta(minutes=1)


class PaymentSync:
    def __init__(
        self,
        ledger: SyncLedger,
        payments: PaymentLedger,
        money: Payments,
        checkout: Checkout,
        gateway: MoneyGateway,
        clock: Clock,
        *,
        pending_grace: timedelta = timedelta(seconds=10),
        quiet_after: timedelta = timedelta(minutes=10),
        batch_size: int = 100,
    ) -> None:
        self._ledger = ledger
        self._payments = payments
        self._money = money
        self._checkout = checkout
        self._gateway = gateway
        self._clock = clock
        # An operation younger than this is most likely still in its caller's hands.
        self._pending_grace = pending_grace
        self._quiet_after = quiet_after
        self._batch_size = batch_size
        self._adoption = Adoption(ledger, checkout)

    async def handle_event(self, event: PaymentEvent) -> EventOutcome:
        """Apply a verified payment event exactly once (its effect and its id in one
        transaction). Raises Unavailable when it cannot be applied yet, so that Stripe delivers
        it again."""
        if event.type not in PAYMENT_EVENTS:
            return EventOutcome.IGNORED
        if await self._ledger.event_seen(event.id):
            return EventOutcome.DUPLICATE
        entry = await self._session_of(event)
        if entry is None:
            # Not a Checkout payment of ours: another integration's, or a subscription's.
            await self._payments.skip_payment_event(event)
            return EventOutcome.IGNORED
        written = await self._money.refresh(entry, event=event)
        return (
            EventOutcome.APPLIED
            if written.outcome == WriteOutcome.WRITTEN
            else EventOutcome.DUPLICATE
        )

    async def _session_of(self, event: PaymentEvent) -> LedgerEntry | None:
        """The completed session whose payment the event is about. The payment's first events
        can come before the session's own: then the session is found at Stripe by its
        PaymentIntent, and its completion stored first; a session the ledger does not know is
        adopted if it may be (adoption.py)."""
        entry = await self._payments.session_by_payment_intent(event.payment_intent_id)
        if entry is not None:
            return entry
        if event.carries_metadata and event.order_id is None:
            return None  # the service's PaymentIntents carry their order id: not ours
        session = await self._gateway.session_of_payment_intent(event.payment_intent_id)
        if session is None:
            return None
        known = await self._ledger.by_session_id(session.id)
        if known is None:
            return await self._adoption.adopt_or_wait(session)
        return await self._checkout.bring_up_to_date(known)

    async def sweep(self) -> MoneySweep:
        """The sweep's part: operations to resume, then payments to read again."""
        now = self._clock.now()
        failed: list[tuple[str, CheckoutError]] = []
        resumed = await self._resume(now, failed)
        updated = await self._check(now, failed)
        return MoneySweep(resumed=resumed, updated=updated, failed=failed)

    async def _resume(self, now: datetime, failed: list[tuple[str, CheckoutError]]) -> int:
        """Operations left pending (a crash, a lost answer, a caller that gave up), carried
        out with their stored keys: Stripe answers with what it did, or does it now."""
        resumed = 0
        for op in await self._payments.operations_to_resume(
            before=now - self._pending_grace, now=now, limit=self._batch_size
        ):
            try:
                await self._money.carry_out(op)
            except (FailedPrecondition, InvalidRequest):
                resumed += 1  # Stripe refused it: the operation is failed, the payment read
            except CheckoutError as exc:
                failed.append((f"operation {op.op_id}", exc))
                delay = min(_FIRST_RETRY_SECONDS * 2**op.sweep_attempts, _MAX_RETRY_SECONDS)
                await self._payments.schedule_operation(
                    op.op_id, at=now + timedelta(seconds=delay), failed=True
                )
            else:
                resumed += 1
        return resumed

    async def _check(self, now: datetime, failed: list[tuple[str, CheckoutError]]) -> int:
        """Payments that may lag Stripe's, read again. A payment whose read changed it has its
        next look set by the write (an authorisation's lapse); others wait a quiet period."""
        updated = 0
        for entry in await self._payments.payments_to_check(
            now=now, quiet_since=now - self._quiet_after, limit=self._batch_size
        ):
            try:
                written = await self._money.refresh(entry)
            except CheckoutError as exc:
                failed.append((entry.session_id or f"row {entry.row_id}", exc))
                await self._payments.schedule_payment_check(entry.row_id, at=now + _PAYMENT_RETRY)
                continue
            if written.entry is not None and written.entry.updated_at != entry.updated_at:
                updated += 1
            else:
                await self._payments.schedule_payment_check(
                    entry.row_id, at=now + self._quiet_after
                )
        return updated
