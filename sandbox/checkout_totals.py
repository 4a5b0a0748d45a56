"""How a Checkout Session's amounts appear on it and on its line items (`totals.py` computes them).

The same fields are written when the session is created, when the customer changes something on
the page (`customer_choices.py`), and when it completes, once Checkout knows the customer's
address and with it the automatic tax (`recalculation.py`). What a line costs now is its price
times its quantity, or nothing for a recurring price during a trial (`trials.py`); automatic tax
follows each price's tax behaviour, or the account's default (`tax_settings.py`), and collects
only in countries where the account is registered.
"""

from decimal import Decimal
from typing import Any

from .store import Store
from .tax_settings import calculation_fails, collects_in, effective_behavior
from .taxes import automatic_rate
from .totals import Amounts, AutomaticRate, CartLine, Totals, round_half_up


def automatic_tax(
    store: Store, enabled: bool, country: str | None, now: int
) -> AutomaticRate | None:
    """The automatic tax to apply: none until it is enabled and the country is known, and none
    where the account is not registered."""
    if not enabled or country is None or calculation_fails(store, country):
        return None
    if not collects_in(store, country):
        return lambda inclusive: None
    return lambda inclusive: automatic_rate(country, now, inclusive)


def automatic_tax_status(store: Store, country: str | None) -> str:
    """`automatic_tax.status` of a session with automatic tax, once `country` is known or not
    (https://docs.stripe.com/api/checkout/sessions/object#checkout_session_object-automatic_tax-status)."""
    if country is None:
        return "requires_location_inputs"
    return "failed" if calculation_fails(store, country) else "complete"


def cart_line(
    store: Store,
    price: dict[str, Any],
    quantity: int,
    tax_rates: list[dict[str, Any]],
    *,
    trialing: bool,
) -> CartLine:
    """A line as `compute_totals` takes it: what is due now, and the tax behaviour to follow."""
    due = round_half_up(Decimal(price["unit_amount_decimal"]) * quantity)
    if trialing and price["type"] == "recurring":
        due = 0
    behavior = effective_behavior(store, price["tax_behavior"], price["currency"])
    return CartLine(due, price["product"], behavior, tax_rates)


def line_amounts(amounts: Amounts) -> dict[str, Any]:
    """A line item's amount fields."""
    return {
        "amount_discount": amounts.discount,
        "amount_subtotal": amounts.subtotal,
        "amount_tax": amounts.tax,
        "amount_total": amounts.total,
        "discounts": amounts.discounts,
        "taxes": amounts.taxes,
    }


def session_amounts(totals: Totals, paying: bool) -> dict[str, Any]:
    """A session's amount fields; a setup session has none."""
    return {
        "amount_subtotal": totals.subtotal if paying else None,
        "amount_total": totals.total if paying else None,
        "shipping_cost": None
        if totals.shipping is None
        else {
            "amount_subtotal": totals.shipping.subtotal,
            "amount_tax": totals.shipping.tax,
            "amount_total": totals.shipping.total,
            "shipping_rate": totals.shipping_rate,
            "taxes": totals.shipping.taxes,
        },
        "total_details": {
            "amount_discount": totals.discount,
            "amount_shipping": 0 if totals.shipping is None else totals.shipping.subtotal,
            "amount_tax": totals.tax,
        }
        if paying
        else None,
    }
