"""The create parameters that say what Checkout collects (custom fields and text, consent, name
collection, saved payment methods, 3D Secure, invoices, recovery, the PaymentIntent's
descriptions, trial settings): echoed on the session as stripe-python types them, and refused
as Stripe refuses them (`param` and `code`)."""

from typing import Any

import httpx
import pytest
import stripe
from stripe.params.checkout import SessionCreateParams

from sandbox.launcher import SandboxProcess

from .support import line_item, pay, session_params

TERMS_URL = "https://shop.example/terms"


def text_field(key: str = "giftnote", **extra: Any) -> dict[str, Any]:
    return {"key": key, "label": {"type": "custom", "custom": "Gift note"}, "type": "text", **extra}


def dropdown_field(*values: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": "colour",
        "label": {"type": "custom", "custom": "Colour"},
        "type": "dropdown",
        "dropdown": {"options": [{"label": v.title(), "value": v} for v in values], **extra},
    }


async def set_terms(raw: httpx.AsyncClient, url: str) -> None:
    answer = await raw.post("/_sandbox/account/public_details", json={"terms_of_service_url": url})
    answer.raise_for_status()


async def test_what_the_session_collects_is_echoed(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await set_terms(raw, TERMS_URL)
    customer = await client.v1.customers.create_async({"email": "ada@example.com"})
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            customer=customer.id,
            custom_fields=[
                text_field(text={"maximum_length": 40, "default_value": "Happy birthday"}),
                dropdown_field("red", "blue", default_value="blue"),
                {
                    "key": "ponumber",
                    "label": {"type": "custom", "custom": "PO number"},
                    "type": "numeric",
                    "optional": True,
                },
            ],
            custom_text={
                "submit": {"message": "We ship in two days."},
                "terms_of_service_acceptance": {"message": "I accept the shop's terms."},
            },
            consent_collection={"terms_of_service": "required", "promotions": "auto"},
            name_collection={"business": {"enabled": True, "optional": True}},
            invoice_creation={
                "enabled": True,
                "invoice_data": {
                    "description": "Order 42",
                    "footer": "Thank you",
                    "custom_fields": [{"name": "PO", "value": "123"}],
                    "metadata": {"order_id": "42"},
                },
            },
            after_expiration={"recovery": {"enabled": True, "allow_promotion_codes": True}},
            saved_payment_method_options={
                "payment_method_save": "enabled",
                "allow_redisplay_filters": ["always", "limited"],
            },
            payment_method_options={"card": {"request_three_d_secure": "any"}},
            payment_intent_data={
                "description": "Order 42",
                "statement_descriptor_suffix": "ORDER42",
                "receipt_email": "ada@example.com",
            },
            excluded_payment_method_types=["klarna"],
            submit_type="donate",
        )
    )
    assert isinstance(session, stripe.checkout.Session)
    fields = session.custom_fields
    assert [(f.key, f.type, f.optional, f.label.custom) for f in fields] == [
        ("giftnote", "text", False, "Gift note"),
        ("colour", "dropdown", False, "Colour"),
        ("ponumber", "numeric", True, "PO number"),
    ]
    assert fields[0].text is not None and fields[0].text.maximum_length == 40
    assert (fields[0].text.default_value, fields[0].text.value) == ("Happy birthday", None)
    assert fields[1].dropdown is not None
    assert [o.value for o in fields[1].dropdown.options] == ["red", "blue"]
    assert fields[1].dropdown.default_value == "blue"
    assert session.custom_text.submit is not None
    assert session.custom_text.submit.message == "We ship in two days."
    assert session.custom_text.after_submit is None
    assert session.consent is None and session.consent_collection is not None
    assert (session.consent_collection.terms_of_service, session.consent_collection.promotions) == (
        "required",
        "auto",
    )
    assert session.name_collection is not None and session.name_collection.business is not None
    assert (session.name_collection.business.enabled, session.name_collection.individual) == (
        True,
        None,
    )
    assert session.invoice_creation is not None and session.invoice_creation.enabled
    assert session.invoice_creation.invoice_data.description == "Order 42"
    assert session.invoice_creation.invoice_data.custom_fields is not None
    assert session.invoice_creation.invoice_data.custom_fields[0].value == "123"
    assert session.invoice is None
    assert session.after_expiration is not None
    recovery = session.after_expiration.recovery
    assert recovery is not None and (recovery.enabled, recovery.allow_promotion_codes) == (
        True,
        True,
    )
    assert recovery.url is None and session.recovered_from is None
    saved = session.saved_payment_method_options
    assert saved is not None and saved.payment_method_save == "enabled"
    assert saved.allow_redisplay_filters == ["always", "limited"]
    assert session.payment_method_options is not None
    card = session.payment_method_options.card
    assert card is not None and card.request_three_d_secure == "any"
    assert session.excluded_payment_method_types == ["klarna"]
    assert session.submit_type == "donate"


async def test_the_rest_of_the_options_are_echoed(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    """Removing saved cards, the reuse agreement's place, and the invoice's tax display and
    account tax IDs: what the service sends of them comes back as stripe-python types it."""
    customer = await client.v1.customers.create_async({"email": "ada@example.com"})
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            customer=customer.id,
            saved_payment_method_options={"payment_method_remove": "enabled"},
            consent_collection={"payment_method_reuse_agreement": {"position": "hidden"}},
            invoice_creation={
                "enabled": True,
                "invoice_data": {
                    "account_tax_ids": ["txi_1Nb2C3"],
                    "rendering_options": {"amount_tax_display": "include_inclusive_tax"},
                },
            },
        )
    )
    saved = session.saved_payment_method_options
    assert saved is not None
    assert (saved.payment_method_remove, saved.payment_method_save) == ("enabled", None)
    consent = session.consent_collection
    assert consent is not None and consent.payment_method_reuse_agreement is not None
    assert consent.payment_method_reuse_agreement.position == "hidden"
    assert session.invoice_creation is not None
    data = session.invoice_creation.invoice_data
    assert data.account_tax_ids == ["txi_1Nb2C3"]
    assert data.rendering_options is not None
    assert data.rendering_options.amount_tax_display == "include_inclusive_tax"


async def test_subscription_trial_settings_reach_the_subscription(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    item = line_item()
    item["price_data"]["recurring"] = {"interval": "month"}
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            item,
            mode="subscription",
            subscription_data={
                "trial_period_days": 7,
                "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
            },
        )
    )
    assert session.amount_total == 0
    await pay(raw, session.id)
    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["subscription"]}
    )
    assert isinstance(paid.subscription, stripe.Subscription)
    settings = paid.subscription.trial_settings
    assert settings is not None and settings.end_behavior.missing_payment_method == "pause"


def refused_cases() -> list[tuple[str, SessionCreateParams, str, str | None]]:
    return [
        (
            "at most 3 custom fields",
            session_params(custom_fields=[text_field(f"k{n}") for n in range(4)]),
            "custom_fields",
            None,
        ),
        (
            "no custom fields in setup mode",
            session_params(
                mode="setup", line_items=None, currency="usd", custom_fields=[text_field()]
            ),
            "custom_fields",
            None,
        ),
        (
            "no custom fields with elements",
            session_params(
                ui_mode="elements",
                success_url=None,
                allowed_payment_method_types=["card"],
                custom_fields=[text_field()],
            ),
            "custom_fields",
            None,
        ),
        (
            "custom field keys are alphanumeric",
            session_params(custom_fields=[text_field("gift-note")]),
            "custom_fields[0][key]",
            None,
        ),
        (
            "custom field keys are unique",
            session_params(custom_fields=[text_field(), text_field()]),
            "custom_fields[1][key]",
            None,
        ),
        (
            "a label is required",
            session_params(custom_fields=[{"key": "a", "type": "text"}]),
            "custom_fields[0][label]",
            "parameter_missing",
        ),
        (
            "a label is at most 100 characters",
            session_params(
                custom_fields=[text_field(label={"type": "custom", "custom": "x" * 101})]
            ),
            "custom_fields[0][label][custom]",
            None,
        ),
        (
            "unknown field type",
            session_params(custom_fields=[text_field(type="date")]),
            "custom_fields[0][type]",
            None,
        ),
        (
            "a dropdown needs options",
            session_params(custom_fields=[{**text_field(), "type": "dropdown"}]),
            "custom_fields[0][dropdown]",
            "parameter_missing",
        ),
        (
            "a dropdown's default is one of its options",
            session_params(custom_fields=[dropdown_field("red", default_value="green")]),
            "custom_fields[0][dropdown][default_value]",
            None,
        ),
        (
            "a dropdown's values are unique",
            session_params(custom_fields=[dropdown_field("red", "red")]),
            "custom_fields[0][dropdown][options][1][value]",
            None,
        ),
        (
            "a text field takes no dropdown",
            session_params(
                custom_fields=[{**text_field(), "dropdown": dropdown_field("red")["dropdown"]}]
            ),
            "custom_fields[0][dropdown]",
            None,
        ),
        (
            "minimum length at most maximum length",
            session_params(
                custom_fields=[text_field(text={"minimum_length": 10, "maximum_length": 5})]
            ),
            "custom_fields[0][text][minimum_length]",
            None,
        ),
        (
            "lengths are at most 255",
            session_params(custom_fields=[text_field(text={"maximum_length": 256})]),
            "custom_fields[0][text][maximum_length]",
            "parameter_invalid_integer",
        ),
        (
            "custom text is at most 1200 characters",
            session_params(custom_text={"submit": {"message": "x" * 1201}}),
            "custom_text[submit][message]",
            None,
        ),
        (
            "terms text needs the terms checkbox",
            session_params(custom_text={"terms_of_service_acceptance": {"message": "Yes"}}),
            "custom_text[terms_of_service_acceptance]",
            None,
        ),
        (
            "unknown consent value",
            session_params(consent_collection={"terms_of_service": "maybe"}),
            "consent_collection[terms_of_service]",
            None,
        ),
        (
            "invoices only in payment mode",
            session_params(
                mode="setup", line_items=None, currency="usd", invoice_creation={"enabled": True}
            ),
            "invoice_creation",
            None,
        ),
        (
            "invoice creation needs enabled",
            session_params(invoice_creation={"invoice_data": {"description": "x"}}),
            "invoice_creation[enabled]",
            "parameter_missing",
        ),
        (
            "at most 4 invoice custom fields",
            session_params(
                invoice_creation={
                    "enabled": True,
                    "invoice_data": {
                        "custom_fields": [{"name": f"n{n}", "value": "v"} for n in range(5)]
                    },
                }
            ),
            "invoice_creation[invoice_data][custom_fields]",
            None,
        ),
        (
            "no recovery with elements",
            session_params(
                ui_mode="elements",
                success_url=None,
                allowed_payment_method_types=["card"],
                after_expiration={"recovery": {"enabled": True}},
            ),
            "after_expiration",
            None,
        ),
        (
            "recovery needs enabled",
            session_params(after_expiration={"recovery": {"allow_promotion_codes": True}}),
            "after_expiration[recovery][enabled]",
            "parameter_missing",
        ),
        (
            "saving a card needs a customer",
            session_params(saved_payment_method_options={"payment_method_save": "enabled"}),
            "saved_payment_method_options[payment_method_save]",
            None,
        ),
        (
            "no saved payment method options in setup mode",
            session_params(
                mode="setup",
                line_items=None,
                currency="usd",
                saved_payment_method_options={"payment_method_save": "disabled"},
            ),
            "saved_payment_method_options",
            None,
        ),
        (
            "unknown 3D Secure request",
            session_params(payment_method_options={"card": {"request_three_d_secure": "always"}}),
            "payment_method_options[card][request_three_d_secure]",
            None,
        ),
        (
            "other card options are not modelled",
            session_params(payment_method_options={"card": {"installments": {"enabled": True}}}),
            "payment_method_options[card][installments]",
            "parameter_unknown",
        ),
        (
            "statement descriptors are not for cards",
            session_params(payment_intent_data={"statement_descriptor": "SHOP"}),
            "payment_intent_data[statement_descriptor]",
            None,
        ),
        (
            "a statement descriptor suffix needs a letter",
            session_params(payment_intent_data={"statement_descriptor_suffix": "1234"}),
            "payment_intent_data[statement_descriptor_suffix]",
            None,
        ),
        (
            "a statement descriptor suffix is at most 22 characters",
            session_params(payment_intent_data={"statement_descriptor_suffix": "X" * 23}),
            "payment_intent_data[statement_descriptor_suffix]",
            None,
        ),
        (
            "unknown setup_future_usage",
            session_params(payment_intent_data={"setup_future_usage": "always"}),
            "payment_intent_data[setup_future_usage]",
            None,
        ),
        (
            "receipt_email is an email",
            session_params(payment_intent_data={"receipt_email": "nobody"}),
            "payment_intent_data[receipt_email]",
            "email_invalid",
        ),
        (
            "name collection needs enabled",
            session_params(name_collection={"business": {"optional": True}}),
            "name_collection[business][enabled]",
            "parameter_missing",
        ),
        (
            "unknown trial end behaviour",
            session_params(
                mode="subscription",
                subscription_data={
                    "trial_settings": {"end_behavior": {"missing_payment_method": "keep"}}
                },
            ),
            "subscription_data[trial_settings][end_behavior][missing_payment_method]",
            None,
        ),
        (
            "unknown excluded payment method type",
            session_params(excluded_payment_method_types=["cheque"]),
            "excluded_payment_method_types[0]",
            None,
        ),
        (
            "submit_type not with elements",
            session_params(
                ui_mode="elements",
                success_url=None,
                allowed_payment_method_types=["card"],
                submit_type="pay",
            ),
            "submit_type",
            None,
        ),
    ]


CASES = refused_cases()


@pytest.mark.parametrize(
    ("params", "param", "code"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
async def test_refusal(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    params: SessionCreateParams,
    param: str,
    code: str | None,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(params)
    assert (caught.value.param, caught.value.code) == (param, code), caught.value.user_message


async def test_terms_of_service_need_a_url_in_the_account(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    params = session_params(consent_collection={"terms_of_service": "required"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(params)
    assert caught.value.param == "consent_collection[terms_of_service]"
    await set_terms(raw, TERMS_URL)
    session = await client.v1.checkout.sessions.create_async(params)
    assert session.consent_collection is not None
    assert session.consent_collection.terms_of_service == "required"
    await set_terms(raw, "")
    assert (await raw.get("/_sandbox/account/public_details")).json() == {
        "terms_of_service_url": None
    }


async def test_saving_with_consent_excludes_saving_without(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    customer = await client.v1.customers.create_async({"email": "a@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(
            session_params(
                customer=customer.id,
                saved_payment_method_options={"payment_method_save": "enabled"},
                payment_intent_data={"setup_future_usage": "off_session"},
            )
        )
    assert caught.value.param == "saved_payment_method_options[payment_method_save]"


async def test_line_item_references(sandbox: SandboxProcess, client: stripe.StripeClient) -> None:
    product = await client.v1.products.create_async({"name": "Mug", "id": "sku_mug_blue"})
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            {
                "price_data": {"currency": "usd", "unit_amount": 990, "product": product.id},
                "quantity": 1,
                "metadata": {"sku": "MUG-BLUE"},
            },
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1500,
                    "product_data": {"name": "T-shirt", "metadata": {"sku": "TS-M"}},
                },
                "quantity": 2,
                "metadata": {"sku": "TS-M"},
            },
            shipping_options=[
                {
                    "shipping_rate_data": {
                        "display_name": "Ground",
                        "fixed_amount": {"amount": 500, "currency": "usd"},
                        "metadata": {"carrier": "ups"},
                    }
                }
            ],
            expand=["line_items.data.price.product", "shipping_cost.shipping_rate"],
        )
    )
    assert session.line_items is not None
    mug, shirt = session.line_items.data
    assert mug.metadata is not None and shirt.metadata is not None
    assert (mug.metadata.to_dict(), shirt.metadata.to_dict()) == (
        {"sku": "MUG-BLUE"},
        {"sku": "TS-M"},
    )
    assert mug.price is not None and shirt.price is not None
    assert isinstance(mug.price.product, stripe.Product) and mug.price.product.id == product.id
    assert isinstance(shirt.price.product, stripe.Product)
    assert shirt.price.product.metadata.to_dict() == {"sku": "TS-M"}
    listed = await client.v1.checkout.sessions.line_items.list_async(session.id)
    assert [item.metadata and item.metadata.to_dict() for item in listed.data] == [
        {"sku": "MUG-BLUE"},
        {"sku": "TS-M"},
    ]
    assert session.shipping_cost is not None
    rate = session.shipping_cost.shipping_rate
    assert isinstance(rate, stripe.ShippingRate)
    assert rate.metadata.to_dict() == {"carrier": "ups"}
