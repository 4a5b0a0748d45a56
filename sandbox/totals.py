"""How Checkout computes a session's amounts, line by line.

1. Subtotal: `unit_amount * quantity` per line (a decimal unit amount is rounded half up), summed
   into `amount_subtotal`.
2. Discount (one coupon, or a promotion code's coupon): `percent_off` of the subtotal of the lines
   it applies to (all lines, or the coupon's `applies_to[products]`), rounded half up; or
   `amount_off`, capped at that subtotal. The discount is spread over those lines in proportion
   to their subtotals (largest remainder, so the lines add up to the total). Shipping is never
   discounted.
3. Tax, per line, on the discounted line amount (`subtotal - discount`), rounded half up per line
   and per rate: a line's manual `tax_rates` apply when it has any; otherwise automatic tax applies
   the country's rate (`taxes.py`) once the country is known, with the price's `tax_behavior`, or
   the account's default for `unspecified` (`tax_settings.py`; without either, automatic tax is
   refused). Exclusive tax is added on top: `amount * rate / 100`.
   Inclusive tax is carved out of the amount: `amount * rate / (100 + rate)`, and adds nothing.
4. Shipping: the first shipping option is selected until the customer picks another
   (`customer_choices.py`). Manual tax rates on line items never tax
   shipping; automatic tax taxes it only when the shipping rate has a `tax_behavior` of its own.
5. `amount_total = amount_subtotal - amount_discount + amount_shipping + exclusive tax`, and
   `total_details.amount_tax` counts inclusive and exclusive tax alike.

Worked case: 2 x 1500 + 1 x 990 USD, a 10 % coupon, a 500 shipping rate, an exclusive 8.25 % tax
rate on every line: subtotal 3990; discount 399 (300 + 99); tax 223 (8.25 % of 2700 = 222.75)
+ 74 (8.25 % of 891 = 73.5075) = 297; shipping 500 (untaxed); total 3990 - 399 + 500 + 297 = 4388.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

# (inclusive) -> the automatic tax rate object for the session's country, or None.
AutomaticRate = Callable[[bool], dict[str, Any] | None]


def round_half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class CartLine:
    subtotal: int
    product: str
    tax_behavior: str
    """The price's `tax_behavior`, which automatic tax follows."""
    tax_rates: list[dict[str, Any]]
    """Manual tax rates (tax_rate objects)."""


@dataclass
class Amounts:
    """What one line (or the shipping) costs: the fields of a line item and of `shipping_cost`."""

    subtotal: int
    discount: int = 0
    exclusive_tax: int = 0
    inclusive_tax: int = 0
    discounts: list[dict[str, Any]] = field(default_factory=list)
    taxes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tax(self) -> int:
        return self.exclusive_tax + self.inclusive_tax

    @property
    def total(self) -> int:
        return self.subtotal - self.discount + self.exclusive_tax


@dataclass
class Totals:
    lines: list[Amounts]
    shipping: Amounts | None
    shipping_rate: str | None
    discount_objects: list[dict[str, Any]]

    @property
    def subtotal(self) -> int:
        return sum(line.subtotal for line in self.lines)

    @property
    def discount(self) -> int:
        return sum(line.discount for line in self.lines)

    @property
    def tax(self) -> int:
        return sum(part.tax for part in self._parts())

    @property
    def total(self) -> int:
        return sum(part.total for part in self._parts())

    def breakdown(self) -> dict[str, Any]:
        """`total_details.breakdown`: the discount and each tax rate, summed over the session."""
        taxes: dict[str, dict[str, Any]] = {}
        for part in self._parts():
            for tax in part.taxes:
                entry = taxes.setdefault(
                    tax["rate"]["id"], {**tax, "amount": 0, "taxable_amount": 0}
                )
                entry["amount"] += tax["amount"]
                entry["taxable_amount"] += tax["taxable_amount"]
        return {
            "discounts": [
                {"amount": self.discount, "discount": discount}
                for discount in self.discount_objects
            ],
            "taxes": list(taxes.values()),
        }

    def _parts(self) -> list[Amounts]:
        return [*self.lines, *([self.shipping] if self.shipping else [])]


def compute_totals(
    lines: list[CartLine],
    coupon: dict[str, Any] | None,
    discount: dict[str, Any] | None,
    shipping_rate: dict[str, Any] | None,
    automatic: AutomaticRate | None,
) -> Totals:
    """`discount` is the Discount object shown for `coupon`; `automatic` is None unless
    automatic tax is enabled and the country known."""
    amounts = [Amounts(subtotal=line.subtotal) for line in lines]
    if coupon is not None and discount is not None:
        _apply_coupon(lines, amounts, coupon, discount)
    for line, line_amounts in zip(lines, amounts, strict=True):
        if line.tax_rates:
            _apply_taxes(line_amounts, line.tax_rates)
        elif automatic is not None:
            _apply_automatic(line_amounts, automatic, line.tax_behavior)
    shipping = None
    if shipping_rate is not None:
        shipping = Amounts(subtotal=shipping_rate["fixed_amount"]["amount"])
        if automatic is not None and shipping_rate["tax_behavior"] != "unspecified":
            _apply_automatic(shipping, automatic, shipping_rate["tax_behavior"])
    return Totals(
        lines=amounts,
        shipping=shipping,
        shipping_rate=None if shipping_rate is None else shipping_rate["id"],
        discount_objects=[] if discount is None else [discount],
    )


def _apply_coupon(
    lines: list[CartLine],
    amounts: list[Amounts],
    coupon: dict[str, Any],
    discount: dict[str, Any],
) -> None:
    products = (coupon["applies_to"] or {}).get("products")
    eligible = [
        index for index, line in enumerate(lines) if products is None or line.product in products
    ]
    base = sum(amounts[index].subtotal for index in eligible)
    if coupon["percent_off"] is not None:
        total = round_half_up(Decimal(base) * Decimal(str(coupon["percent_off"])) / 100)
    else:
        total = min(coupon["amount_off"], base)
    shares = _allocate(total, [amounts[index].subtotal for index in eligible])
    for index, share in zip(eligible, shares, strict=True):
        amounts[index].discount = share
        amounts[index].discounts = [{"amount": share, "discount": discount}]


def _allocate(total: int, weights: list[int]) -> list[int]:
    """Split `total` in proportion to `weights`, largest remainders first, summing exactly."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    exact = [Decimal(total) * weight / whole for weight in weights]
    shares = [int(value) for value in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    for index in by_remainder[: total - sum(shares)]:
        shares[index] += 1
    return shares


def _apply_taxes(amounts: Amounts, rates: list[dict[str, Any]]) -> None:
    base = amounts.subtotal - amounts.discount
    inclusive = [rate for rate in rates if rate["inclusive"]]
    inclusive_percent = sum((_percent(rate) for rate in inclusive), Decimal(0))
    carved = round_half_up(Decimal(base) * inclusive_percent / (100 + inclusive_percent))
    net = base - carved
    shares = _allocate(carved, [round_half_up(_percent(rate) * 10_000) for rate in inclusive])
    for rate, share in zip(inclusive, shares, strict=True):
        amounts.inclusive_tax += share
        amounts.taxes.append(_tax(share, rate, net))
    for rate in rates:
        if not rate["inclusive"]:
            tax = round_half_up(Decimal(base) * _percent(rate) / 100)
            amounts.exclusive_tax += tax
            amounts.taxes.append(_tax(tax, rate, base))


def _apply_automatic(amounts: Amounts, automatic: AutomaticRate, behavior: str) -> None:
    rate = automatic(behavior == "inclusive")
    if rate is not None:
        _apply_taxes(amounts, [rate])


def _percent(rate: dict[str, Any]) -> Decimal:
    return Decimal(str(rate["percentage"]))


def _tax(amount: int, rate: dict[str, Any], taxable: int) -> dict[str, Any]:
    return {
        "amount": amount,
        "rate": rate,
        "taxability_reason": "standard_rated",
        "taxable_amount": taxable,
    }
