"""What happens when a customer finishes Checkout, and when a delayed payment settles.

`complete` does what Checkout does when the customer submits the page: the session becomes
`complete` (its `url` gone) with the customer's details; the customer's last choices
(`customer_choices.py`) and the address, which decides the automatic tax, go into the totals,
computed again (`recalculation.py`), and with Adaptive Pricing the chosen currency, or the
address's, into `presentment_details` (`adaptive_pricing.py`); Checkout
creates a Customer when it would (subscription and setup mode, `customer_creation=always`) and
the PaymentIntent, Subscription or SetupIntent; `checkout.session.completed` is emitted.
`payment_status` is `paid` for a card, `unpaid` for a bank debit still settling, and
`no_payment_required` in setup mode or when nothing is due (a free session, a trial).

`settle` is the bank's answer to an `unpaid` session, once: `paid` with
`checkout.session.async_payment_succeeded`, or still `unpaid` with
`checkout.session.async_payment_failed`.
"""

from typing import Any

from .adaptive_pricing import UNITS_PER_USD, convert, presentment
from .buyer_entries import ENTRY_FIELDS, BuyerEntries, collect
from .cards import Card, card_of, charge
from .checkout import CREATE_PARAMS, SESSION, visible_line_items
from .checkout_params import SESSION_CREATE
from .customer_choices import CHOICE_FIELDS, plan_choices
from .customers import (
    ADDRESS,
    CUSTOMER,
    NAME_MAX_LENGTH,
    address,
    country_of,
    create_customer,
)
from .errors import StripeError, invalid
from .events import emit
from .invoices import create_invoice, pay_invoice
from .params import Boolean, Choice, Currency, Email, Text, hash_of
from .payment_objects import (
    CHARGE,
    PAYMENT_INTENT,
    SUBSCRIPTION,
    check_capture_method,
    create_payment_intent,
    create_setup_intent,
    create_subscription,
    settle_payment,
)
from .recalculation import recalculate, write
from .saved_payment_methods import PAYMENT_METHOD, save_card, saved_card
from .store import Store
from .tax_settings import calculation_fails

# Attachment keyed by session id: `pending` while a bank debit settles, then its outcome.
ASYNC_PAYMENT = "checkout.session.async_payment"

PAY_PARAMS = hash_of(
    **ADDRESS.fields,
    email=Email(),
    name=Text(NAME_MAX_LENGTH),
    payment_status=Choice(("paid", "unpaid")),
    presentment_currency=Currency(),
    card_number=Text(),
    payment_method=Text(),
    save_payment_method=Boolean(),
    three_d_secure=Choice(("complete", "fail")),
    **ENTRY_FIELDS,
    **CHOICE_FIELDS,
)
SETTLE_PARAMS = hash_of("outcome", outcome=Choice(("succeeded", "failed")))


def complete(store: Store, now: int, session: dict[str, Any], details: dict[str, Any]) -> None:
    """Complete an open session; `details` are parsed with `PAY_PARAMS`."""
    if session["status"] != "open":
        raise StripeError(
            'Only Checkout Sessions with a status in ["open"] can be completed. This Checkout '
            f"Session has a status of `{session['status']}`."
        )
    params = SESSION_CREATE.parse(store.attached(CREATE_PARAMS, session["id"]))
    customer = None if session["customer"] is None else store.get(CUSTOMER, session["customer"])
    given = address(details) if details.keys() & ADDRESS.fields.keys() else None
    if given is not None and given["country"] is not None:
        given["country"] = given["country"].upper()
    billing = given or (customer or {}).get("address")
    shipping = _shipping_details(session, details, given)
    _check_presentment(session, details.get("presentment_currency"))
    choices = plan_choices(store, now, session, details)
    entries = collect(session, details)
    mode = session["mode"]
    country = _country(shipping, billing) or country_of(customer)
    if session["automatic_tax"]["enabled"] and calculation_fails(store, country):
        raise invalid(
            "Tax could not be calculated for this address. Check the address and try again.",
            "country",
        )
    amounts = None if mode == "setup" else recalculate(store, now, session, country, choices)
    by_card = details.get("payment_status", "paid") == "paid"
    check_capture_method(params, by_card)
    offered = (session["saved_payment_method_options"] or {}).get("payment_method_save")
    if details.get("save_payment_method") and offered != "enabled":
        raise invalid(
            "This Checkout Session does not offer to save the payment method.",
            "save_payment_method",
        )
    card = _charge_card(store, session, details) if by_card else None
    # Every refusal is above: from here on the session changes.
    if amounts is not None:
        write(store, session, amounts, country)
    session["presentment_details"] = _presentment(session, details, country)
    email = details.get("email") or session["customer_email"] or (customer or {}).get("email")
    name = details.get("name") or (customer or {}).get("name")
    if customer is None and (
        mode in ("setup", "subscription") or session["customer_creation"] == "always"
    ):
        data = {"email": email, "name": name, "address": billing, "phone": entries.phone}
        customer = create_customer(store, now, {k: v for k, v in data.items() if v is not None})
        session["customer"] = customer["id"]
    nothing_due = mode == "setup" or session["amount_total"] == 0
    paid = nothing_due or by_card
    session["status"], session["url"] = "complete", None
    session["payment_status"] = (
        "no_payment_required" if nothing_due else "paid" if paid else "unpaid"
    )
    session["customer_details"] = {
        # Checkout collects no billing address in setup mode.
        "address": None if mode == "setup" else billing,
        "business_name": entries.business_name,
        "email": email,
        "individual_name": entries.individual_name,
        "name": name,
        "phone": entries.phone,
        "tax_exempt": (customer or {}).get("tax_exempt", "none"),
        "tax_ids": entries.tax_ids,
    }
    _record_entries(session, entries, shipping)
    _create_payment_objects(store, now, session, params, paid)
    method = None if card is None else _payment_method(store, now, session, params, details, card)
    _describe_objects(store, session, params, method)
    if session["invoice_creation"] is not None and session["invoice_creation"]["enabled"]:
        items = visible_line_items(store, session["id"])
        session["invoice"] = create_invoice(store, now, session, items, paid)
    if not paid:
        store.attach(ASYNC_PAYMENT, session["id"], "pending")
    store.replace(SESSION, session["id"], session)
    emit(store, now, "checkout.session.completed", session)


def settle(store: Store, now: int, session: dict[str, Any], succeeded: bool) -> None:
    """The outcome of the bank debit that an `unpaid` complete session is waiting for."""
    if store.attached(ASYNC_PAYMENT, session["id"]) != "pending":
        raise StripeError(
            "Only complete Checkout Sessions whose delayed payment is still pending can settle. "
            f"This Checkout Session has a status of `{session['status']}` and a payment_status "
            f"of `{session['payment_status']}`."
        )
    store.attach(ASYNC_PAYMENT, session["id"], "succeeded" if succeeded else "failed")
    settle_payment(store, now, session, succeeded)
    if succeeded:
        session["payment_status"] = "paid"
        store.replace(SESSION, session["id"], session)
        if session["invoice"] is not None:
            pay_invoice(store, now, session["invoice"])
    outcome = "succeeded" if succeeded else "failed"
    emit(store, now, f"checkout.session.async_payment_{outcome}", session)


def _create_payment_objects(
    store: Store, now: int, session: dict[str, Any], params: dict[str, Any], paid: bool
) -> None:
    """The PaymentIntent (when something is charged), Subscription or SetupIntent."""
    mode = session["mode"]
    if mode == "payment" and session["amount_total"] > 0:
        data = params.get("payment_intent_data", {})
        session["payment_intent"] = create_payment_intent(store, now, session, data, paid)
    elif mode == "subscription":
        data = params.get("subscription_data", {})
        session["subscription"] = create_subscription(store, now, session, data, paid)
    elif mode == "setup":
        data = params.get("setup_intent_data", {})
        session["setup_intent"] = create_setup_intent(store, now, session, data)


def _charge_card(store: Store, session: dict[str, Any], details: dict[str, Any]) -> Card:
    """The card the customer pays with (one they entered, or a saved one), once its bank and its
    3D Secure challenge let it pay (`cards.py`)."""
    if "payment_method" in details:
        if "card_number" in details:
            raise invalid(
                "Pay with either a saved payment method or a card number, not both.",
                "payment_method",
            )
        card = saved_card(store, session, details["payment_method"])
        charge(session, card, details, saved=True)
        return card
    card = card_of(details)
    charge(session, card, details, saved=False)
    return card


def _record_entries(
    session: dict[str, Any], entries: BuyerEntries, shipping: dict[str, Any] | None
) -> None:
    """What the customer entered, on the session as Stripe shows it once it completes."""
    for custom in session["custom_fields"]:
        custom[custom["type"]]["value"] = entries.custom_values.get(custom["key"])
    session["consent"] = entries.consent
    if shipping is not None or entries.business_name or entries.individual_name:
        session["collected_information"] = {
            "business_name": entries.business_name,
            "individual_name": entries.individual_name,
            "shipping_details": shipping,
        }


def _payment_method(
    store: Store,
    now: int,
    session: dict[str, Any],
    params: dict[str, Any],
    details: dict[str, Any],
    card: Card,
) -> str:
    """The card's PaymentMethod, attached to the Customer when Checkout saves it
    (`saved_payment_methods.py`)."""
    if "payment_method" in details:
        return str(details["payment_method"])
    wants = details.get("save_payment_method", False)
    future = params.get("payment_intent_data", {}).get("setup_future_usage")
    saves = session["customer"] is not None and bool(
        wants or future or session["mode"] in ("setup", "subscription")
    )
    billing = {
        "address": session["customer_details"]["address"],
        "email": session["customer_details"]["email"],
        "name": session["customer_details"]["name"],
        "phone": session["customer_details"]["phone"],
        "tax_id": None,
    }
    owner = session["customer"] if saves else None
    redisplay = "always" if wants else "limited" if saves else "unspecified"
    return str(save_card(store, now, card, owner, redisplay, billing)["id"])


def _describe_objects(
    store: Store, session: dict[str, Any], params: dict[str, Any], method: str | None
) -> None:
    """What `payment_intent_data` and `subscription_data` say beyond what the PaymentIntent and
    the Subscription are created with (`payment_objects.py`), and the card that paid."""
    if session["payment_intent"] is not None:
        data = params.get("payment_intent_data", {})
        intent = store.get(PAYMENT_INTENT, session["payment_intent"])
        intent["payment_method"] = method
        if method is not None and intent["latest_charge"] is not None:
            _charged_with(store, intent["latest_charge"], method)
        for name in ("setup_future_usage", "statement_descriptor", "statement_descriptor_suffix"):
            intent[name] = data.get(name)
        store.replace(PAYMENT_INTENT, intent["id"], intent)
    if session["subscription"] is not None:
        subscription = store.get(SUBSCRIPTION, session["subscription"])
        subscription["default_payment_method"] = method
        subscription["trial_settings"] = params.get("subscription_data", {}).get("trial_settings")
        store.replace(SUBSCRIPTION, subscription["id"], subscription)


def _charged_with(store: Store, charge_id: str, method_id: str) -> None:
    """The charge names the card that paid, as its PaymentIntent does: the same PaymentMethod,
    and the card's brand, number and expiry in its `payment_method_details`."""
    charge = store.get(CHARGE, charge_id)
    card = store.get(PAYMENT_METHOD, method_id)["card"]
    charge["payment_method"] = method_id
    details = charge["payment_method_details"]["card"]
    for name in ("brand", "exp_month", "exp_year", "fingerprint", "last4"):
        details[name] = card[name]
    details["network"] = card["brand"]
    store.replace(CHARGE, charge_id, charge)


def _shipping_details(
    session: dict[str, Any], details: dict[str, Any], given: dict[str, Any] | None
) -> dict[str, Any] | None:
    collection = session["shipping_address_collection"]
    if collection is None or given is None:
        return None
    if given["country"] not in collection["allowed_countries"]:
        allowed = ", ".join(collection["allowed_countries"])
        raise invalid(
            f"This Checkout Session ships only to {allowed}, not to `{given['country']}`.",
            "country",
        )
    return {"address": given, "name": details.get("name")}


def _country(shipping: dict[str, Any] | None, billing: dict[str, Any] | None) -> str | None:
    """Where tax is decided: the shipping address first, as Stripe Tax does."""
    for place in ((shipping or {}).get("address"), billing):
        if place and place.get("country"):
            country: str = place["country"]
            return country.upper()
    return None


def _check_presentment(session: dict[str, Any], chosen: str | None) -> None:
    currency = session["currency"]
    if chosen is None or chosen == currency:
        return
    if not session["adaptive_pricing"]["enabled"]:
        raise invalid(
            "This Checkout Session does not use Adaptive Pricing, so it can only be paid in "
            f"`{currency}`.",
            "presentment_currency",
        )
    if chosen not in UNITS_PER_USD:
        raise invalid(
            f"The sandbox has no exchange rate for `{chosen}`; see sandbox/adaptive_pricing.py.",
            "presentment_currency",
        )


def _presentment(
    session: dict[str, Any], details: dict[str, Any], country: str | None
) -> dict[str, object] | None:
    """Adaptive Pricing's conversion of the final total: into the currency the customer chose,
    else their country's."""
    currency, total = session["currency"], session["amount_total"]
    if not session["adaptive_pricing"]["enabled"] or total is None:
        return None
    if "presentment_currency" in details:
        return convert(total, currency, details["presentment_currency"])
    return presentment(total, currency, country)
