"""Refunds: `/v1/refunds`, a charge's `refunds`, and the authorisations given back.

`POST /v1/refunds` refunds a captured payment, named by `payment_intent` or `charge` (one of
them), all that remains or an `amount` of it, with a `reason` and `metadata`
(https://docs.stripe.com/api/refunds/create). Stripe's refusals: `charge_already_refunded` when
nothing remains, `amount_too_large` (on `amount`) beyond what remains, `charge_disputed` while a
chargeback is open or after it was lost (https://docs.stripe.com/disputes/how-disputes-work),
and `charge_not_refundable` for a payment that has nothing captured: an authorisation (cancel
the PaymentIntent instead), a bank debit still settling (Stripe would refund it once it
settles; the sandbox refuses, the strict reading) or a failed one. What remains is the charge's
`amount - amount_refunded`; a pending refund counts, a failed one gives its amount back.

A card refund `succeeded` at once, as Stripe's test cards do; a bank debit's is `pending` and
succeeds `BANK_REFUND_SECONDS` later on the sandbox clock (`settle_due`, run every second and on
`/_sandbox/clock/advance`). Any refund a customer was given may fail later, as a refund to a
closed card does (https://docs.stripe.com/refunds#failed-refunds): the control route
`POST /_sandbox/refunds/{refund}/fail` (`failure_reason`) makes it `failed` and the charge's
`amount_refunded` drops by its amount.

An authorisation released in part or whole (the rest of a partial capture, a cancel, a lapse)
is a refund too, as on Stripe: `succeeded` at once, `destination_details.card.type: reversal`,
`reason` `expired_uncaptured_charge` for a lapse and null otherwise, counted in the charge's
`amount_refunded` (a cancelled or lapsed authorisation's charge is `refunded`). So what was
refunded of what was captured is `amount_refunded - (amount - amount_captured)`.

Events: `refund.created` and `charge.refunded` for every refund; `refund.updated` and
`charge.refund.updated` (both with the refund) when one succeeds or fails, and `refund.failed`.
"""

from typing import Any

from .api import ApiRequest, Expander, Route, reference
from .errors import StripeError, invalid, parameter_missing, parameters_exclusive, resource_missing
from .events import emit
from .lists import in_range, list_object, paginate
from .params import EXPAND, LIST_PARAMS, Choice, Email, Integer, Metadata, Text, hash_of
from .payment_objects import CHARGE, DAY, DISPUTE, PAYMENT_INTENT, REFUND, is_card
from .store import Store, new_id

# How long a bank debit's refund stays pending: Stripe publishes no figure, this is the
# sandbox's (ACH and SEPA refunds take days, https://docs.stripe.com/refunds).
BANK_REFUND_SECONDS = 3 * DAY
REASONS = ("duplicate", "fraudulent", "requested_by_customer")
# Refund.failure_reason in stripe-python 16.1.0.
FAILURE_REASONS = (
    "charge_for_pending_refund_disputed",
    "declined",
    "expired_or_canceled_card",
    "insufficient_funds",
    "lost_or_stolen_card",
    "merchant_request",
    "unknown",
)
FAIL_PARAMS = hash_of(failure_reason=Choice(FAILURE_REASONS))
# Attachment keyed by refund id: set on the refunds that release an authorisation.
RELEASE = "refund.release"
# Refunds shown inside an expanded charge; the rest through `/v1/charges/{charge}/refunds`.
_EXPANDED_REFUNDS = 10

_CREATE = hash_of(
    amount=Integer(1),
    charge=Text(),
    expand=EXPAND,
    instructions_email=Email(),
    metadata=Metadata(),
    payment_intent=Text(),
    reason=Choice(REASONS),
)
_LIST = hash_of(**LIST_PARAMS, charge=Text(), payment_intent=Text())
_FILTERS = ("charge", "payment_intent")
_CHARGE_LIST = hash_of(**LIST_PARAMS)
_RETRIEVE = hash_of(expand=EXPAND)


def remaining(charge: dict[str, Any]) -> int:
    """What can still be refunded (or disputed) of a charge."""
    return int(charge["amount"] - charge["amount_refunded"])


def release(
    store: Store,
    now: int,
    charge: dict[str, Any],
    amount: int,
    reason: str | None,
    request: ApiRequest | None = None,
) -> None:
    """Give back `amount` of an authorisation: a refund that has succeeded, with its events."""
    refund = _refund(now, charge, amount, reason, {}, "succeeded", "reversal")
    store.insert(REFUND, refund["id"], refund)
    store.attach(RELEASE, refund["id"], True)
    _take(store, charge, amount)
    _emit_created(store, now, refund, charge, request)


def _create(request: ApiRequest) -> dict[str, Any]:
    params = _CREATE.parse(request.params)
    store, now = request.store, request.clock.now()
    charge = _charge_to_refund(store, params)
    _check(store, charge, params.get("amount"))
    amount = params.get("amount", remaining(charge))
    card = is_card(charge)
    refund = _refund(
        now,
        charge,
        amount,
        params.get("reason"),
        params.get("metadata", {}),
        "succeeded" if card else "pending",
        "refund" if card else None,
    )
    refund["instructions_email"] = params.get("instructions_email")
    store.insert(REFUND, refund["id"], refund)
    _take(store, charge, amount)
    _emit_created(store, now, refund, charge, request)
    return request.render(refund, params.get("expand", []))


def _charge_to_refund(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    if "charge" in params and "payment_intent" in params:
        raise parameters_exclusive("charge", "payment_intent")
    if "payment_intent" in params:
        intent = store.get(PAYMENT_INTENT, params["payment_intent"])
        if intent is None:
            raise resource_missing("payment_intent", params["payment_intent"], "payment_intent")
        charge: dict[str, Any] = store.get(CHARGE, intent["latest_charge"])
        return charge
    if "charge" not in params:
        raise parameter_missing("payment_intent")
    found: dict[str, Any] | None = store.get(CHARGE, params["charge"])
    if found is None:
        raise resource_missing("charge", params["charge"], "charge")
    return found


def _check(store: Store, charge: dict[str, Any], amount: int | None) -> None:
    """Stripe's refusals, made once the request has begun executing (so saved for replay)."""
    left = remaining(charge)
    if left == 0:
        raise StripeError(
            f"Charge {charge['id']} has already been refunded.",
            code="charge_already_refunded",
            saved=True,
        )
    not_refundable = _not_refundable(charge)
    if not_refundable is not None:
        raise StripeError(not_refundable, code="charge_not_refundable", saved=True)
    dispute = dispute_of(store, charge["id"])
    if dispute is not None and not dispute["is_charge_refundable"]:
        raise StripeError(
            f"Charge {charge['id']} has been charged back; the dispute decides its refund.",
            code="charge_disputed",
            saved=True,
        )
    if amount is not None and amount > left:
        raise StripeError(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
            code="amount_too_large",
            param="amount",
            saved=True,
        )


def _not_refundable(charge: dict[str, Any]) -> str | None:
    if charge["status"] == "failed":
        return f"Charge {charge['id']} failed, so there is nothing to refund."
    if charge["status"] == "pending":
        return f"Charge {charge['id']} is still pending; refund it once it has succeeded."
    if not charge["captured"]:
        return (
            f"This uncaptured Charge was created by a PaymentIntent ({charge['payment_intent']}). "
            "You must cancel the PaymentIntent to reverse the authorization instead of refunding "
            "the Charge directly."
        )
    return None


def dispute_of(store: Store, charge_id: str) -> dict[str, Any] | None:
    """The charge's dispute: a charge is disputed at most once."""
    return next((d for d in store.all(DISPUTE) if d["charge"] == charge_id), None)


def _refund(
    now: int,
    charge: dict[str, Any],
    amount: int,
    reason: str | None,
    metadata: dict[str, str],
    status: str,
    card_type: str | None,
) -> dict[str, Any]:
    return {
        "id": new_id("re_"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "customer": None,
        "customer_account": None,
        "description": None,
        "destination_details": None
        if card_type is None
        else {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": None,
                "type": card_type,
            },
            "type": "card",
        },
        "failure_balance_transaction": None,
        "failure_reason": None,
        "instructions_email": None,
        "metadata": metadata,
        "next_action": None,
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "pending_reason": "processing" if status == "pending" else None,
        "presentment_details": None,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


def _take(store: Store, charge: dict[str, Any], amount: int) -> None:
    charge["amount_refunded"] += amount
    charge["refunded"] = remaining(charge) == 0
    store.replace(CHARGE, charge["id"], charge)


def _emit_created(
    store: Store,
    now: int,
    refund: dict[str, Any],
    charge: dict[str, Any],
    request: ApiRequest | None,
) -> None:
    ids = (None, None) if request is None else (request.request_id, request.idempotency_key)
    emit(store, now, "refund.created", refund, *ids)
    emit(store, now, "charge.refunded", charge, *ids)


def settle_due(store: Store, now: int) -> None:
    """Pending refunds whose time has come on the sandbox clock succeed."""
    due = [
        r
        for r in store.all(REFUND)
        if r["status"] == "pending" and r["created"] + BANK_REFUND_SECONDS <= now
    ]
    for refund in due:
        refund["status"], refund["pending_reason"] = "succeeded", None
        store.replace(REFUND, refund["id"], refund)
        _emit_updated(store, now, refund)


def fail(store: Store, now: int, refund_id: str, failure_reason: str) -> dict[str, Any]:
    """A refund the customer's bank or card refused: its amount is the charge's again."""
    refund: dict[str, Any] | None = store.get(REFUND, refund_id)
    if refund is None:
        raise resource_missing("refund", refund_id, "refund", status=404)
    if store.attached(RELEASE, refund_id):
        raise invalid("A released authorisation cannot fail: no money went back to anyone.")
    if refund["status"] not in ("pending", "succeeded"):
        raise invalid(
            f"Only pending or succeeded refunds can fail; this one is `{refund['status']}`."
        )
    refund["status"], refund["pending_reason"] = "failed", None
    refund["failure_reason"] = failure_reason
    store.replace(REFUND, refund_id, refund)
    charge = store.get(CHARGE, refund["charge"])
    _take(store, charge, -refund["amount"])
    _emit_updated(store, now, refund)
    emit(store, now, "refund.failed", refund)
    return refund


def _emit_updated(store: Store, now: int, refund: dict[str, Any]) -> None:
    emit(store, now, "refund.updated", refund)
    emit(store, now, "charge.refund.updated", refund)


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    params = _RETRIEVE.parse(request.params)
    refund = request.store.get(REFUND, request.path["refund"])
    if refund is None:
        raise resource_missing("refund", request.path["refund"], "refund", status=404)
    return request.render(refund, params.get("expand", []))


def _list(request: ApiRequest) -> dict[str, Any]:
    params = _LIST.parse(request.params)

    def keep(refund: dict[str, Any]) -> bool:
        return all(
            name not in params or refund[name] == params[name] for name in _FILTERS
        ) and in_range(refund["created"], params.get("created"))

    refunds = list(request.store.all(REFUND))[::-1]
    page = paginate(refunds, params, "/v1/refunds", "refund", keep)
    return request.render(page, params.get("expand", []))


def _charge_refunds(request: ApiRequest) -> dict[str, Any]:
    params = _CHARGE_LIST.parse(request.params)
    charge_id = request.path["charge"]
    if request.store.get(CHARGE, charge_id) is None:
        raise resource_missing("charge", charge_id, "charge", status=404)
    url = f"/v1/charges/{charge_id}/refunds"
    page = paginate(_of_charge(request.store, charge_id), params, url, "refund")
    return request.render(page, params.get("expand", []))


def _of_charge(store: Store, charge_id: str) -> list[dict[str, Any]]:
    """The charge's refunds, newest first."""
    return [r for r in store.all(REFUND) if r["charge"] == charge_id][::-1]


def _expand_refunds(store: Store, charge: dict[str, Any]) -> Any:
    # Like any list Stripe expands: its first page, with `has_more`
    # (https://docs.stripe.com/expand#lists).
    refunds = _of_charge(store, charge["id"])
    shown = refunds[:_EXPANDED_REFUNDS]
    return list_object(f"/v1/charges/{charge['id']}/refunds", shown, len(refunds) > len(shown))


ROUTES = [
    Route("POST", "/v1/refunds", _create),
    Route("GET", "/v1/refunds", _list),
    Route("GET", "/v1/refunds/{refund}", _retrieve),
    Route("GET", "/v1/charges/{charge}/refunds", _charge_refunds),
]
EXPANDERS: dict[tuple[str, str], Expander] = {
    (CHARGE, "refunds"): _expand_refunds,
    (REFUND, "charge"): reference(CHARGE, "charge"),
    (REFUND, "payment_intent"): reference(PAYMENT_INTENT, "payment_intent"),
}
