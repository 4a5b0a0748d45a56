"""The invoice a payment-mode session with `invoice_creation[enabled]` issues when it completes,
and `GET /v1/invoices/{invoice}`.

Checkout creates the invoice once the payment succeeds, finalised and paid, with the session's
line items, amounts and `invoice_data` (https://docs.stripe.com/payments/checkout/receipts#paid-invoices);
a delayed payment's invoice is `open` until the payment settles, and then `paid`. The session's
`invoice` points at it. Without a Customer the invoice is a guest's (`customer` a `gcus_` id
with no Customer object behind it), as Stripe issues it. Events: `invoice.created`,
`invoice.finalized`, and `invoice.paid` when paid. The reduced shape carries what an
integration reads: amounts, status and its transitions, the customer's details, the lines, and
`invoice_data`'s fields.
"""

from typing import Any

from .api import ApiRequest, Route
from .errors import resource_missing
from .events import emit
from .lists import list_object
from .params import EXPAND, hash_of
from .store import Store, new_id

INVOICE = "invoice"

_RETRIEVE = hash_of(expand=EXPAND)


def create_invoice(
    store: Store, now: int, session: dict[str, Any], items: list[dict[str, Any]], paid: bool
) -> str:
    """Issue the session's invoice; `items` are its visible line items."""
    data = (session["invoice_creation"] or {}).get("invoice_data") or {}
    details = session["customer_details"] or {}
    total = session["amount_total"]
    invoice_id = new_id("in_")
    lines = [_line(invoice_id, item) for item in items]
    invoice = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Sandbox",
        "account_tax_ids": data.get("account_tax_ids"),
        "amount_due": total,
        "amount_paid": 0,
        "amount_remaining": total,
        "amount_shipping": (session["total_details"] or {}).get("amount_shipping", 0),
        "attempt_count": 1,
        "attempted": True,
        "auto_advance": False,
        "billing_reason": "manual",
        "collection_method": "charge_automatically",
        "created": now,
        "currency": session["currency"],
        "custom_fields": data.get("custom_fields"),
        "customer": session["customer"] or new_id("gcus_"),
        "customer_address": details.get("address"),
        "customer_email": details.get("email"),
        "customer_name": details.get("name"),
        "customer_phone": details.get("phone"),
        "customer_tax_exempt": details.get("tax_exempt"),
        "customer_tax_ids": details.get("tax_ids", []),
        "description": data.get("description"),
        "footer": data.get("footer"),
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": data.get("issuer") or {"account": None, "type": "self"},
        "lines": list_object(f"/v1/invoices/{invoice_id}/lines", lines, False),
        "livemode": False,
        "metadata": data.get("metadata", {}),
        "number": f"SANDBOX-{store.created[INVOICE] + 1:04d}",
        "period_end": now,
        "period_start": now,
        "rendering": data.get("rendering_options"),
        "status": "open",
        "status_transitions": {
            "finalized_at": now,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": session["amount_subtotal"],
        "total": total,
    }
    store.insert(INVOICE, invoice_id, invoice)
    emit(store, now, "invoice.created", invoice)
    emit(store, now, "invoice.finalized", invoice)
    if paid:
        pay_invoice(store, now, invoice_id)
    return invoice_id


def pay_invoice(store: Store, now: int, invoice_id: str) -> None:
    """The payment the invoice stands for arrived."""
    invoice = store.get(INVOICE, invoice_id)
    invoice["status"] = "paid"
    invoice["amount_paid"], invoice["amount_remaining"] = invoice["amount_due"], 0
    invoice["status_transitions"]["paid_at"] = now
    store.replace(INVOICE, invoice_id, invoice)
    emit(store, now, "invoice.paid", invoice)


def _line(invoice_id: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id("il_"),
        "object": "line_item",
        "amount": item["amount_subtotal"],
        "currency": item["currency"],
        "description": item["description"],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": item["metadata"],
        "quantity": item["quantity"],
    }


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    invoice = request.store.get(INVOICE, request.path["invoice"])
    if invoice is None:
        raise resource_missing("invoice", request.path["invoice"], "invoice", status=404)
    return request.render(invoice, data.get("expand", []))


ROUTES = [Route("GET", "/v1/invoices/{invoice}", _retrieve)]
