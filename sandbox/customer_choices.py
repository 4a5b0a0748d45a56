"""What the customer may change on Checkout's page before paying, as Stripe's page lets them:

- a promotion code, typed in when the session has `allow_promotion_codes`
  (https://docs.stripe.com/payments/checkout/discounts#promotion-codes): it must name an active
  promotion code (case-insensitively) that this customer, currency and subtotal may use;
- a quantity, for a line item with `adjustable_quantity[enabled]`, between its `minimum` and
  `maximum` (https://docs.stripe.com/payments/checkout/adjustable-quantity); a line taken down
  to 0 leaves the session's line items, and at least one must stay;
- a shipping option, one of the session's `shipping_options`
  (https://docs.stripe.com/payments/during-payment/charge-shipping).

The hosted page's **Update** form and `POST /_sandbox/checkout/sessions/{id}/pay` take them as
`promotion_code`, `line_items[N][quantity]` (N the line item's position in the session, from 0)
and `shipping_rate` (a `shr_…` id). The session's amounts are computed again at once, as on
Stripe (`recalculation.py`); a choice Stripe would refuse (a code that does not apply, a
quantity out of bounds, a total under the minimum charge) is refused and changes nothing.
"""

from decimal import Decimal
from typing import Any

from .checkout import LINE_ITEMS, SESSION
from .checkout_objects import discount_object
from .customers import CUSTOMER, country_of
from .discounts import (
    PROMOTION_CODE,
    check_minimum,
    coupon_of,
    coupon_usable,
    promotion_code_usable,
)
from .errors import invalid
from .params import Integer, Spec, Text, child, hash_of
from .recalculation import Choices, recalculate, write
from .shipping import SHIPPING_RATE
from .store import Store
from .totals import round_half_up

_QUANTITY = hash_of("quantity", quantity=Integer(0))


class Quantities(Spec):
    """`line_items[N][quantity]` as a form sends it, or `line_items` as a JSON list (an entry
    may be null to leave that line as it is): line item index -> quantity."""

    def coerce(self, value: Any, path: str) -> Any:
        if value == "":
            return {}
        if isinstance(value, list):
            entries = {str(index): entry for index, entry in enumerate(value)}
        elif isinstance(value, dict) and all(key.isdigit() for key in value):
            entries = value
        else:
            raise invalid(f"Invalid array: {path} must be an array of line items", path)
        return {
            int(index): _QUANTITY.coerce(entry, child(path, index))["quantity"]
            for index, entry in entries.items()
            if entry != ""
        }


CHOICE_FIELDS: dict[str, Spec] = {
    "promotion_code": Text(500),
    "line_items": Quantities(),
    "shipping_rate": Text(),
}
CHOICE_PARAMS = hash_of(**CHOICE_FIELDS)


def plan_choices(
    store: Store, now: int, session: dict[str, Any], details: dict[str, Any]
) -> Choices:
    """Check the customer's choices (`details` parsed with `CHOICE_FIELDS`) against the session."""
    choices = Choices()
    items = store.attached(LINE_ITEMS, session["id"])
    for index, quantity in sorted(details.get("line_items", {}).items()):
        choices.quantities[index] = _check_quantity(items, index, quantity)
    if "line_items" in details and not any(
        choices.quantities.get(index, item["quantity"]) for index, item in enumerate(items)
    ):
        raise invalid("At least one line item must keep a quantity above 0.", "line_items")
    if "promotion_code" in details:
        quantities = [choices.quantities.get(i, item["quantity"]) for i, item in enumerate(items)]
        subtotal = sum(
            round_half_up(_unit(item) * quantity)
            for item, quantity in zip(items, quantities, strict=True)
        )
        choices.discount = _promotion(store, now, session, details["promotion_code"], subtotal)
    if "shipping_rate" in details:
        offered = [option["shipping_rate"] for option in session["shipping_options"]]
        if details["shipping_rate"] not in offered:
            raise invalid(
                f"`{details['shipping_rate']}` is not one of this Checkout Session's shipping "
                "options.",
                "shipping_rate",
            )
        choices.shipping_rate = store.get(SHIPPING_RATE, details["shipping_rate"])
    return choices


def apply_choices(store: Store, now: int, session: dict[str, Any], details: dict[str, Any]) -> None:
    """The customer changes the open session on the page; its amounts follow."""
    choices = plan_choices(store, now, session, details)
    customer = None if session["customer"] is None else store.get(CUSTOMER, session["customer"])
    country = country_of(customer)
    write(store, session, recalculate(store, now, session, country, choices), country)
    store.replace(SESSION, session["id"], session)


def _check_quantity(items: list[dict[str, Any]], index: int, quantity: int) -> int:
    param = f"line_items[{index}][quantity]"
    if index >= len(items):
        raise invalid(f"This Checkout Session has no line item at position {index}.", param)
    adjustable = items[index]["adjustable_quantity"]
    if adjustable is None or not adjustable["enabled"]:
        raise invalid("The quantity of this line item cannot be adjusted.", param)
    low, high = adjustable["minimum"], adjustable["maximum"]
    if not low <= quantity <= high:
        raise invalid(f"The quantity must be between {low} and {high}.", param)
    return quantity


def _promotion(
    store: Store, now: int, session: dict[str, Any], text: str, subtotal: int
) -> dict[str, Any]:
    """The Discount of the promotion code the customer typed."""
    param = "promotion_code"
    if not session["allow_promotion_codes"]:
        raise invalid("This Checkout Session does not accept promotion codes.", param)
    matching = [code for code in store.all(PROMOTION_CODE) if code["code"].lower() == text.lower()]
    if not matching:
        raise invalid(f"`{text}` is not a valid promotion code.", param)
    code = next((found for found in matching if found["active"]), matching[0])
    promotion_code_usable(code, now, session["customer"], param)
    currency = session["currency"]
    check_minimum(code, subtotal, currency, param)
    coupon = coupon_of(store, code)
    coupon_usable(coupon, now, currency, param)
    return discount_object(session["id"], session["customer"], coupon, code, now)


def _unit(item: dict[str, Any]) -> Decimal:
    return Decimal(item["price"]["unit_amount_decimal"])
