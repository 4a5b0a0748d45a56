"""Values of the domain: what Stripe said, and what the ledger holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

if TYPE_CHECKING:
    from service.domain.payment_model import PaymentSnapshot


class Role(StrEnum):
    """What a caller may do. `caller`: everything, on its own orders. `operator`: read-only,
    across callers, for debugging; never sees a `client_secret`."""

    CALLER = "caller"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, as authenticated at the edge. Every order belongs to the caller that
    created it; `(caller, order_id)` is the key."""

    name: str
    role: Role
    may_refund: bool = False
    """Whether it may refund its orders' payments (`may_refund` in CALLERS_FILE): a caller
    that captures or cancels need not be one that gives money back."""

    @property
    def may_write(self) -> bool:
        return self.role == Role.CALLER

    @property
    def sees_client_secrets(self) -> bool:
        return self.role == Role.CALLER

    @property
    def sees_every_order(self) -> bool:
        return self.role == Role.OPERATOR


LOCAL_CALLER = Caller("local", Role.CALLER, may_refund=True)
"""The one caller when authentication is off (a laptop, a loopback address)."""

ORDER_ID_KEY = "order_id"
"""Metadata key the service adds to the session and to the PaymentIntent, Subscription or
SetupIntent, so that anything seen in the Stripe dashboard leads back to the order; the webhooks
and the sweep read the order back from it."""
CALLER_KEY = "checkout_caller"
"""Metadata key beside ORDER_ID_KEY, on everything the service has Stripe make (and on its
refunds): the name of the caller whose order it is. With the two, what Stripe holds names the
ledger row it belongs to, so that the ledger can be rebuilt from Stripe: a session the ledger
does not know (an answer lost, commits a database failover lost) is adopted by them
(adoption.py)."""
SERVICE_METADATA_KEYS = (ORDER_ID_KEY, CALLER_KEY)
"""The metadata keys the service sets itself; a request's metadata may not name them, and they
count in Stripe's limit of keys (validation.py)."""


def service_metadata(caller: str, order_id: str) -> dict[str, str]:
    """What the service adds to the metadata of each object it has Stripe make."""
    return {ORDER_ID_KEY: order_id, CALLER_KEY: caller}


class PaymentStatus(StrEnum):
    PAID = "paid"
    UNPAID = "unpaid"
    NO_PAYMENT_REQUIRED = "no_payment_required"


class LedgerState(StrEnum):
    """Where a ledger row is: `pending` until Stripe's answer is stored, then the session's
    status at Stripe. The migration's CHECK constraint and partial unique index name the same
    values (tests/integration/test_ledger.py holds them together)."""

    PENDING = "pending"
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


ACTIVE_STATES = (LedgerState.PENDING, LedgerState.OPEN)
"""The states of a row whose session is payable, or about to be."""
HELD_UNLESS_PAYMENT_FAILED = (LedgerState.COMPLETE,)
"""The states of a row that holds its order until its delayed payment is known to have failed:
paid, or a payment under way."""


def holds_order(state: LedgerState, async_payment_failed: bool) -> bool:
    """Whether a row keeps its order from getting another session: active, or complete with its
    payment not known to have failed. At most one row per order holds it: the ledger's unique
    index `checkout_sessions_one_holder_per_order` (migration 0002), whose predicate the store
    builds from the same two tuples (service/store/repository.py)."""
    return state in ACTIVE_STATES or (
        state in HELD_UNLESS_PAYMENT_FAILED and not async_payment_failed
    )


class Progress(IntEnum):
    """How far along its life a session is, stored with each row. Stripe only moves a session
    forward, so an update that would lower it is a stale read (webhooks arrive in any order)
    and is ignored."""

    PENDING = 0
    OPEN = 1
    CLOSED = 2
    """Expired, or complete with the payment not settled yet (a delayed payment method)."""
    SETTLED = 3
    """Complete and paid, or complete with no payment required."""


@dataclass(frozen=True, slots=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class ShippingDetails:
    name: str
    address: Address


@dataclass(frozen=True, slots=True)
class TaxAmount:
    """A tax at one rate: on a line, on the shipping, or summed over a session."""

    amount: int
    taxable_amount: int = 0
    tax_rate_id: str = ""
    display_name: str = ""
    percentage: float = 0.0
    inclusive: bool = False
    country: str = ""
    jurisdiction: str = ""
    taxability_reason: str = ""


@dataclass(frozen=True, slots=True)
class DiscountAmount:
    """A discount: on a line, or summed over a session."""

    amount: int
    coupon_id: str = ""
    promotion_code_id: str = ""


@dataclass(frozen=True, slots=True)
class LineItemSnapshot:
    id: str
    description: str
    quantity: int
    price_id: str
    currency: str
    unit_amount: int
    amount_subtotal: int
    amount_discount: int
    amount_tax: int
    amount_total: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    product_id: str = ""
    taxes: tuple[TaxAmount, ...] = ()
    discounts: tuple[DiscountAmount, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = field_values(self)
        data["metadata"] = dict(self.metadata)
        data["taxes"] = [field_values(tax) for tax in self.taxes]
        data["discounts"] = [field_values(discount) for discount in self.discounts]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LineItemSnapshot:
        values = dict(data)
        values["taxes"] = _taxes(data.get("taxes"))
        values["discounts"] = _discounts(data.get("discounts"))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ShippingCost:
    shipping_rate_id: str
    amount_subtotal: int
    amount_tax: int
    amount_total: int
    taxes: tuple[TaxAmount, ...] = ()


@dataclass(frozen=True, slots=True)
class TaxId:
    type: str
    value: str


@dataclass(frozen=True, slots=True)
class CustomerDetails:
    """What the customer entered on the payment page, as Stripe reports it. Strings are empty
    where Stripe has nothing; `tax_exempt` keeps Stripe's string."""

    name: str = ""
    email: str = ""
    phone: str = ""
    address: Address | None = None
    tax_ids: tuple[TaxId, ...] = ()
    business_name: str = ""
    individual_name: str = ""
    tax_exempt: str = ""

    def to_json(self) -> dict[str, Any]:
        data = field_values(self)
        data["address"] = None if self.address is None else field_values(self.address)
        data["tax_ids"] = [field_values(tax_id) for tax_id in self.tax_ids]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CustomerDetails:
        values = dict(data)
        address = data.get("address")
        values["address"] = None if address is None else Address(**address)
        values["tax_ids"] = tuple(TaxId(**tax_id) for tax_id in data.get("tax_ids", ()))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class CustomFieldValue:
    """A custom field of the session and what the customer entered (empty: nothing yet)."""

    key: str
    label: str
    type: str
    value: str = ""


@dataclass(frozen=True, slots=True)
class Consent:
    """The consent the customer gave: Stripe's strings, empty where not asked."""

    terms_of_service: str = ""
    promotions: str = ""


def _taxes(data: Any) -> tuple[TaxAmount, ...]:
    return tuple(TaxAmount(**tax) for tax in data or ())


def _discounts(data: Any) -> tuple[DiscountAmount, ...]:
    return tuple(DiscountAmount(**discount) for discount in data or ())


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """A Checkout Session as Stripe last described it. Enum-like fields keep Stripe's raw
    strings: Stripe's enums are open, and a value newer than our code must survive a round
    trip through the ledger."""

    id: str
    mode: str
    ui_mode: str
    status: str | None
    payment_status: str
    currency: str | None
    amount_subtotal: int | None
    amount_total: int | None
    amount_discount: int
    amount_shipping: int
    amount_tax: int
    livemode: bool
    created: int
    expires_at: int
    url: str | None = None
    client_secret: str | None = None
    presentment_amount: int | None = None
    presentment_currency: str | None = None
    customer_id: str | None = None
    customer_email: str | None = None
    payment_intent_id: str | None = None
    subscription_id: str | None = None
    setup_intent_id: str | None = None
    shipping: ShippingDetails | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    success_url: str | None = None
    cancel_url: str | None = None
    return_url: str | None = None
    line_items: tuple[LineItemSnapshot, ...] = ()
    shipping_cost: ShippingCost | None = None
    discount_ids: tuple[str, ...] = ()
    # What the customer entered, and the rest of what issue 20 added: snapshots stored before
    # have none of these, and load with the defaults.
    customer_details: CustomerDetails | None = None
    custom_fields: tuple[CustomFieldValue, ...] = ()
    consent: Consent | None = None
    invoice_id: str | None = None
    recovery_url: str | None = None
    recovery_expires_at: int | None = None
    recovered_from: str | None = None
    automatic_tax_enabled: bool = False
    automatic_tax_status: str | None = None
    tax_breakdown: tuple[TaxAmount, ...] = ()
    """`total_details.breakdown.taxes`: the session's taxes by rate."""
    discount_breakdown: tuple[DiscountAmount, ...] = ()
    """`total_details.breakdown.discounts`."""

    def to_json(self) -> dict[str, Any]:
        """What `asdict` gives, built field by field: it runs on every write of a session,
        and asdict's generic deep copy cost more than the rest of the write's Python."""
        data = field_values(self)
        data["metadata"] = dict(self.metadata)
        data["line_items"] = [item.to_json() for item in self.line_items]
        data["discount_ids"] = list(self.discount_ids)
        if self.shipping is not None:
            data["shipping"] = {
                "name": self.shipping.name,
                "address": field_values(self.shipping.address),
            }
        if self.shipping_cost is not None:
            data["shipping_cost"] = field_values(self.shipping_cost)
            data["shipping_cost"]["taxes"] = [field_values(t) for t in self.shipping_cost.taxes]
        if self.customer_details is not None:
            data["customer_details"] = self.customer_details.to_json()
        data["custom_fields"] = [field_values(custom) for custom in self.custom_fields]
        if self.consent is not None:
            data["consent"] = field_values(self.consent)
        data["tax_breakdown"] = [field_values(tax) for tax in self.tax_breakdown]
        data["discount_breakdown"] = [field_values(d) for d in self.discount_breakdown]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionSnapshot:
        values = dict(data)
        values["line_items"] = tuple(
            LineItemSnapshot.from_json(li) for li in data.get("line_items", ())
        )
        cost = data.get("shipping_cost")
        values["shipping_cost"] = (
            ShippingCost(**{**cost, "taxes": _taxes(cost.get("taxes"))}) if cost else None
        )
        values["discount_ids"] = tuple(data.get("discount_ids", ()))
        details = data.get("customer_details")
        values["customer_details"] = None if details is None else CustomerDetails.from_json(details)
        values["custom_fields"] = tuple(
            CustomFieldValue(**custom) for custom in data.get("custom_fields", ())
        )
        consent = data.get("consent")
        values["consent"] = None if consent is None else Consent(**consent)
        values["tax_breakdown"] = _taxes(data.get("tax_breakdown"))
        values["discount_breakdown"] = _discounts(data.get("discount_breakdown"))
        shipping = data.get("shipping")
        values["shipping"] = (
            ShippingDetails(name=shipping["name"], address=Address(**shipping["address"]))
            if shipping
            else None
        )
        return cls(**values)


def may_store(
    snapshot: SessionSnapshot, *, session_id: str | None, caller: str, order_id: str
) -> bool:
    """Whether a row (its session, caller and order) may store this snapshot: its own session's,
    or, on a row that has no session yet, one whose metadata names the row's caller and order
    (a session made before the caller went into the metadata tells nothing). Anything else is
    another row's: after a database failover lost a row, Postgres may hand its id out again,
    and the attempt that wrote the lost row must not write into the new one."""
    if session_id is not None:
        return session_id == snapshot.id
    whose = snapshot.metadata.get(CALLER_KEY)
    return whose is None or (whose == caller and snapshot.metadata.get(ORDER_ID_KEY) == order_id)


def field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names, looked up once per class; empty for anything else."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls)) if is_dataclass(cls) else ()
    return names


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def field_values(value: Any) -> dict[str, Any]:
    """A dataclass's fields by name, one level deep: `asdict` without its deep copies, which
    cost the hot paths more than the rest of their work (`make bench`)."""
    return {name: getattr(value, name) for name in field_names(type(value))}


def session_name(session_id: str) -> str:
    """A session's resource name in every error detail (https://google.aip.dev/122)."""
    return f"sessions/{session_id}"


def order_name(order_id: str) -> str:
    return f"orders/{order_id}"


def ledger_state(snapshot: SessionSnapshot) -> LedgerState:
    """The ledger state for what Stripe said. A status newer than this code is kept as `open`:
    the row stays active, so the order cannot get a second payable session by accident."""
    known = (LedgerState.OPEN, LedgerState.COMPLETE, LedgerState.EXPIRED)
    return next((state for state in known if state == snapshot.status), LedgerState.OPEN)


def progress_of(state: LedgerState, payment_status: str | None) -> Progress:
    if state == LedgerState.PENDING:
        return Progress.PENDING
    if state == LedgerState.OPEN:
        return Progress.OPEN
    if state == LedgerState.COMPLETE and payment_status in (
        PaymentStatus.PAID,
        PaymentStatus.NO_PAYMENT_REQUIRED,
    ):
        return Progress.SETTLED
    return Progress.CLOSED


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One row of the order↔session ledger: an attempt to give an order a session."""

    row_id: int
    caller: str
    """The name of the caller whose order it is (the one that created it)."""
    order_id: str
    state: LedgerState
    fingerprint: str
    idempotency_key: str
    stripe_params: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    session_id: str | None = None
    snapshot: SessionSnapshot | None = None
    async_payment_failed: bool = False
    sweep_attempts: int = 0
    """Sweep passes in a row that failed to bring this row up to date."""
    missing_at_stripe: bool = False
    """Stripe no longer knows the session; the row was ended as expired."""
    payment: PaymentSnapshot | None = None
    """A paid PAYMENT session's money as Stripe last described it (payment_model.py)."""

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_final(self) -> bool:
        """Nothing more will happen to this session."""
        if self.state == LedgerState.EXPIRED:
            return True
        if self.state != LedgerState.COMPLETE or self.snapshot is None:
            return False
        return self.async_payment_failed or self.snapshot.payment_status in (
            PaymentStatus.PAID,
            PaymentStatus.NO_PAYMENT_REQUIRED,
        )


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """A verified Stripe event about a Checkout Session."""

    id: str
    type: str
    session_id: str
    order_id: str | None
    """The order id the service put in the session's metadata, if the session is ours."""
    created: int = 0
    """When Stripe made the event (Unix seconds)."""
    recovered_from: str | None = None
    """The expired session a recovered session is the copy of (adoption.py)."""
    caller: str | None = None
    """The caller the service put in the session's metadata: sessions made before it did
    carry none."""


class Claim(NamedTuple):
    """Outcome of trying to make a new pending row the one that holds the order: won, with that
    row, or lost to the row that holds it. A named tuple rather than a frozen dataclass: a
    repeated create gets a new one from the cache on every call, and a frozen dataclass's
    `__init__` (an `object.__setattr__` per field) costs twice as much."""

    won: bool
    entry: LedgerEntry


@dataclass(frozen=True, slots=True)
class Attempt:
    """What a claim inserts as the order's pending row: a fresh Stripe idempotency key, the
    exact Stripe parameters the key is sent with, and when the session is to expire."""

    idempotency_key: str
    stripe_params: Mapping[str, Any]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RequestRecord:
    caller: str
    request_id: str
    fingerprint: str
    row_id: int
    reused: bool


@dataclass(frozen=True, slots=True)
class CreateResult:
    entry: LedgerEntry
    reused: bool


@dataclass(frozen=True, slots=True)
class Page:
    entries: tuple[LedgerEntry, ...]
    next_page_token: str


@dataclass(frozen=True, slots=True, order=True)
class FeedPosition:
    """Where an event is in its caller's feed: the id of the transaction that wrote it
    (Postgres's `pg_current_xact_id()`), then its own id. A feed is read in this order, and only
    below the oldest transaction still running, so that an event whose transaction began
    earlier but committed later is never passed over (docs/architecture.md, "The event feed").
    Ordered as Postgres orders `(txid, id)`: a UUID compares by its bytes, as its int does."""

    txid: int
    event_id: UUID
    written_at: datetime = field(default=datetime(1970, 1, 1, tzinfo=UTC), compare=False)
    """When the event was written. Not part of the order: what tells, after a failover that
    handed transaction ids out again, an event written since from one written before."""


FEED_START = FeedPosition(0, UUID(int=0))
"""Before every event."""


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One event of a caller's feed: an outcome of its order that the order service acts on,
    written with the ledger change that caused it (outcomes.py says which changes write one)."""

    position: FeedPosition
    type: str
    """An outcomes.EventType's value; a string, so that a type a newer replica wrote passes
    through this one (its callers skip types they do not know)."""
    caller: str
    order_id: str
    session: LedgerEntry
    """The ledger row as the change left it, without the Stripe parameters of its create
    (which no Session shows): the session as GetSession showed it then."""
    refund_id: str | None = None
    """For a refund's events (made, failed): which of the session's payment's refunds."""

    @property
    def id(self) -> UUID:
        return self.position.event_id

    @property
    def created_at(self) -> datetime:
        return self.position.written_at


@dataclass(frozen=True, slots=True)
class FeedRead:
    """What one read of a caller's feed found, in one snapshot of the database."""

    events: tuple[FeedEvent, ...]
    """After the position asked for, oldest first, of the types asked for; only those below the
    horizon (the oldest transaction still running), which every later read finds too."""
    tail: FeedPosition | None
    """The caller's latest event below the horizon, of any type; None if it has none."""
    held_back: bool
    """Some of the caller's committed events are above the horizon: a later read finds them."""
    pruned_through: FeedPosition | None
    """The caller's latest event that retention removed; None if none was."""
    after_found: bool
    """The event at the position read after is in the feed."""
