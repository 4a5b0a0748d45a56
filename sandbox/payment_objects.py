"""What a completed Checkout Session points at (its PaymentIntent and Charge, Subscription or
SetupIntent), and the shapes of the objects that move money after checkout.

A payment-mode session that charges something gets a PaymentIntent with one Charge, in the
shapes of stripe-python 16.1.0's `PaymentIntent` and `Charge`, paid by a test card (a Visa
ending 4242) or, for **Pay by bank debit**, a bank account (`sepa_debit` in euros,
`us_bank_account` in any other currency: the sandbox's choice):

- a card payment with `capture_method` `automatic` or `automatic_async` (the default) is
  `succeeded`, its charge captured; with `manual` it is `requires_capture` for
  `amount_capturable`, its charge authorised but not captured, until the capture, a cancel or
  the lapse of the authorisation 7 days later
  (https://docs.stripe.com/payments/place-a-hold-on-a-payment-method; the charge's
  `payment_method_details.card.capture_before` says when: `payment_intents.py`);
- a bank debit is `processing`, its charge `pending`, until it settles: `succeeded`, or
  `requires_payment_method` with the failed charge as `latest_charge` and `last_payment_error`.
  Bank debits cannot be captured manually, so Checkout offers them no manual-capture session
  (https://docs.stripe.com/payments/payment-methods/payment-method-support), and the sandbox
  refuses to pay one that way.

Each change emits Stripe's events: `payment_intent.created`, `charge.succeeded` or
`charge.pending`, then `payment_intent.succeeded`, `payment_intent.amount_capturable_updated` or
`payment_intent.processing`; a settlement `charge.succeeded` and `payment_intent.succeeded`, or
`charge.failed` and `payment_intent.payment_failed`.

The Subscription and SetupIntent are kept in a reduced shape (ids, amounts, customer, metadata,
status) without routes of their own, so that `expand[]` finds them. Fields the sandbox does not
model (Connect, Radar, balance transactions, receipts) are null.
"""

import datetime
from typing import Any

from .errors import StripeError
from .events import emit
from .store import Store, new_id

PAYMENT_INTENT = "payment_intent"
CHARGE = "charge"
REFUND = "refund"
DISPUTE = "dispute"
SUBSCRIPTION = "subscription"
SETUP_INTENT = "setup_intent"

DAY = 24 * 60 * 60
# An online card authorisation is held for 7 days, then released
# (https://docs.stripe.com/payments/place-a-hold-on-a-payment-method).
AUTHORIZATION_SECONDS = 7 * DAY
# The test card every card payment is made with, and how long it stays valid.
_CARD_LAST4 = "4242"
_CARD_YEARS = 3
_BANK_LAST4 = "3000"


def check_capture_method(params: dict[str, Any], paid: bool) -> None:
    """Refuse a bank debit for a manual-capture session, before the session changes."""
    capture = params.get("payment_intent_data", {}).get("capture_method")
    if capture == "manual" and not paid:
        raise StripeError(
            "This Checkout Session captures its payment manually "
            "(`payment_intent_data[capture_method]=manual`), which bank debits do not support.",
            param="payment_status",
        )


def create_payment_intent(
    store: Store, now: int, session: dict[str, Any], data: dict[str, Any], paid: bool
) -> str:
    """The PaymentIntent and Charge of a completed session, with their events; `data` is the
    session's `payment_intent_data`, `paid` false for a bank debit still settling."""
    capture_method = data.get("capture_method", "automatic_async")
    manual = paid and capture_method == "manual"
    intent_id = new_id("pi_")
    amount = session["amount_total"]
    charge = _charge(now, session, data, intent_id, paid, manual)
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "allowed_payment_method_types": None,
        "amount": amount,
        "amount_capturable": amount if manual else 0,
        "amount_details": None,
        "amount_received": amount if paid and not manual else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": f"{intent_id}_secret_{new_id('', 25)}",
        "confirmation_method": "automatic",
        "created": now,
        "currency": session["currency"],
        "customer": session["customer"],
        "customer_account": None,
        "description": data.get("description"),
        "excluded_payment_method_types": None,
        "hooks": None,
        "last_payment_error": None,
        "latest_charge": charge["id"],
        "livemode": False,
        "managed_payments": None,
        "metadata": data.get("metadata", {}),
        "next_action": None,
        "on_behalf_of": None,
        "payment_details": None,
        "payment_method": charge["payment_method"],
        "payment_method_configuration_details": None,
        "payment_method_options": None,
        "payment_method_types": session["payment_method_types"],
        "payment_record": None,
        "presentment_details": session["presentment_details"],
        "processing": None,
        "receipt_email": data.get("receipt_email"),
        "review": None,
        "setup_future_usage": data.get("setup_future_usage"),
        "shipping": charge["shipping"],
        "source": None,
        "statement_descriptor": data.get("statement_descriptor"),
        "statement_descriptor_suffix": data.get("statement_descriptor_suffix"),
        "status": "requires_capture" if manual else "succeeded" if paid else "processing",
        "transfer_data": None,
        "transfer_group": None,
    }
    store.insert(PAYMENT_INTENT, intent_id, intent)
    store.insert(CHARGE, charge["id"], charge)
    emit(store, now, "payment_intent.created", intent)
    emit(store, now, "charge.succeeded" if paid else "charge.pending", charge)
    outcome = "amount_capturable_updated" if manual else "succeeded" if paid else "processing"
    emit(store, now, f"payment_intent.{outcome}", intent)
    return intent_id


def _charge(
    now: int,
    session: dict[str, Any],
    data: dict[str, Any],
    intent_id: str,
    paid: bool,
    manual: bool,
) -> dict[str, Any]:
    amount = session["amount_total"]
    details = session["customer_details"] or {}
    shipping = (session["collected_information"] or {}).get("shipping_details")
    method = _card(now, amount, manual) if paid else _bank_debit(session["currency"])
    return {
        "id": new_id("ch_"),
        "object": "charge",
        "amount": amount,
        "amount_captured": 0 if manual else amount,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "authorization_code": None,
        "balance_transaction": None,
        "billing_details": {
            "address": details.get("address"),
            "email": details.get("email"),
            "name": details.get("name"),
            "phone": details.get("phone"),
            "tax_id": None,
        },
        "calculated_statement_descriptor": None,
        "captured": not manual,
        "created": now,
        "currency": session["currency"],
        "customer": session["customer"],
        "description": data.get("description"),
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "level3": None,
        "livemode": False,
        "metadata": data.get("metadata", {}),
        "on_behalf_of": None,
        "outcome": _outcome(paid),
        "paid": paid,
        "payment_intent": intent_id,
        "payment_method": new_id("pm_"),
        "payment_method_details": method,
        "presentment_details": session["presentment_details"],
        "radar_options": None,
        "receipt_email": data.get("receipt_email"),
        "receipt_number": None,
        "receipt_url": None,
        # `refunds` is there only when expanded, as on Stripe since API version 2022-11-15
        # (https://docs.stripe.com/upgrades#2022-11-15).
        "refunded": False,
        "review": None,
        "shipping": None
        if shipping is None
        else {
            "address": shipping["address"],
            "carrier": None,
            "name": shipping["name"],
            "phone": None,
            "tracking_number": None,
        },
        "source": None,
        "source_transfer": None,
        "statement_descriptor": data.get("statement_descriptor"),
        "statement_descriptor_suffix": data.get("statement_descriptor_suffix"),
        "status": "succeeded" if paid else "pending",
        "transfer": None,
        "transfer_data": None,
        "transfer_group": None,
    }


def _outcome(paid: bool) -> dict[str, Any] | None:
    """A card payment's authorisation; a bank debit has no outcome until it settles."""
    if not paid:
        return None
    return {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "approved_by_network",
        "reason": None,
        "risk_level": "normal",
        "risk_score": None,
        "rule": None,
        "seller_message": "Payment complete.",
        "type": "authorized",
    }


def _card(now: int, amount: int, manual: bool) -> dict[str, Any]:
    expires = datetime.datetime.fromtimestamp(now, datetime.UTC).year + _CARD_YEARS
    return {
        "card": {
            "amount_authorized": amount,
            "authorization_code": None,
            "brand": "visa",
            "capture_before": now + AUTHORIZATION_SECONDS if manual else None,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": "US",
            "description": None,
            "electronic_commerce_indicator": None,
            "exp_month": 12,
            "exp_year": expires,
            "extended_authorization": {"status": "disabled"},
            "fingerprint": "SandboxVisa4242",
            "funding": "credit",
            "iin": None,
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "issuer": None,
            "last4": _CARD_LAST4,
            "mandate": None,
            "moto": None,
            "multicapture": {"status": "unavailable"},
            "network": "visa",
            "network_token": {"used": False},
            "network_transaction_id": None,
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "setup_credential_usage": None,
            "stored_credential_usage": None,
            "three_d_secure": None,
            "transaction_link_id": None,
            "wallet": None,
        },
        "type": "card",
    }


def _bank_debit(currency: str) -> dict[str, Any]:
    if currency == "eur":
        return {
            "sepa_debit": {
                "bank_code": "37040044",
                "branch_code": None,
                "country": "DE",
                "expected_debit_date": None,
                "fingerprint": "SandboxSepa3000",
                "last4": _BANK_LAST4,
                "mandate": None,
            },
            "type": "sepa_debit",
        }
    return {
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": "individual",
            "account_type": "checking",
            "bank_name": "STRIPE TEST BANK",
            "expected_debit_date": None,
            "fingerprint": "SandboxBank3000",
            "last4": _BANK_LAST4,
            "mandate": None,
            "payment_reference": None,
            "routing_number": "110000000",
        },
    }


def is_card(charge: dict[str, Any]) -> bool:
    return bool(charge["payment_method_details"]["type"] == "card")


def create_subscription(
    store: Store, now: int, session: dict[str, Any], data: dict[str, Any], paid: bool
) -> str:
    """`data` is the session's `subscription_data`, whose trial starts now."""
    trial_end = data.get("trial_end")
    if "trial_period_days" in data:
        trial_end = now + data["trial_period_days"] * DAY
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


def settle_payment(store: Store, now: int, session: dict[str, Any], succeeded: bool) -> None:
    """A bank debit's outcome reaches the PaymentIntent and its Charge, or the Subscription."""
    if session["payment_intent"] is not None:
        intent = store.get(PAYMENT_INTENT, session["payment_intent"])
        charge = store.get(CHARGE, intent["latest_charge"])
        charge["status"] = "succeeded" if succeeded else "failed"
        charge["paid"] = succeeded
        intent["amount_received"] = intent["amount"] if succeeded else 0
        intent["status"] = "succeeded" if succeeded else "requires_payment_method"
        if not succeeded:
            _fail(intent, charge)
        store.replace(CHARGE, charge["id"], charge)
        store.replace(PAYMENT_INTENT, intent["id"], intent)
        emit(store, now, "charge.succeeded" if succeeded else "charge.failed", charge)
        outcome = "succeeded" if succeeded else "payment_failed"
        emit(store, now, f"payment_intent.{outcome}", intent)
    if session["subscription"] is not None and succeeded:
        subscription = store.get(SUBSCRIPTION, session["subscription"])
        if subscription["status"] == "incomplete":
            subscription["status"] = "active"
            store.replace(SUBSCRIPTION, subscription["id"], subscription)


def _fail(intent: dict[str, Any], charge: dict[str, Any]) -> None:
    """The bank refused the debit: Stripe's `insufficient_funds` for a test account."""
    message = "The customer's account has insufficient funds to cover this payment."
    charge["captured"], charge["amount_captured"] = False, 0
    charge["failure_code"], charge["failure_message"] = "insufficient_funds", message
    charge["outcome"] = {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "declined_by_network",
        "reason": "insufficient_funds",
        "risk_level": "normal",
        "risk_score": None,
        "rule": None,
        "seller_message": "The bank returned the debit.",
        "type": "issuer_declined",
    }
    intent["last_payment_error"] = {
        "advice_code": None,
        "charge": charge["id"],
        "code": "insufficient_funds",
        "decline_code": None,
        "doc_url": "https://stripe.com/docs/error-codes/insufficient-funds",
        "message": message,
        "network_advice_code": None,
        "network_decline_code": None,
        "param": None,
        "payment_method_type": None,
        "type": "invalid_request_error",
    }
