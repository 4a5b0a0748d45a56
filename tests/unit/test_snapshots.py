"""The ledger's snapshot JSON (SessionSnapshot.to_json, from_json): rows written before a field
was added must still load, and what is written comes back equal."""

from __future__ import annotations

import json

from service.domain.model import (
    Address,
    Consent,
    CustomerDetails,
    CustomFieldValue,
    DiscountAmount,
    LineItemSnapshot,
    SessionSnapshot,
    ShippingCost,
    TaxAmount,
    TaxId,
)

# A row's snapshot as the service wrote it before issue 20 (its to_json of a paid session).
BEFORE_ISSUE_20 = {
    "id": "cs_test_a1",
    "mode": "payment",
    "ui_mode": "hosted_page",
    "status": "complete",
    "payment_status": "paid",
    "currency": "usd",
    "amount_subtotal": 3990,
    "amount_total": 4388,
    "amount_discount": 399,
    "amount_shipping": 500,
    "amount_tax": 297,
    "livemode": False,
    "created": 1796040000,
    "expires_at": 1796126400,
    "url": None,
    "client_secret": None,
    "presentment_amount": None,
    "presentment_currency": None,
    "customer_id": None,
    "customer_email": "ada@example.com",
    "payment_intent_id": "pi_1",
    "subscription_id": None,
    "setup_intent_id": None,
    "shipping": {
        "name": "Ada",
        "address": {
            "line1": "1 Main St",
            "line2": "",
            "city": "San Francisco",
            "state": "CA",
            "postal_code": "94103",
            "country": "US",
        },
    },
    "metadata": {"order_id": "order-1"},
    "success_url": "https://shop.example/done",
    "cancel_url": None,
    "return_url": None,
    "line_items": [
        {
            "id": "li_1",
            "description": "T-shirt",
            "quantity": 2,
            "price_id": "price_1",
            "currency": "usd",
            "unit_amount": 1500,
            "amount_subtotal": 3000,
            "amount_discount": 300,
            "amount_tax": 223,
            "amount_total": 2923,
        }
    ],
    "shipping_cost": {
        "shipping_rate_id": "shr_1",
        "amount_subtotal": 500,
        "amount_tax": 0,
        "amount_total": 500,
    },
    "discount_ids": ["SUMMER10"],
}


def test_a_snapshot_stored_before_issue_20_loads_with_the_new_fields_empty() -> None:
    loaded = SessionSnapshot.from_json(json.loads(json.dumps(BEFORE_ISSUE_20)))

    assert (loaded.id, loaded.amount_total, loaded.discount_ids) == (
        "cs_test_a1",
        4388,
        ("SUMMER10",),
    )
    (item,) = loaded.line_items
    assert (item.description, item.amount_total) == ("T-shirt", 2923)
    assert (item.metadata, item.product_id, item.taxes, item.discounts) == ({}, "", (), ())
    assert loaded.shipping_cost == ShippingCost("shr_1", 500, 0, 500)
    assert loaded.customer_details is None and loaded.consent is None
    assert (loaded.custom_fields, loaded.tax_breakdown, loaded.discount_breakdown) == ((), (), ())
    assert (loaded.invoice_id, loaded.recovery_url, loaded.recovered_from) == (None, None, None)
    assert (loaded.automatic_tax_enabled, loaded.automatic_tax_status) == (False, None)


def test_what_is_written_comes_back_equal() -> None:
    vat = TaxAmount(192, 1008, "txr_1", "VAT", 19.0, True, "DE", "DE", "standard_rated")
    coupon = DiscountAmount(100, "SUMMER10", "promo_1")
    snapshot = SessionSnapshot.from_json(
        {
            **BEFORE_ISSUE_20,
            "line_items": [],
            "shipping_cost": None,
            "shipping": None,
        }
    )
    full = type(snapshot)(
        **{
            **{name: getattr(snapshot, name) for name in snapshot.__dataclass_fields__},
            "line_items": (
                LineItemSnapshot(
                    "li_1",
                    "Mug",
                    1,
                    "price_1",
                    "eur",
                    1200,
                    1200,
                    100,
                    192,
                    1100,
                    {"sku": "MUG-1"},
                    "prod_mug",
                    (vat,),
                    (coupon,),
                ),
            ),
            "shipping_cost": ShippingCost("shr_1", 500, 80, 500, (vat,)),
            "customer_details": CustomerDetails(
                "Ada",
                "ada@example.com",
                "+4930123456",
                Address("1 Main St", country="DE"),
                (TaxId("eu_vat", "DE123456789"),),
                "Analytical Engines",
                "Ada Lovelace",
                "none",
            ),
            "custom_fields": (CustomFieldValue("giftnote", "Gift note", "text", "Hi"),),
            "consent": Consent("accepted", "opt_in"),
            "invoice_id": "in_1",
            "recovery_url": "https://pay.example/r/1",
            "recovery_expires_at": 1798632000,
            "recovered_from": "cs_test_a0",
            "automatic_tax_enabled": True,
            "automatic_tax_status": "complete",
            "tax_breakdown": (vat,),
            "discount_breakdown": (coupon,),
        }
    )

    assert SessionSnapshot.from_json(json.loads(json.dumps(full.to_json()))) == full
