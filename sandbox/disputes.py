"""Disputes: a cardholder's chargeback of a captured charge, opened and decided through the
control API, read and answered through `/v1/disputes` (https://docs.stripe.com/disputes/how-disputes-work).

- Opened (`open_dispute`, `POST /_sandbox/charges/{charge}/dispute` with `amount`, by default
  what was not refunded, and `reason`, by default `general`): `needs_response`, evidence due in
  `EVIDENCE_DAYS`; the charge is `disputed` and can no longer be refunded
  (`is_charge_refundable: false`, `refunds.py` refuses with `charge_disputed`). As on Stripe,
  the disputed amount is withdrawn from the balance at once (the dispute's first
  `balance_transactions` entry, `reporting_category: dispute`). Events
  `charge.dispute.created` and `charge.dispute.funds_withdrawn`.
- Answered: `POST /v1/disputes/{dispute}` adds text `evidence` and `metadata`; `submit=true`
  hands the evidence in (`under_review`). Event `charge.dispute.updated`.
  `POST /v1/disputes/{dispute}/close` accepts the dispute: `lost`.
- Decided (`close_dispute`, `POST /_sandbox/disputes/{dispute}/close` with `status` `won` or
  `lost`): `charge.dispute.closed`. A won dispute gives the amount back (a second balance
  transaction, `dispute_reversal`, and `charge.dispute.funds_reinstated`) and the charge may be
  refunded again; a lost one keeps it withdrawn for good.

The sandbox models chargebacks only, not inquiries (`warning_*` statuses), appeals or Smart
Disputes; it takes no dispute fee (Stripe's depends on the account's country), and nothing
happens when `due_by` passes: a test decides the dispute.
"""

from typing import Any

from .api import ApiRequest, Expander, Route, reference
from .errors import StripeError, invalid, resource_missing
from .events import emit
from .lists import in_range, paginate
from .params import (
    EXPAND,
    LIST_PARAMS,
    Boolean,
    Choice,
    Integer,
    Metadata,
    Text,
    hash_of,
    updated_metadata,
)
from .payment_objects import CHARGE, DAY, DISPUTE, PAYMENT_INTENT
from .refunds import dispute_of, remaining
from .store import Store, new_id

# Dispute.reason in stripe-python 16.1.0.
REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
# The sandbox's evidence deadline: the card networks set it, typically one to three weeks.
EVIDENCE_DAYS = 14
# The evidence that is text (the rest names uploaded files, which the sandbox does not have);
# each at most 20,000 characters (https://docs.stripe.com/api/disputes/update).
EVIDENCE_TEXT_MAX_LENGTH = 20_000
_EVIDENCE_TEXT = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
)
_EVIDENCE_FILES = (
    "cancellation_policy",
    "customer_communication",
    "customer_signature",
    "duplicate_charge_documentation",
    "receipt",
    "refund_policy",
    "service_documentation",
    "shipping_documentation",
    "uncategorized_file",
)
OPEN_PARAMS = hash_of(amount=Integer(1), reason=Choice(REASONS))
CLOSE_PARAMS = hash_of("status", status=Choice(("lost", "won")))
_OPEN = ("needs_response", "under_review")

_RETRIEVE = hash_of(expand=EXPAND)
_LIST = hash_of(**LIST_PARAMS, charge=Text(), payment_intent=Text())
_FILTERS = ("charge", "payment_intent")
_UPDATE = hash_of(
    evidence=hash_of(**{name: Text(EVIDENCE_TEXT_MAX_LENGTH) for name in _EVIDENCE_TEXT}),
    expand=EXPAND,
    metadata=Metadata(),
    submit=Boolean(),
)


def open_dispute(store: Store, now: int, charge_id: str, params: dict[str, Any]) -> Any:
    """A chargeback of a captured charge; `params` are parsed with `OPEN_PARAMS`."""
    charge = store.get(CHARGE, charge_id)
    if charge is None:
        raise resource_missing("charge", charge_id, "charge", status=404)
    if charge["status"] != "succeeded" or not charge["captured"]:
        raise invalid(f"Only a captured charge can be disputed; {charge_id} is not.")
    if dispute_of(store, charge_id) is not None:
        raise invalid(f"Charge {charge_id} has already been disputed.")
    amount = params.get("amount", remaining(charge))
    if not 0 < amount <= remaining(charge):
        raise invalid(
            f"A dispute of {charge_id} can be for at most what was not refunded, "
            f"{remaining(charge)}.",
            "amount",
        )
    dispute = _dispute(now, charge, amount, params.get("reason", "general"))
    store.insert(DISPUTE, dispute["id"], dispute)
    charge["disputed"] = True
    store.replace(CHARGE, charge_id, charge)
    emit(store, now, "charge.dispute.created", dispute)
    emit(store, now, "charge.dispute.funds_withdrawn", dispute)
    return dispute


def close_dispute(store: Store, now: int, dispute_id: str, status: str) -> Any:
    """The card network's decision, `won` or `lost`."""
    dispute = _open_dispute(store, dispute_id)
    dispute["status"] = status
    if status == "won":
        dispute["balance_transactions"].append(
            _movement(now, dispute, dispute["amount"], "Chargeback reversal", "dispute_reversal")
        )
        dispute["is_charge_refundable"] = True
    store.replace(DISPUTE, dispute_id, dispute)
    emit(store, now, "charge.dispute.closed", dispute)
    if status == "won":
        emit(store, now, "charge.dispute.funds_reinstated", dispute)
    return dispute


def _open_dispute(store: Store, dispute_id: str) -> Any:
    dispute = store.get(DISPUTE, dispute_id)
    if dispute is None:
        raise resource_missing("dispute", dispute_id, "dispute", status=404)
    if dispute["status"] not in _OPEN:
        raise StripeError(
            f"This dispute is already closed: its status is `{dispute['status']}`.",
            saved=True,
        )
    return dispute


def _dispute(now: int, charge: dict[str, Any], amount: int, reason: str) -> dict[str, Any]:
    dispute_id = new_id("du_")
    dispute = {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {
            **dict.fromkeys(_EVIDENCE_TEXT + _EVIDENCE_FILES),
            "appeal": None,
            "enhanced_evidence": {},
        },
        "evidence_details": {
            "due_by": now + EVIDENCE_DAYS * DAY,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "submission_method": "not_submitted",
        },
        "intended_submission_method": None,
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": None,
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": None},
            "type": "card",
        },
        "reason": reason,
        "status": "needs_response",
    }
    dispute["balance_transactions"].append(
        _movement(now, dispute, -amount, "Chargeback withdrawal", "dispute")
    )
    return dispute


def _movement(
    now: int, dispute: dict[str, Any], amount: int, what: str, category: str
) -> dict[str, Any]:
    """A balance transaction of the dispute: the amount taken from or given back to the
    balance, with no fee."""
    return {
        "id": new_id("txn_"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": now,
        "balance_type": "payments",
        "created": now,
        "currency": dispute["currency"],
        "description": f"{what} for {dispute['charge']}",
        "exchange_rate": None,
        "fee": 0,
        "fee_details": [],
        "net": amount,
        "reporting_category": category,
        "source": dispute["id"],
        "status": "available",
        "type": "adjustment",
    }


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    params = _RETRIEVE.parse(request.params)
    dispute = request.store.get(DISPUTE, request.path["dispute"])
    if dispute is None:
        raise resource_missing("dispute", request.path["dispute"], "dispute", status=404)
    return request.render(dispute, params.get("expand", []))


def _list(request: ApiRequest) -> dict[str, Any]:
    params = _LIST.parse(request.params)

    def keep(dispute: dict[str, Any]) -> bool:
        return all(
            name not in params or dispute[name] == params[name] for name in _FILTERS
        ) and in_range(dispute["created"], params.get("created"))

    disputes = list(request.store.all(DISPUTE))[::-1]
    page = paginate(disputes, params, "/v1/disputes", "dispute", keep)
    return request.render(page, params.get("expand", []))


def _update(request: ApiRequest) -> dict[str, Any]:
    params = _UPDATE.parse(request.params)
    store, now = request.store, request.clock.now()
    dispute = _open_dispute(store, request.path["dispute"])
    if dispute["status"] == "under_review" and params.keys() & {"evidence", "submit"}:
        raise StripeError(
            "This dispute's evidence was submitted and is under review; it cannot change.",
            saved=True,
        )
    evidence = params.get("evidence", {})
    dispute["evidence"].update(evidence)
    if "metadata" in params:
        dispute["metadata"] = updated_metadata(dispute["metadata"], request.params["metadata"])
    details = dispute["evidence_details"]
    details["has_evidence"] = details["has_evidence"] or bool(evidence)
    if params.get("submit"):
        dispute["status"] = "under_review"
        details["submission_count"] += 1
        details["submission_method"] = "manual"
    store.replace(DISPUTE, dispute["id"], dispute)
    emit(store, now, "charge.dispute.updated", dispute, *_ids(request))
    return request.render(dispute, params.get("expand", []))


def _close(request: ApiRequest) -> dict[str, Any]:
    params = _RETRIEVE.parse(request.params)
    store, now = request.store, request.clock.now()
    dispute = _open_dispute(store, request.path["dispute"])
    dispute["status"] = "lost"
    store.replace(DISPUTE, dispute["id"], dispute)
    emit(store, now, "charge.dispute.closed", dispute, *_ids(request))
    return request.render(dispute, params.get("expand", []))


def _ids(request: ApiRequest) -> tuple[str, str | None]:
    return request.request_id, request.idempotency_key


ROUTES = [
    Route("GET", "/v1/disputes", _list),
    Route("GET", "/v1/disputes/{dispute}", _retrieve),
    Route("POST", "/v1/disputes/{dispute}", _update),
    Route("POST", "/v1/disputes/{dispute}/close", _close),
]
EXPANDERS: dict[tuple[str, str], Expander] = {
    (DISPUTE, "charge"): reference(CHARGE, "charge"),
    (DISPUTE, "payment_intent"): reference(PAYMENT_INTENT, "payment_intent"),
}
