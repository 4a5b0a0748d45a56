"""How a Checkout Session's amounts appear on it and on its line items (`totals.py` computes them).

The same fields are written when the session is created and again when it completes, once
Checkout knows the customer's address and with it the automatic tax (`completion.py`).
"""

from typing import Any

from .taxes import automatic_rate
from .totals import Amounts, AutomaticRate, Totals


def automatic_tax(enabled: bool, country: str | None, now: int) -> AutomaticRate | None:
    """The automatic tax to apply: none until it is enabled and the country is known."""
    if not enabled or country is None:
        return None
    return lambda inclusive: automatic_rate(country, now, inclusive)


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
