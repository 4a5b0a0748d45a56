"""Test-only fault injection, switched on by CHECKOUT_FAULT and off by default.

`crash-after-stripe-create` kills the process right after Stripe created a session and before
the ledger stores it: the window that the "nothing lost, nothing duplicated" rule is about
(docs/architecture.md). The tests use it to prove that the next attempt, or the sweep, recovers
that same session. `crash-after-stripe-refund` does the same to a refund: the next attempt with
the same request id, or the sweep, finds that same refund and makes no second one.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from service.domain.model import SessionSnapshot, StripeEvent
from service.domain.payment_model import PaymentEvent, PaymentSnapshot, RefundSnapshot
from service.domain.ports import MoneyGateway, PaymentGateway

CRASH_EXIT_CODE = 86


class CrashAfterCreate:
    def __init__(self, inner: PaymentGateway) -> None:
        self._inner = inner

    async def create_session(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> SessionSnapshot:
        await self._inner.create_session(params, idempotency_key=idempotency_key)
        os._exit(CRASH_EXIT_CODE)

    async def retrieve_session(self, session_id: str) -> SessionSnapshot:
        return await self._inner.retrieve_session(session_id)

    async def expire_session(self, session_id: str, *, idempotency_key: str) -> SessionSnapshot:
        return await self._inner.expire_session(session_id, idempotency_key=idempotency_key)

    async def open_sessions(
        self, *, created_since: int, created_before: int | None = None
    ) -> list[SessionSnapshot]:
        return await self._inner.open_sessions(
            created_since=created_since, created_before=created_before
        )

    async def sessions(
        self, *, created_since: int, created_before: int | None = None
    ) -> list[SessionSnapshot]:
        return await self._inner.sessions(
            created_since=created_since, created_before=created_before
        )

    async def session_events(
        self, types: Collection[str], *, created_since: int
    ) -> list[StripeEvent | PaymentEvent]:
        return await self._inner.session_events(types, created_since=created_since)


class CrashAfterRefund:
    def __init__(self, inner: MoneyGateway) -> None:
        self._inner = inner

    async def refund_payment(
        self,
        payment_intent_id: str,
        *,
        amount: int,
        reason: str | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> tuple[RefundSnapshot, PaymentSnapshot]:
        await self._inner.refund_payment(
            payment_intent_id,
            amount=amount,
            reason=reason,
            metadata=metadata,
            idempotency_key=idempotency_key,
        )
        os._exit(CRASH_EXIT_CODE)

    async def retrieve_payment(self, payment_intent_id: str) -> PaymentSnapshot:
        return await self._inner.retrieve_payment(payment_intent_id)

    async def capture_payment(
        self, payment_intent_id: str, *, amount: int, idempotency_key: str
    ) -> PaymentSnapshot:
        return await self._inner.capture_payment(
            payment_intent_id, amount=amount, idempotency_key=idempotency_key
        )

    async def cancel_payment(
        self, payment_intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> PaymentSnapshot:
        return await self._inner.cancel_payment(
            payment_intent_id, reason=reason, idempotency_key=idempotency_key
        )

    async def session_of_payment_intent(self, payment_intent_id: str) -> SessionSnapshot | None:
        return await self._inner.session_of_payment_intent(payment_intent_id)
