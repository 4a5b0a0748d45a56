"""The ledger checked against Stripe once the run has settled: what must hold whatever failed.

Stripe (here the sandbox, read through stripe-python with auto-paging) is the truth about which
sessions exist and which are paid; the ledger (`checkout_sessions`) is the truth about which
order owns which session. Only the run's own orders are looked at (their ids share a prefix),
so an exported DATABASE_URL with other data in it does not disturb the count.

The refunds are checked at Stripe against what their callers were told (`audit_refunds`): no
charge's refunds exceed its capture, every refund a caller was told was made exists, once (a
refund carries its request id in its metadata), and none exists for a request that was refused.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from chaos.load import ToldRefund
from chaos.sandbox import SandboxControl
from service.domain.payment_model import REFUND_REQUEST_KEY

# Final answers after which a refund may or may not exist: the outcome was unknown when the
# caller gave up, and the sweep finishes what it started.
_UNKNOWN = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "RESOURCE_EXHAUSTED"})


@dataclass(frozen=True, slots=True)
class LedgerRow:
    caller: str
    order_id: str
    state: str
    session_id: str | None
    payment_status: str | None
    row_id: int = 0
    idempotency_key: str = ""
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class StripeSession:
    id: str
    order_id: str
    status: str
    payment_status: str
    created: int = 0


@dataclass
class Audit:
    """Each check holds the examples that break it; an empty list is a pass."""

    orders_with_two_open: dict[str, list[str]] = field(default_factory=dict)
    paid_not_complete: list[tuple[str, str, str]] = field(default_factory=list)
    """(session id, order id, the ledger's state for it, or "no row")."""
    open_without_row: list[tuple[str, str]] = field(default_factory=list)
    """(session id, order id)."""
    # What is worth knowing, but not an invariant on its own.
    open_but_ledger_not_open: list[tuple[str, str, str]] = field(default_factory=list)
    ledger_open_but_stripe_not: list[tuple[str, str, str]] = field(default_factory=list)
    paid_orders_with_open_session: list[str] = field(default_factory=list)
    ledger_states: Counter[str] = field(default_factory=Counter)
    stripe_states: Counter[str] = field(default_factory=Counter)
    sessions: list[StripeSession] = field(default_factory=list)
    rows: list[LedgerRow] = field(default_factory=list)
    pending_operations: int = 0
    """Captures, cancels and refunds whose outcome the ledger does not know yet."""

    def dump(self, folder: Path) -> None:
        """Both sides as tab-separated files, for looking into a failed check afterwards (the
        run's own Postgres is gone by then)."""
        with (folder / "stripe_sessions.tsv").open("w", encoding="utf-8") as out:
            out.write("session_id\torder_id\tstatus\tpayment_status\tcreated\n")
            for s in sorted(self.sessions, key=lambda s: (s.order_id, s.created, s.id)):
                out.write(f"{s.id}\t{s.order_id}\t{s.status}\t{s.payment_status}\t{s.created}\n")
        with (folder / "ledger.tsv").open("w", encoding="utf-8") as out:
            out.write(
                "row\tcaller\torder_id\tstate\tsession_id\tpayment_status\tidempotency_key"
                "\tcreated_at\tupdated_at\n"
            )
            for r in sorted(self.rows, key=lambda r: (r.order_id, r.row_id)):
                out.write(
                    f"{r.row_id}\t{r.caller}\t{r.order_id}\t{r.state}\t{r.session_id}"
                    f"\t{r.payment_status}\t{r.idempotency_key}\t{r.created_at}\t{r.updated_at}\n"
                )

    @property
    def pending_rows(self) -> int:
        return self.ledger_states["pending"]

    def key(self) -> tuple[int, ...]:
        """What the settling loop watches for change."""
        return (
            len(self.orders_with_two_open),
            len(self.paid_not_complete),
            len(self.open_without_row),
            len(self.open_but_ledger_not_open),
            len(self.ledger_open_but_stripe_not),
            self.pending_rows,
            self.pending_operations,
        )

    @property
    def clean(self) -> bool:
        return not (self.orders_with_two_open or self.paid_not_complete or self.open_without_row)


async def ledger_rows(dsn: str, prefix: str) -> list[LedgerRow]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            """SELECT caller, order_id, state, session_id, payment_status, id,
                      idempotency_key, created_at, updated_at
               FROM checkout_sessions WHERE starts_with(order_id, $1)""",
            prefix,
        )
    finally:
        await conn.close()
    return [
        LedgerRow(
            r["caller"],
            r["order_id"],
            r["state"],
            r["session_id"],
            r["payment_status"],
            r["id"],
            r["idempotency_key"],
            r["created_at"].isoformat(),
            r["updated_at"].isoformat(),
        )
        for r in rows
    ]


async def stripe_sessions(sandbox: SandboxControl, prefix: str) -> list[StripeSession]:
    return [
        StripeSession(
            s.id, s.client_reference_id or "", str(s.status), str(s.payment_status), s.created
        )
        for s in await sandbox.sessions()
        if (s.client_reference_id or "").startswith(prefix)
    ]


async def audit(dsn: str, sandbox: SandboxControl, prefix: str) -> Audit:
    # Stripe first: a session made after this read but stored before the ledger read is
    # then in the ledger, never "at Stripe without a row" by the order of the reads alone.
    sessions = await stripe_sessions(sandbox, prefix)
    rows = await ledger_rows(dsn, prefix)
    result = compare(sessions, rows)
    result.pending_operations = await pending_operations(dsn, prefix)
    return result


async def pending_operations(dsn: str, prefix: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        count = await conn.fetchval(
            """SELECT count(*) FROM payment_operations o
               JOIN checkout_sessions s ON s.id = o.session_row
               WHERE o.state = 'pending' AND starts_with(s.order_id, $1)""",
            prefix,
        )
    finally:
        await conn.close()
    return int(count)


@dataclass
class RefundAudit:
    """Each check holds the examples that break it; an empty list is a pass."""

    payments: int = 0
    """Paid sessions of the run at Stripe, whose charges were read."""
    refunds_at_stripe: int = 0
    refunded_at_stripe: int = 0
    """The sum of the refunds that did not fail, in minor units (of any currency)."""
    over_refunded: list[tuple[str, int, int]] = field(default_factory=list)
    """(charge, refunded of the capture, captured)."""
    told_made_not_once: list[tuple[str, str, int]] = field(default_factory=list)
    """(request id, refund id the caller was told, how many refunds Stripe has for it)."""
    refused_but_made: list[tuple[str, str, str]] = field(default_factory=list)
    """(request id, the code its caller was told, the refund Stripe has for it)."""
    unknown_then_made: int = 0
    """Refunds whose caller gave up on an unknown outcome, made by a retry or the sweep."""


async def audit_refunds(
    sandbox: SandboxControl, sessions: Sequence[StripeSession], told: Sequence[ToldRefund]
) -> RefundAudit:
    """The run's paid sessions' charges and refunds at Stripe, against what callers were told."""
    result = RefundAudit()
    by_request: defaultdict[str, list[str]] = defaultdict(list)
    for session in sessions:
        if session.payment_status != "paid":
            continue
        found = await sandbox.stripe.v1.checkout.sessions.retrieve_async(session.id)
        if found.payment_intent is None:
            continue
        result.payments += 1
        intent = await sandbox.stripe.v1.payment_intents.retrieve_async(
            str(found.payment_intent), {"expand": ["latest_charge"]}
        )
        charge = intent.latest_charge
        assert charge is not None and not isinstance(charge, str)
        # Of the charge's refunds, those releasing an uncaptured authorisation are not refunds
        # of the capture (there are none here: every payment is captured at once).
        released = charge.amount - charge.amount_captured if charge.captured else charge.amount
        refunded = charge.amount_refunded - released
        if refunded > charge.amount_captured:
            result.over_refunded.append((charge.id, refunded, charge.amount_captured))
        page = await sandbox.stripe.v1.refunds.list_async(
            {"payment_intent": intent.id, "limit": 100}
        )
        async for refund in page.auto_paging_iter():
            result.refunds_at_stripe += 1
            if refund.status not in ("failed", "canceled"):
                result.refunded_at_stripe += refund.amount
            metadata = refund.metadata
            if metadata is not None and REFUND_REQUEST_KEY in metadata:
                by_request[str(metadata[REFUND_REQUEST_KEY])].append(refund.id)
    _compare_refunds(result, by_request, told)
    return result


def _compare_refunds(
    result: RefundAudit, by_request: dict[str, list[str]], told: Sequence[ToldRefund]
) -> None:
    for refund in told:
        made = by_request.get(refund.request_id, [])
        if refund.code == "OK":
            if made != [refund.refund_id]:
                result.told_made_not_once.append((refund.request_id, refund.refund_id, len(made)))
        elif refund.code in _UNKNOWN:
            result.unknown_then_made += len(made)
        elif made:
            result.refused_but_made.append((refund.request_id, refund.code, made[0]))


def compare(sessions: list[StripeSession], rows: list[LedgerRow]) -> Audit:
    result = Audit(sessions=sessions, rows=rows)
    by_session = {row.session_id: row for row in rows if row.session_id is not None}
    result.ledger_states.update(row.state for row in rows)
    result.stripe_states.update(f"{s.status}/{s.payment_status}" for s in sessions)
    open_by_order: defaultdict[str, list[str]] = defaultdict(list)
    paid_orders = set()
    for session in sessions:
        row = by_session.get(session.id)
        if session.status == "open":
            open_by_order[session.order_id].append(session.id)
            if row is None:
                result.open_without_row.append((session.id, session.order_id))
            elif row.state != "open":
                result.open_but_ledger_not_open.append((session.id, session.order_id, row.state))
        if session.status == "complete" and session.payment_status == "paid":
            paid_orders.add(session.order_id)
            if row is None or row.state != "complete":
                state = "no row" if row is None else row.state
                result.paid_not_complete.append((session.id, session.order_id, state))
        if row is not None and row.state == "open" and session.status != "open":
            result.ledger_open_but_stripe_not.append((session.id, session.order_id, session.status))
    result.orders_with_two_open = {
        order: ids for order, ids in sorted(open_by_order.items()) if len(ids) > 1
    }
    result.paid_orders_with_open_session = sorted(paid_orders & open_by_order.keys())
    return result
