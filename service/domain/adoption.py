"""Sessions Stripe has and the ledger does not, made for one of this service's orders, adopted
into the ledger: the ledger can be rebuilt from Stripe (docs/architecture.md, "Invariants").

How Stripe comes to have such a session:
- A recovered cart (https://docs.stripe.com/payments/checkout/abandoned-carts): opening an
  expired session's recovery URL makes Stripe copy the session, its metadata included, and
  the copy's `recovered_from` names the expired one. No webhook announces the copy.
- A lost write: the database failed over to a standby that had not received the last commits
  (asynchronous replication: https://www.postgresql.org/docs/current/warm-standby.html), and
  the row of a session its caller was told of is gone; or a creator's answer was lost for good.

Whose a session is: a recovered copy's is its origin's, the expired session's row, whose cart
(fingerprint and parameters) it takes, so that the same request again reuses it; any other's
is in its metadata, which names the caller and the order (model.service_metadata); a session
with neither is another integration's on the same account, and not adopted.

What becomes of it:
- Open, and no other session holds its order: it is adopted, the order's session. A repeat of
  the request that made it supersedes it (expires it first), as the ledger cannot know that
  request's fingerprint. When another session holds the order it is not adopted, and the sweep
  expires it: the order keeps at most one payable session.
- Complete (paid, a delayed payment under way, or nothing to pay): it is the order's payment.
  An open session holding the order is expired first. If another session of the order was
  completed too, nothing automatic can undo that: OrderPaidTwice, for an operator (the
  runbook).
- Either, while a row of its order is still on its way into the ledger (pending): an event
  waits for it (it may be this very session, its answer lost); the scans resume it with its
  key first, as the sweep does.
- Expired: nothing to adopt; nobody can pay it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from service.domain.checkout import Checkout
from service.domain.errors import (
    AttemptDropped,
    InvalidRequest,
    OrderPaidTwice,
    Unavailable,
    UpstreamRejected,
)
from service.domain.model import (
    CALLER_KEY,
    ORDER_ID_KEY,
    LedgerEntry,
    LedgerState,
    SessionSnapshot,
    holds_order,
)
from service.domain.ports import SyncLedger

# A paid session takes the order in a round or two: its row on its way resumed, its open
# session expired, then adopted; more if the order keeps changing.
_ROUNDS = 4
NO_REQUEST = ""
"""The fingerprint of a row no request of the ledger's made (a lost session adopted): it
matches no request's, so the next create of its order supersedes the session."""


@dataclass(frozen=True, slots=True)
class Adopted:
    """The row a session the ledger did not know has now: adopted (`new`), or its own, which
    was on its way into the ledger."""

    entry: LedgerEntry
    new: bool


@dataclass(frozen=True, slots=True)
class Origin:
    """Whose order a session is, and the cart its row keeps."""

    caller: str
    order_id: str
    fingerprint: str
    stripe_params: Mapping[str, Any]


class Adoption:
    def __init__(self, ledger: SyncLedger, checkout: Checkout) -> None:
        self._ledger = ledger
        self._checkout = checkout

    async def adopt_or_wait(self, session: SessionSnapshot) -> LedgerEntry | None:
        """`adopt`, for a session an event is about: None (the event is not the ledger's)
        only when no session of its order may still be on its way into the ledger; while one
        may, Unavailable, so that the event comes again and applies to its row."""
        adopted = await self.adopt(session)
        if adopted is not None:
            return adopted.entry
        order_id = session.metadata.get(ORDER_ID_KEY)
        if order_id is None:
            return None
        if CALLER_KEY in session.metadata or session.recovered_from:
            waiting = await self._ledger.has_pending(order_id)
        else:
            # Made before sessions named their caller: an order the ledger knows may be
            # another caller's, or its creator's not stored yet; it is waited for, as it was.
            waiting = await self._ledger.knows_order(order_id)
        if waiting:
            raise Unavailable(
                f"session {session.id} is not in the ledger yet",
                reason="SESSION_NOT_YET_STORED",
                retry_after_seconds=5.0,
            )
        return None

    async def adopt(
        self, session: SessionSnapshot, *, resume_pending: bool = False
    ) -> Adopted | None:
        """The row of a session the ledger did not know, adopted as the module says; None if
        it is not the ledger's to keep: another integration's, expired, or open while another
        session holds its order. Raises OrderPaidTwice; and Unavailable while a session of
        its order is on its way into the ledger, unless `resume_pending`: then that row's
        attempt is resumed with its key first (it may be this very session, its answer lost:
        then that row is the answer, not adopted), as the sweep resumes it."""
        if session.status == LedgerState.EXPIRED:
            return None
        origin = await self.origin(session)
        if origin is None:
            return None
        reread = False
        for _ in range(_ROUNDS):
            claim = await self._ledger.adopt(
                caller=origin.caller,
                order_id=origin.order_id,
                fingerprint=origin.fingerprint,
                stripe_params=origin.stripe_params,
                snapshot=session,
            )
            if claim.won:
                return Adopted(claim.entry, new=True)
            if claim.entry.state == LedgerState.PENDING:
                resumed = await self._on_its_way(claim.entry, session, resume=resume_pending)
                if resumed is not None and resumed.session_id == session.id:
                    return Adopted(resumed, new=False)
            elif session.status == LedgerState.COMPLETE:
                await self._let_go(claim.entry, session)
            elif claim.entry.state == LedgerState.OPEN and not reread:
                # The ledger may be behind Stripe about its holder (the commit of its expiry
                # lost, say): read it again once before leaving the order to it.
                reread = True
                holder = await self._checkout.bring_up_to_date(claim.entry)
                if holds_order(holder.state, holder.async_payment_failed):
                    return None
            else:
                return None
        raise Unavailable(
            f"order {origin.order_id} kept changing while session {session.id} was adopted",
            reason="CLAIM_CONTENDED",
        )

    async def origin(self, session: SessionSnapshot) -> Origin | None:
        """Whose order `session` is, with the cart its row is to keep; None if not ours."""
        order_id = session.metadata.get(ORDER_ID_KEY)
        if session.recovered_from:
            row = await self._ledger.by_session_id(session.recovered_from)
            if row is not None and order_id == row.order_id:
                return Origin(row.caller, row.order_id, row.fingerprint, row.stripe_params)
        caller = session.metadata.get(CALLER_KEY)
        if caller and order_id:
            return Origin(caller, order_id, NO_REQUEST, {})
        return None

    async def _on_its_way(
        self, holder: LedgerEntry, session: SessionSnapshot, *, resume: bool
    ) -> LedgerEntry | None:
        """The order's row is waiting for Stripe's answer to its attempt: resumed, the row as
        it is then (None if it was dropped)."""
        if not resume:
            raise Unavailable(
                f"order {holder.order_id} has a session on its way; {session.id} is judged "
                "once it is stored",
                reason="SESSION_NOT_YET_STORED",
                retry_after_seconds=5.0,
            )
        try:
            return await self._checkout.bring_up_to_date(holder)
        except (InvalidRequest, AttemptDropped):
            return None  # Stripe refused the attempt and its row was dropped, or it had gone

    async def _let_go(self, holder: LedgerEntry, paid: SessionSnapshot) -> None:
        """The order was paid through `paid`: its open session must not be paid too."""
        if holder.state == LedgerState.OPEN and holder.session_id is not None:
            # Refused when no longer open: re-read below, and the next round sees how it ended.
            with suppress(UpstreamRejected):
                await self._checkout.expire_at_stripe(holder.session_id)
            await self._checkout.bring_up_to_date(holder)
            return
        raise OrderPaidTwice(holder.caller, holder.order_id, holder.session_id or "", paid.id)
