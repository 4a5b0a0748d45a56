"""The payment ledger beside CachedLedger, which keeps the session rows this process read. A
payment's write changes its session's row (its `payment`, its `updated_at`): made through here,
the cache forgets that row at once, before the write returns, as CachedLedger's own writes do,
so that a read after a capture or a refund never sees the row from before it. Other replicas'
caches forget it when the write's notice reaches them (change_feed.py). Nothing else of a
payment is cached: every read goes to the ledger underneath."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from service.domain.model import LedgerEntry
from service.domain.payment_model import (
    Failure,
    NewOperation,
    Operation,
    OperationClaim,
    OperationState,
    PaymentEvent,
    PaymentRecord,
    PaymentSnapshot,
    PaymentWrite,
    Settlement,
)
from service.domain.ports import PaymentLedger
from service.store.cached_ledger import CachedLedger


class CachedPayments:
    def __init__(self, payments: PaymentLedger, sessions: CachedLedger) -> None:
        self._payments = payments
        self._sessions = sessions

    async def record_payment(
        self,
        session_row: int,
        snapshot: PaymentSnapshot,
        *,
        seen: int | None,
        settlements: Collection[Settlement] = (),
        event: PaymentEvent | None = None,
    ) -> PaymentWrite:
        written = await self._payments.record_payment(
            session_row, snapshot, seen=seen, settlements=settlements, event=event
        )
        if written.entry is not None:
            entry = written.entry
            self._sessions.changed(entry.session_id, entry.caller, entry.order_id)
        return written

    # -- the rest, asked every time --

    async def payment(self, session_row: int) -> PaymentRecord | None:
        return await self._payments.payment(session_row)

    async def session_by_payment_intent(self, payment_intent_id: str) -> LedgerEntry | None:
        return await self._payments.session_by_payment_intent(payment_intent_id)

    async def skip_payment_event(self, event: PaymentEvent) -> bool:
        return await self._payments.skip_payment_event(event)

    async def operation(self, caller: str, request_id: str) -> Operation | None:
        return await self._payments.operation(caller, request_id)

    async def operations(self, session_row: int) -> list[Operation]:
        return await self._payments.operations(session_row)

    async def start_operation(self, new: NewOperation) -> OperationClaim:
        return await self._payments.start_operation(new)

    async def finish_operation(
        self,
        op_id: int,
        *,
        state: OperationState,
        refund_id: str | None = None,
        failure: Failure | None = None,
    ) -> Operation:
        return await self._payments.finish_operation(
            op_id, state=state, refund_id=refund_id, failure=failure
        )

    async def replace_operation_key(self, op_id: int, *, old_key: str, new_key: str) -> Operation:
        return await self._payments.replace_operation_key(op_id, old_key=old_key, new_key=new_key)

    async def operations_to_resume(
        self, *, before: datetime, now: datetime, limit: int
    ) -> list[Operation]:
        return await self._payments.operations_to_resume(before=before, now=now, limit=limit)

    async def schedule_operation(self, op_id: int, *, at: datetime, failed: bool) -> None:
        await self._payments.schedule_operation(op_id, at=at, failed=failed)

    async def payments_to_check(
        self, *, now: datetime, quiet_since: datetime, limit: int
    ) -> list[LedgerEntry]:
        return await self._payments.payments_to_check(now=now, quiet_since=quiet_since, limit=limit)

    async def schedule_payment_check(self, session_row: int, *, at: datetime) -> None:
        await self._payments.schedule_payment_check(session_row, at=at)
