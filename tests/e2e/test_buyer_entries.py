"""What the buyer entered, what each line was, and the taxes and discounts behind the totals,
through the contract (issue 20): gRPC → service → stripe-python → sandbox, the customer paying
through the sandbox's control route (which takes what the hosted page takes), and the caller's
GetSession once Stripe's webhook has reached the service."""

from __future__ import annotations

import uuid
from typing import Any

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from tests.e2e.helpers import (
    SAN_FRANCISCO,
    Sandbox,
    Stub,
    cart_request,
    new_order_id,
    stored,
    until_stored,
)

Req = api.CreateSessionRequest
BERLIN = {"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "DE"}


def custom_field(key: str, label: str, **fields: Any) -> Req.CustomField:
    return Req.CustomField(key=key, label=label, **fields)


ASKING = {
    "custom_fields": [
        custom_field(
            "giftnote",
            "Gift note",
            type=Req.CustomField.TEXT,
            text=Req.TextSettings(minimum_length=2, maximum_length=20),
        ),
        custom_field("ponumber", "PO number", type=Req.CustomField.NUMERIC, optional=True),
        custom_field(
            "colour",
            "Colour",
            type=Req.CustomField.DROPDOWN,
            dropdown=Req.Dropdown(
                options=[
                    Req.DropdownOption(label="Red", value="red"),
                    Req.DropdownOption(label="Blue", value="blue"),
                ],
                default_value="blue",
            ),
        ),
    ],
    "consent_collection": Req.ConsentCollection(
        terms_of_service=Req.ConsentCollection.TERMS_OF_SERVICE_REQUIRED,
        promotions=Req.ConsentCollection.PROMOTIONS_AUTO,
    ),
    "phone_number_collection": Req.PhoneNumberCollection(enabled=True),
    "tax_id_collection": Req.TaxIdCollection(enabled=True, required=True),
    "billing_address_collection": Req.BILLING_ADDRESS_COLLECTION_REQUIRED,
    "name_collection": Req.NameCollection(
        business=Req.NameField(enabled=True),
        individual=Req.NameField(enabled=True, optional=True),
    ),
    "custom_text": Req.CustomText(submit="We ship within two days."),
}


async def test_what_the_buyer_entered_comes_back(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    with sandbox.terms_of_service():
        created = (await stub.CreateSession(cart_request(order_id, **ASKING))).session
    # Before paying: the fields the page asks for, with nothing in them yet.
    assert [(f.key, f.label, f.type, f.value) for f in created.custom_fields] == [
        ("giftnote", "Gift note", pb.CustomFieldValue.TEXT, ""),
        ("ponumber", "PO number", pb.CustomFieldValue.NUMERIC, ""),
        ("colour", "Colour", pb.CustomFieldValue.DROPDOWN, ""),
    ]
    assert not created.HasField("customer_details") and not created.HasField("consent")
    at_stripe = await sandbox.client.v1.checkout.sessions.retrieve_async(created.id)
    assert at_stripe.custom_text.submit is not None
    assert at_stripe.custom_text.submit.message == "We ship within two days."

    sandbox.pay(
        created.id,
        email="erika@example.com",
        name="Erika Mustermann",
        phone="+49 30 1234567",
        business_name="Muster GmbH",
        individual_name="Erika",
        tax_id={"type": "eu_vat", "value": "DE123456789"},
        custom_fields={"giftnote": "Happy birthday"},
        consent={"terms_of_service": "accepted", "promotions": "opt_in"},
        **BERLIN,
    )
    paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)

    details = paid.customer_details
    assert (details.name, details.email, details.phone) == (
        "Erika Mustermann",
        "erika@example.com",
        "+49301234567",
    )
    assert (details.business_name, details.individual_name) == ("Muster GmbH", "Erika")
    assert [(t.type, t.value) for t in details.tax_ids] == [("eu_vat", "DE123456789")]
    assert details.tax_exempt == pb.CustomerDetails.NONE
    assert (details.address.line1, details.address.city, details.address.country) == (
        "Unter den Linden 1",
        "Berlin",
        "DE",
    )
    # The dropdown's prefilled choice counts as entered; the optional field left empty has none.
    assert {f.key: f.value for f in paid.custom_fields} == {
        "giftnote": "Happy birthday",
        "ponumber": "",
        "colour": "blue",
    }
    assert (paid.consent.terms_of_service, paid.consent.promotions) == (
        pb.Consent.ACCEPTED,
        pb.Consent.OPT_IN,
    )


async def test_each_line_carries_the_shops_reference(stub: Stub, sandbox: Sandbox) -> None:
    sku = f"sku_mug_{uuid.uuid4().hex[:8]}"
    await sandbox.client.v1.products.create_async({"id": sku, "name": "Mug"})
    order_id = new_order_id()
    request = cart_request(
        order_id,
        line_items=[
            Req.LineItem(
                price_data=Req.PriceData(unit_amount=990, product_id=sku),
                quantity=1,
                metadata={"sku": "MUG-BLUE-350", "cart_line": "1"},
                adjustable_quantity=Req.AdjustableQuantity(enabled=True, maximum=10),
            ),
            Req.LineItem(
                price_data=Req.PriceData(
                    unit_amount=1500, product_name="T-shirt", product_metadata={"sku": "TS-RED-M"}
                ),
                quantity=2,
                metadata={"cart_line": "2"},
            ),
        ],
        shipping_address_collection=Req.ShippingAddressCollection(allowed_countries=["US"]),
        shipping_options=[
            Req.ShippingOption(
                shipping_rate_data=Req.ShippingRateData(
                    display_name="Ground", amount=500, metadata={"carrier": "UPS"}
                )
            )
        ],
    )
    created = (await stub.CreateSession(request)).session

    mug, shirt = created.line_items
    assert (mug.description, mug.product_id, dict(mug.metadata)) == (
        "Mug",
        sku,
        {"sku": "MUG-BLUE-350", "cart_line": "1"},
    )
    assert (shirt.description, dict(shirt.metadata)) == ("T-shirt", {"cart_line": "2"})
    product = await sandbox.client.v1.products.retrieve_async(shirt.product_id)
    assert product.metadata is not None and product.metadata.to_dict() == {"sku": "TS-RED-M"}
    rate = await sandbox.client.v1.shipping_rates.retrieve_async(
        created.shipping_cost.shipping_rate_id
    )
    assert rate.metadata.to_dict() == {"carrier": "UPS"}

    # The customer changes the quantity: the lines keep their references.
    sandbox.pay(created.id, line_items={"0": {"quantity": 3}}, name="Ada", **SAN_FRANCISCO)
    paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)
    assert [(li.quantity, li.metadata["cart_line"], li.product_id) for li in paid.line_items] == [
        (3, "1", sku),
        (2, "2", shirt.product_id),
    ]


async def test_totals_break_down_by_rate_and_discount(stub: Stub, sandbox: Sandbox) -> None:
    sales_tax = await sandbox.client.v1.tax_rates.create_async(
        {"display_name": "Sales tax", "percentage": 8.25, "inclusive": False, "country": "US"}
    )
    vat = await sandbox.client.v1.tax_rates.create_async(
        {"display_name": "VAT", "percentage": 19, "inclusive": True, "country": "DE"}
    )
    coupon = await sandbox.client.v1.coupons.create_async({"percent_off": 10, "duration": "once"})
    request = cart_request(
        new_order_id(),
        line_items=[
            Req.LineItem(
                price_data=Req.PriceData(unit_amount=1500, product_name="T-shirt"),
                quantity=2,
                tax_rate_ids=[sales_tax.id],
            ),
            Req.LineItem(
                price_data=Req.PriceData(unit_amount=990, product_name="Mug"),
                quantity=1,
                tax_rate_ids=[vat.id],
            ),
        ],
        discounts=[Req.Discount(coupon=coupon.id)],
    )
    session = (await stub.CreateSession(request)).session

    shirt, mug = session.line_items
    breakdown = session.total_details.breakdown
    assert [(t.tax_rate_id, t.amount, t.inclusive) for t in breakdown.taxes] == [
        (sales_tax.id, shirt.amount_tax, False),
        (vat.id, mug.amount_tax, True),
    ]
    assert [(t.display_name, t.percentage, t.country) for t in breakdown.taxes] == [
        ("Sales tax", 8.25, "US"),
        ("VAT", 19.0, "DE"),
    ]
    assert sum(t.amount for t in breakdown.taxes) == session.total_details.amount_tax > 0
    # Tax is computed on each line's amount after its share of the discount.
    assert [t.taxable_amount for t in breakdown.taxes] == [
        shirt.amount_subtotal - shirt.amount_discount,
        mug.amount_subtotal - mug.amount_discount - mug.amount_tax,
    ]
    assert [(d.coupon_id, d.amount) for d in breakdown.discounts] == [
        (coupon.id, session.total_details.amount_discount)
    ]
    for line in (shirt, mug):
        assert [(t.amount, t.display_name) for t in line.taxes] == [
            (line.amount_tax, "Sales tax" if line is shirt else "VAT")
        ]
        assert [(d.amount, d.coupon_id) for d in line.discounts] == [
            (line.amount_discount, coupon.id)
        ]


async def test_automatic_tax_status_and_the_tax_on_shipping(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    request = cart_request(
        order_id,
        automatic_tax=Req.AutomaticTax(enabled=True),
        shipping_address_collection=Req.ShippingAddressCollection(allowed_countries=["US"]),
        shipping_options=[
            Req.ShippingOption(
                shipping_rate_data=Req.ShippingRateData(
                    display_name="Ground", amount=500, tax_behavior=Req.PriceData.EXCLUSIVE
                )
            )
        ],
    )
    with sandbox.registered_for_tax("US"):
        created = (await stub.CreateSession(request)).session
        # Stripe Tax waits for the customer's address.
        assert (created.automatic_tax.enabled, created.automatic_tax.status) == (
            True,
            pb.Session.AUTOMATIC_TAX_REQUIRES_LOCATION_INPUTS,
        )
        sandbox.pay(created.id, name="Ada", **SAN_FRANCISCO)
        paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)

    assert paid.automatic_tax.status == pb.Session.AUTOMATIC_TAX_COMPLETE
    shipping_taxes = paid.shipping_cost.taxes
    assert [t.amount for t in shipping_taxes] == [paid.shipping_cost.amount_tax]
    assert shipping_taxes[0].amount > 0 and shipping_taxes[0].taxability_reason
    line_tax = sum(t.amount for line in paid.line_items for t in line.taxes)
    assert (
        sum(t.amount for t in paid.total_details.breakdown.taxes)
        == (line_tax + paid.shipping_cost.amount_tax)
        == paid.total_details.amount_tax
    )


async def test_a_failed_tax_calculation_is_seen(stub: Stub, sandbox: Sandbox) -> None:
    customer = await sandbox.client.v1.customers.create_async(
        {"email": "hans@example.com", "address": {"country": "DE", "postal_code": "10117"}}
    )
    settings = "/_sandbox/tax/settings"
    sandbox.control("POST", settings, {"failing": ["DE"]})
    try:
        with sandbox.registered_for_tax("DE"):
            session = (
                await stub.CreateSession(
                    cart_request(
                        new_order_id(),
                        customer_id=customer.id,
                        automatic_tax=Req.AutomaticTax(enabled=True),
                    )
                )
            ).session
    finally:
        sandbox.control("POST", settings, {"failing": []})
    assert session.automatic_tax.status == pb.Session.AUTOMATIC_TAX_FAILED


async def test_a_session_without_these_has_none_of_them(stub: Stub) -> None:
    order_id = new_order_id()
    await stub.CreateSession(cart_request(order_id))
    session = await stored(stub, order_id)
    for name in ("customer_details", "consent", "recovery", "automatic_tax"):
        assert not session.HasField(name), name
    assert (list(session.custom_fields), session.invoice_id, session.recovered_from) == ([], "", "")
    assert list(session.total_details.breakdown.taxes) == []
    assert [list(li.taxes) for li in session.line_items] == [[], []]
