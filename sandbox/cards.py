"""The test cards a customer may enter on the page (or give `/pay` as `card_number`), and 3D
Secure.

The numbers are Stripe's test cards (https://docs.stripe.com/testing#cards,
https://docs.stripe.com/testing#regulatory-cards), spaces allowed:

    4242 4242 4242 4242   succeeds (the page's default, and `/pay`'s when none is given)
    5555 5555 5555 4444   succeeds, Mastercard
    3782 822463 10005     succeeds, American Express
    4000 0000 0000 0002   declined: `card_declined`, `generic_decline`
    4000 0000 0000 9995   declined: `card_declined`, `insufficient_funds`
    4000 0027 6000 3184   always asks the customer to authenticate (3D Secure)
    4000 0025 0000 3155   asks to authenticate, unless it was saved for off-session use

Any other number that passes the Luhn check succeeds as a card of its brand; one that does not
is refused as `incorrect_number`, as Stripe's page refuses it before submitting.

3D Secure (https://docs.stripe.com/payments/3d-secure): Checkout handles it for the shop; the
customer sees a challenge and completes or fails it. A challenge is asked for when the card
requires it or when the session asks for it with
`payment_method_options[card][request_three_d_secure]` `any` or `challenge` (the sandbox
challenges on both: it has no frictionless flow). Completing it pays; failing it leaves the
session open and the page says "We are unable to authenticate your payment method. Please
choose a different payment method and try again.", as Stripe's does, with the error code
`payment_intent_authentication_failure`.
"""

import re
from dataclasses import dataclass
from typing import Any

from .errors import StripeError, invalid, parameter_missing

DEFAULT_CARD = "4242424242424242"
AUTHENTICATION_FAILED = (
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again."
)
_DECLINES = {
    "4000000000000002": ("generic_decline", "Your card was declined."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
}
_ALWAYS_AUTHENTICATE = "4000002760003184"
_AUTHENTICATE_ON_SESSION = "4000002500003155"
_CARD_NUMBER = re.compile(r"\d{13,19}")


@dataclass(frozen=True)
class Card:
    number: str

    @property
    def brand(self) -> str:
        if self.number.startswith(("34", "37")):
            return "amex"
        if self.number[0] == "5" or self.number.startswith("2"):
            return "mastercard"
        if self.number.startswith("6"):
            return "discover"
        return "visa"

    @property
    def last4(self) -> str:
        return self.number[-4:]


def card_of(details: dict[str, Any]) -> Card:
    """The card the customer entered (`card_number`), or the page's default."""
    number = re.sub(r"[\s-]", "", details.get("card_number", DEFAULT_CARD))
    if not _CARD_NUMBER.fullmatch(number) or not _luhn(number):
        raise StripeError(
            "Your card number is incorrect.",
            status=402,
            type="card_error",
            code="incorrect_number",
            param="card_number",
        )
    return Card(number)


def charge(session: dict[str, Any], card: Card, details: dict[str, Any], saved: bool) -> None:
    """Refuse the payment as the card's bank (or its 3D Secure challenge) would; `saved` says
    whether the card was saved for off-session use earlier. `details["three_d_secure"]` is the
    customer's answer to the challenge, when they were given one."""
    if _needs_challenge(session, card, saved):
        answer = details.get("three_d_secure")
        if answer is None:
            raise parameter_missing("three_d_secure")
        if answer == "fail":
            raise StripeError(
                AUTHENTICATION_FAILED,
                status=402,
                type="card_error",
                code="payment_intent_authentication_failure",
            )
    elif "three_d_secure" in details:
        raise invalid("This payment was not asked to authenticate.", "three_d_secure")
    if card.number in _DECLINES:
        reason, message = _DECLINES[card.number]
        raise StripeError(
            message, status=402, type="card_error", code="card_declined", decline_code=reason
        )


def needs_challenge(session: dict[str, Any], details: dict[str, Any]) -> bool:
    """Whether paying with the card in `details` shows the customer a 3D Secure challenge."""
    return _needs_challenge(session, card_of(details), saved=False)


def _needs_challenge(session: dict[str, Any], card: Card, saved: bool) -> bool:
    requested = (session["payment_method_options"].get("card") or {}).get(
        "request_three_d_secure", "automatic"
    )
    if requested in ("any", "challenge"):
        return True
    return card.number == _ALWAYS_AUTHENTICATE or (
        card.number == _AUTHENTICATE_ON_SESSION and not saved
    )


def _luhn(number: str) -> bool:
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(number)):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0
