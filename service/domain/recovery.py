"""Abandoned carts that come back (https://docs.stripe.com/payments/checkout/abandoned-carts).

A session created with `after_expiration.recovery` gets, once it expires, a recovery URL;
opening it makes Stripe create a copy of the session (the same parameters, the order id in its
metadata included) whose `recovered_from` names the expired one. Stripe makes the copy without
this service asking and no webhook announces it: the service hears of it when the sweep lists
Stripe's open sessions, or when an event about it arrives (completed, expired). The copy is
adopted into the ledger as the expired session's order's next session, with that session's
cart (its fingerprint and parameters), when no other session holds the order: the order keeps
at most one payable session (docs/architecture.md, "Invariants").

- An open copy of an order another session holds (the caller gave the order a new cart
  meanwhile) is not adopted: the sweep expires it as it expires any open session that no row
  holds, and the events of an expired copy are ignored.
- A copy the customer paid is the order's payment: an open session holding the order is
  expired first. If the order was paid by another session too, nothing automatic can undo
  that: the event stays unapplied (Unavailable, ORDER_PAID_TWICE) and the runbook says what
  to do.
"""

from __future__ import annotations

from contextlib import suppress

from service.domain.checkout import Checkout
from service.domain.errors import Unavailable, UpstreamRejected
from service.domain.model import ORDER_ID_KEY, LedgerEntry, LedgerState, SessionSnapshot
from service.domain.ports import EventLedger, PaymentGateway

# A paid copy lets go of the order's open session in one round; more if the order keeps
# changing.
_ROUNDS = 3


class RecoveredCarts:
    def __init__(self, ledger: EventLedger, gateway: PaymentGateway, checkout: Checkout) -> None:
        self._ledger = ledger
        self._gateway = gateway
        self._checkout = checkout

    async def adopt(self, session_id: str) -> LedgerEntry | None:
        """The session's row, adopted if it is a recovered copy of a session in the ledger
        whose order no other session holds (or, paid, whose order's open session it
        expired); None if it is not such a copy, or an unpaid one of an order held."""
        session = await self._gateway.retrieve_session(session_id)
        origin = await self._origin(session)
        if origin is None:
            return None
        for _ in range(_ROUNDS):
            claim = await self._ledger.adopt(
                caller=origin.caller,
                order_id=origin.order_id,
                fingerprint=origin.fingerprint,
                stripe_params=origin.stripe_params,
                snapshot=session,
            )
            if claim.won:
                return claim.entry
            if session.status != LedgerState.COMPLETE:
                return None
            await self._let_go(claim.entry, session)
        raise Unavailable(
            f"order {origin.order_id} kept changing while its recovered session "
            f"{session.id} was adopted",
            reason="CLAIM_CONTENDED",
        )

    async def _origin(self, session: SessionSnapshot) -> LedgerEntry | None:
        """The row of the expired session that `session` is a copy of, if it is one."""
        if not session.recovered_from:
            return None
        origin = await self._ledger.by_session_id(session.recovered_from)
        if origin is None or session.metadata.get(ORDER_ID_KEY) != origin.order_id:
            return None
        return origin

    async def _let_go(self, holder: LedgerEntry, paid: SessionSnapshot) -> None:
        """The order was paid through its recovered copy: its open session must not be paid
        too."""
        if holder.state == LedgerState.OPEN and holder.session_id is not None:
            # Refused when no longer open: re-read below, and the next round sees how it ended.
            with suppress(UpstreamRejected):
                await self._checkout.expire_at_stripe(holder.session_id)
            await self._checkout.bring_up_to_date(holder)
            return
        if holder.state == LedgerState.COMPLETE:
            raise Unavailable(
                f"order {holder.order_id} was paid by session {holder.session_id} and by "
                f"{paid.id}, the recovered copy of an expired session: refund one of them",
                reason="ORDER_PAID_TWICE",
                retry_after_seconds=3600.0,
            )
        raise Unavailable(
            f"order {holder.order_id} has a session on its way; {paid.id} is adopted once it "
            "is stored",
            reason="SESSION_NOT_YET_STORED",
            retry_after_seconds=5.0,
        )
