"""Computing an open session's amounts again, as Checkout does while the customer is on the page:
when they change a quantity, enter a promotion code or pick a shipping option
(`customer_choices.py`), and when they submit their address, which decides automatic tax
(`completion.py`).

The inputs are what the session holds: its line items (each price and quantity), its discount
(the caller's coupon or promotion code, or the one the customer entered), its selected shipping
rate, the manual tax rates it was created with, its trial, and the customer's country. The
result is checked against Stripe's charge limits (`charge_limits.py`) before anything is
written, so a choice or a payment that Stripe would refuse leaves the session as it was.
"""

from dataclasses import dataclass, field
from typing import Any

from .charge_limits import check_charge
from .checkout import BREAKDOWN, CREATE_PARAMS, LINE_ITEMS, store_line_items
from .checkout_params import SESSION_CREATE
from .checkout_totals import (
    automatic_tax,
    automatic_tax_status,
    cart_line,
    line_amounts,
    session_amounts,
)
from .discounts import COUPON
from .shipping import SHIPPING_RATE
from .store import Store
from .taxes import TAX_RATE
from .totals import Totals, compute_totals
from .trials import trialing


@dataclass
class Choices:
    """What the customer changed, already checked against the session."""

    quantities: dict[int, int] = field(default_factory=dict)
    """Line item index -> its new quantity."""
    discount: dict[str, Any] | None = None
    """The Discount of a promotion code the customer entered."""
    shipping_rate: dict[str, Any] | None = None
    """The shipping rate the customer selected, one of the session's `shipping_options`."""


@dataclass
class Recalculation:
    totals: Totals
    quantities: list[int]
    discount: dict[str, Any] | None
    shipping_rate: dict[str, Any] | None


def recalculate(
    store: Store,
    now: int,
    session: dict[str, Any],
    country: str | None,
    choices: Choices | None = None,
) -> Recalculation:
    """The session's amounts with `choices` applied and `country` known; refuses, changing
    nothing, when Stripe could not charge the amount due now."""
    choices = choices or Choices()
    items = store.attached(LINE_ITEMS, session["id"])
    params = SESSION_CREATE.parse(store.attached(CREATE_PARAMS, session["id"]))
    lines = params.get("line_items", [])
    trial = trialing(params)
    quantities = [choices.quantities.get(i, item["quantity"]) for i, item in enumerate(items)]
    cart = [
        cart_line(
            store,
            item["price"],
            quantity,
            [store.get(TAX_RATE, rate) for rate in line.get("tax_rates", [])],
            trialing=trial,
        )
        for item, quantity, line in zip(items, quantities, lines, strict=True)
    ]
    discount = choices.discount or _current_discount(store, session)
    coupon = None if discount is None else store.get(COUPON, discount["source"]["coupon"])
    rate = choices.shipping_rate or _current_rate(store, session)
    automatic = automatic_tax(store, session["automatic_tax"]["enabled"], country, now)
    totals = compute_totals(cart, coupon, discount, rate, automatic)
    check_charge(totals.total, session["currency"])
    return Recalculation(totals, quantities, discount, rate)


def write(
    store: Store, session: dict[str, Any], result: Recalculation, country: str | None
) -> None:
    """Put a recalculation on the session and its line items (the caller saves the session)."""
    items = store.attached(LINE_ITEMS, session["id"])
    for item, quantity, amounts in zip(items, result.quantities, result.totals.lines, strict=True):
        item["quantity"] = quantity
        item.update(line_amounts(amounts))
    store_line_items(store, session["id"], items)
    store.attach(BREAKDOWN, session["id"], result.totals.breakdown())
    session.update(session_amounts(result.totals, paying=True))
    discount = result.discount
    if discount is not None:
        code = discount["promotion_code"]
        session["discounts"] = [
            {"coupon": None, "promotion_code": code}
            if code
            else {"coupon": discount["source"]["coupon"], "promotion_code": None}
        ]
    if session["automatic_tax"]["enabled"]:
        session["automatic_tax"]["status"] = automatic_tax_status(store, country)


def _current_discount(store: Store, session: dict[str, Any]) -> dict[str, Any] | None:
    discounts = store.attached(BREAKDOWN, session["id"])["discounts"]
    return discounts[0]["discount"] if discounts else None


def _current_rate(store: Store, session: dict[str, Any]) -> dict[str, Any] | None:
    cost = session["shipping_cost"]
    return None if cost is None else store.get(SHIPPING_RATE, cost["shipping_rate"])
