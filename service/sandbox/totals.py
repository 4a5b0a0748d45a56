"""How Checkout computes a session's amounts.

A line's subtotal is `unit_amount * quantity`, rounded half up to the currency's minor unit when
the price has a decimal unit amount. The session's `amount_subtotal` is the sum of the lines,
`total_details.amount_shipping` is the first shipping option (Checkout selects it by default),
and `amount_total = amount_subtotal - amount_discount + amount_shipping + exclusive tax`.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .catalog import unit_amount
from .checkout_rules import SessionPlan


@dataclass
class LineAmounts:
    subtotal: int
    discount: int = 0
    tax: int = 0
    discounts: list[dict[str, Any]] = field(default_factory=list)
    taxes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.subtotal - self.discount + self.tax


@dataclass
class Totals:
    lines: list[LineAmounts]
    shipping: int
    shipping_rate: str | None

    @property
    def subtotal(self) -> int:
        return sum(line.subtotal for line in self.lines)

    @property
    def discount(self) -> int:
        return sum(line.discount for line in self.lines)

    @property
    def tax(self) -> int:
        return sum(line.tax for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal - self.discount + self.shipping + self.tax


def round_half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def compute_totals(
    plan: SessionPlan, prices: list[dict[str, Any]], rates: list[dict[str, Any]]
) -> Totals:
    lines = [
        LineAmounts(subtotal=round_half_up(unit_amount(price) * line.quantity))
        for line, price in zip(plan.lines, prices, strict=True)
    ]
    selected = rates[0] if rates else None
    return Totals(
        lines=lines,
        shipping=selected["fixed_amount"]["amount"] if selected else 0,
        shipping_rate=selected["id"] if selected else None,
    )
