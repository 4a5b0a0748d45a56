"""PaymentIntents: `GET /v1/payment_intents/{intent}`, capture, cancel, and the lapse of an
authorisation (https://docs.stripe.com/payments/place-a-hold-on-a-payment-method).

- `POST …/capture` takes a `requires_capture` PaymentIntent's money: `amount_to_capture` (at
  most `amount_capturable`, at least the currency's minimum charge; all of it by default), once:
  the rest of the authorisation is released (`refunds.release`), as `final_capture`'s default
  says. `final_capture=false` asks for multicapture, which the sandbox's cards do not offer, so
  it is refused. Events: `charge.captured`, then `payment_intent.succeeded`.
- `POST …/cancel` (`cancellation_reason`) releases an authorisation, or gives up a payment whose
  bank debit failed; Stripe's other cancellable states (`requires_confirmation`,
  `requires_action`, some `processing` payments) do not occur here. Event
  `payment_intent.canceled`.
- An authorisation not captured by the charge's `payment_method_details.card.capture_before`
  (7 days after it was made, on the sandbox clock) lapses (`lapse_due`): the PaymentIntent is
  `canceled` with `cancellation_reason: automatic`, its charge refunded (`reason:
  expired_uncaptured_charge`). Events `charge.expired` and `payment_intent.canceled`.

A capture or cancel in the wrong state is Stripe's `payment_intent_unexpected_state`; too large
an amount `amount_too_large`, too small `amount_too_small` (on `amount_to_capture`). These
refusals are saved under the request's idempotency key, as Stripe saves what an endpoint refuses
once it has begun. A capture or refund "made in the Dashboard" is the same API request made with
any other test key: its events reach the endpoints like the service's own.
"""

from typing import Any

from .api import ApiRequest, Expander, Route, reference
from .charge_limits import minimum_charge
from .errors import StripeError, invalid, resource_missing
from .events import emit
from .params import EXPAND, Boolean, Choice, Integer, Metadata, Text, hash_of, updated_metadata
from .payment_objects import CHARGE, PAYMENT_INTENT
from .refunds import release
from .store import Store

CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")
# The states a PaymentIntent can be cancelled in, of those a sandbox payment reaches.
_CANCELLABLE = ("requires_capture", "requires_payment_method")
# A card charge's statement descriptor is the account's, with at most a suffix
# (https://docs.stripe.com/get-started/account/statement-descriptors#dynamic).
_SUFFIX_MAX_LENGTH = 22

_RETRIEVE = hash_of(client_secret=Text(), expand=EXPAND)
_CAPTURE = hash_of(
    amount_to_capture=Integer(0),
    expand=EXPAND,
    final_capture=Boolean(),
    metadata=Metadata(),
    statement_descriptor=Text(),
    statement_descriptor_suffix=Text(_SUFFIX_MAX_LENGTH),
)
_CANCEL = hash_of(cancellation_reason=Choice(CANCELLATION_REASONS), expand=EXPAND)


def _find(request: ApiRequest) -> dict[str, Any]:
    intent: dict[str, Any] | None = request.store.get(PAYMENT_INTENT, request.path["intent"])
    if intent is None:
        raise resource_missing("payment_intent", request.path["intent"], "intent", status=404)
    return intent


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    params = _RETRIEVE.parse(request.params)
    return request.render(_find(request), params.get("expand", []))


def _capture(request: ApiRequest) -> dict[str, Any]:
    params = _CAPTURE.parse(request.params)
    if params.get("final_capture") is False:
        raise invalid(
            "This PaymentIntent's card does not support multicapture, so `final_capture` "
            "cannot be false.",
            "final_capture",
        )
    if "statement_descriptor" in params:
        raise invalid(
            "A card charge cannot set `statement_descriptor`; use "
            "`statement_descriptor_suffix` instead.",
            "statement_descriptor",
        )
    store, now = request.store, request.clock.now()
    intent = _find(request)
    _expect(intent, "captured", ("requires_capture",))
    amount = params.get("amount_to_capture", intent["amount_capturable"])
    _check_amount(intent, amount)
    charge = store.get(CHARGE, intent["latest_charge"])
    charge["captured"], charge["amount_captured"] = True, amount
    if "statement_descriptor_suffix" in params:
        charge["statement_descriptor_suffix"] = params["statement_descriptor_suffix"]
        intent["statement_descriptor_suffix"] = params["statement_descriptor_suffix"]
    store.replace(CHARGE, charge["id"], charge)
    intent["amount_received"], intent["amount_capturable"] = amount, 0
    intent["status"] = "succeeded"
    if "metadata" in params:
        metadata = updated_metadata(intent["metadata"], request.params["metadata"])
        intent["metadata"] = metadata
    store.replace(PAYMENT_INTENT, intent["id"], intent)
    if amount < charge["amount"]:
        release(store, now, charge, charge["amount"] - amount, None, request)
    ids = (request.request_id, request.idempotency_key)
    emit(store, now, "charge.captured", charge, *ids)
    emit(store, now, "payment_intent.succeeded", intent, *ids)
    return request.render(intent, params.get("expand", []))


def _check_amount(intent: dict[str, Any], amount: int) -> None:
    capturable, currency = intent["amount_capturable"], intent["currency"]
    if amount > capturable:
        raise StripeError(
            f"The amount to capture ({amount}) is greater than the amount capturable "
            f"({capturable}).",
            code="amount_too_large",
            param="amount_to_capture",
            saved=True,
        )
    minimum = minimum_charge(currency)
    if amount < minimum:
        raise StripeError(
            f"The amount to capture ({amount}) is less than the minimum charge in "
            f"{currency.upper()} ({minimum}).",
            code="amount_too_small",
            param="amount_to_capture",
            saved=True,
        )


def _cancel(request: ApiRequest) -> dict[str, Any]:
    params = _CANCEL.parse(request.params)
    intent = _find(request)
    _expect(intent, "canceled", _CANCELLABLE)
    _cancel_intent(
        request.store, request.clock.now(), intent, params.get("cancellation_reason"), request
    )
    return request.render(intent, params.get("expand", []))


def _cancel_intent(
    store: Store,
    now: int,
    intent: dict[str, Any],
    reason: str | None,
    request: ApiRequest | None = None,
) -> None:
    charge = store.get(CHARGE, intent["latest_charge"])
    intent["status"], intent["canceled_at"] = "canceled", now
    intent["cancellation_reason"], intent["amount_capturable"] = reason, 0
    store.replace(PAYMENT_INTENT, intent["id"], intent)
    ids = (None, None) if request is None else (request.request_id, request.idempotency_key)
    if charge["status"] == "succeeded" and not charge["captured"]:
        release_reason = "expired_uncaptured_charge" if reason == "automatic" else None
        release(store, now, charge, charge["amount"], release_reason, request)
        if reason == "automatic":
            emit(store, now, "charge.expired", charge)
    emit(store, now, "payment_intent.canceled", intent, *ids)


def _expect(intent: dict[str, Any], done: str, states: tuple[str, ...]) -> None:
    if intent["status"] not in states:
        raise StripeError(
            f"This PaymentIntent could not be {done} because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may be "
            f"{done}: {', '.join(states)}.",
            code="payment_intent_unexpected_state",
            saved=True,
        )


def lapse_due(store: Store, now: int) -> None:
    """Cancel every authorisation whose charge's `capture_before` has passed."""
    due = [
        intent
        for intent in store.all(PAYMENT_INTENT)
        if intent["status"] == "requires_capture" and _capture_before(store, intent) <= now
    ]
    for intent in due:
        _cancel_intent(store, now, intent, "automatic")


def _capture_before(store: Store, intent: dict[str, Any]) -> int:
    charge = store.get(CHARGE, intent["latest_charge"])
    return int(charge["payment_method_details"]["card"]["capture_before"])


ROUTES = [
    Route("GET", "/v1/payment_intents/{intent}", _retrieve),
    Route("POST", "/v1/payment_intents/{intent}/capture", _capture),
    Route("POST", "/v1/payment_intents/{intent}/cancel", _cancel),
]
EXPANDERS: dict[tuple[str, str], Expander] = {
    (PAYMENT_INTENT, "customer"): reference("customer", "customer"),
    (PAYMENT_INTENT, "latest_charge"): reference(CHARGE, "latest_charge"),
}
