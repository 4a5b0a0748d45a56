"""What a completed Checkout Session points at: its PaymentIntent, Subscription or SetupIntent.

They are kept so that `expand[]=payment_intent` (and the others) finds them, in a reduced shape:
the ids, amounts, customer, metadata and status that an integration reads, not the whole Stripe
object, and without routes of their own. Statuses follow the payment: a card payment succeeds at
once; a bank debit is `processing` (PaymentIntent) or `incomplete` (Subscription) until it settles.
"""

from typing import Any

from .store import Store, new_id

PAYMENT_INTENT = "payment_intent"
SUBSCRIPTION = "subscription"
SETUP_INTENT = "setup_intent"

_DAY = 24 * 60 * 60


def create_payment_intent(
    store: Store, now: int, session: dict[str, Any], data: dict[str, Any], paid: bool
) -> str:
    """`data` is the session's `payment_intent_data`."""
    amount = session["amount_total"]
    intent = {
        "id": new_id("pi_"),
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if paid else 0,
        "capture_method": data.get("capture_method", "automatic_async"),
        "created": now,
        "currency": session["currency"],
        "customer": session["customer"],
        "description": data.get("description"),
        "livemode": False,
        "metadata": data.get("metadata", {}),
        "payment_method_types": session["payment_method_types"],
        "receipt_email": data.get("receipt_email"),
        "status": "succeeded" if paid else "processing",
    }
    store.insert(PAYMENT_INTENT, intent["id"], intent)
    return str(intent["id"])


def create_subscription(
    store: Store, now: int, session: dict[str, Any], data: dict[str, Any], paid: bool
) -> str:
    """`data` is the session's `subscription_data`, whose trial starts now."""
    trial_end = data.get("trial_end")
    if "trial_period_days" in data:
        trial_end = now + data["trial_period_days"] * _DAY
    status = "trialing" if trial_end is not None else "active" if paid else "incomplete"
    subscription = {
        "id": new_id("sub_"),
        "object": "subscription",
        "cancel_at_period_end": False,
        "created": now,
        "currency": session["currency"],
        "customer": session["customer"],
        "description": data.get("description"),
        "livemode": False,
        "metadata": data.get("metadata", {}),
        "status": status,
        "trial_end": trial_end,
        "trial_start": None if trial_end is None else now,
    }
    store.insert(SUBSCRIPTION, subscription["id"], subscription)
    return str(subscription["id"])


def create_setup_intent(
    store: Store, now: int, session: dict[str, Any], data: dict[str, Any]
) -> str:
    """`data` is the session's `setup_intent_data`."""
    intent = {
        "id": new_id("seti_"),
        "object": "setup_intent",
        "created": now,
        "customer": session["customer"],
        "description": data.get("description"),
        "livemode": False,
        "metadata": data.get("metadata", {}),
        "payment_method_types": session["payment_method_types"],
        "status": "succeeded",
        "usage": "off_session",
    }
    store.insert(SETUP_INTENT, intent["id"], intent)
    return str(intent["id"])


def settle_payment(store: Store, session: dict[str, Any], succeeded: bool) -> None:
    """A bank debit's outcome reaches the PaymentIntent or Subscription it paid for."""
    if session["payment_intent"] is not None:
        intent = store.get(PAYMENT_INTENT, session["payment_intent"])
        intent["status"] = "succeeded" if succeeded else "requires_payment_method"
        intent["amount_received"] = intent["amount"] if succeeded else 0
        store.replace(PAYMENT_INTENT, intent["id"], intent)
    if session["subscription"] is not None and succeeded:
        subscription = store.get(SUBSCRIPTION, session["subscription"])
        if subscription["status"] == "incomplete":
            subscription["status"] = "active"
            store.replace(SUBSCRIPTION, subscription["id"], subscription)
