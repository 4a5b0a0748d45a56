"""What `POST /v1/checkout/sessions` makes once its parameters pass (`checkout_rules.py`): the
`checkout.session` object, its line items, the inline prices and shipping rates it creates, and
its first amounts (`totals.py`, `checkout_totals.py`).

The refusals that depend on the amounts (a tax behaviour automatic tax needs, Stripe's charge
limits) are made before anything is stored (`check_amounts`), so a refused session leaves no
inline price or shipping rate behind, as on Stripe.
"""

from typing import Any

from .api import ApiRequest
from .catalog import PRODUCT, create_price, create_product
from .charge_limits import check_charge
from .checkout_options import option_fields
from .checkout_params import ADJUSTABLE_QUANTITY_DEFAULT_MAXIMUM
from .checkout_rules import LinePlan, SessionPlan
from .checkout_totals import automatic_tax, automatic_tax_status, line_amounts, session_amounts
from .customers import country_of
from .store import Store, new_id
from .tax_settings import check_tax_behaviors, effective_behavior
from .totals import Amounts, CartLine, Totals, compute_totals
from .trials import trialing


def check_amounts(store: Store, plan: SessionPlan, session_id: str, now: int) -> None:
    """Refusals that depend on the amounts, made before anything (an inline price, a shipping
    rate) is stored: tax behaviours for automatic tax, and Stripe's charge limits."""
    drafts = [
        line.price
        or {
            "product": (line.price_data or {}).get("product"),
            "tax_behavior": (line.price_data or {}).get("tax_behavior", "unspecified"),
        }
        for line in plan.lines
    ]
    if plan.params.get("automatic_tax", {}).get("enabled"):
        check_tax_behaviors(
            store,
            [
                (
                    f"line_items[{line.index}][price]"
                    if line.price
                    else f"line_items[{line.index}][price_data][tax_behavior]",
                    draft["tax_behavior"],
                )
                for line, draft in zip(plan.lines, drafts, strict=True)
            ],
            plan.currency,
        )
    rates = [
        option.get("rate")
        or {
            "id": None,
            "fixed_amount": option["data"]["fixed_amount"],
            "tax_behavior": option["data"].get("tax_behavior", "unspecified"),
        }
        for option in plan.shipping
    ]
    if plan.mode != "setup" and plan.currency is not None:
        check_charge(first_totals(store, plan, session_id, now, drafts, rates).total, plan.currency)


def inline_price(store: Store, now: int, line: LinePlan) -> Any:
    data = line.price_data
    assert data is not None
    product_id = data.get("product")
    if product_id is None:
        # Checkout's inline products and prices exist but are archived, out of the catalog.
        product_id = create_product(store, now, data["product_data"], active=False)["id"]
    return create_price(store, now, data, product_id, active=False)


def first_totals(
    store: Store,
    plan: SessionPlan,
    session_id: str,
    now: int,
    prices: list[dict[str, Any]],
    rates: list[dict[str, Any]],
) -> Totals:
    trial = trialing(plan.params)
    cart = [
        CartLine(
            0 if trial and line.recurring else line.subtotal,
            price["product"],
            effective_behavior(store, price["tax_behavior"], line.currency),
            line.tax_rates,
        )
        for line, price in zip(plan.lines, prices, strict=True)
    ]
    coupon = discount = None
    if plan.discounts:
        coupon, code = plan.discounts[0]["coupon"], plan.discounts[0]["promotion_code"]
        customer_id = None if plan.customer is None else plan.customer["id"]
        discount = discount_object(session_id, customer_id, coupon, code, now)
    enabled = plan.params.get("automatic_tax", {}).get("enabled", False)
    automatic = automatic_tax(store, enabled, country_of(plan.customer), now)
    return compute_totals(cart, coupon, discount, rates[0] if rates else None, automatic)


def discount_object(
    session_id: str,
    customer_id: str | None,
    coupon: dict[str, Any],
    code: dict[str, Any] | None,
    now: int,
) -> dict[str, Any]:
    """The Discount a coupon (or a promotion code's coupon) gives a session."""
    return {
        "id": new_id("di_"),
        "object": "discount",
        "checkout_session": session_id,
        "customer": customer_id,
        "customer_account": None,
        "end": None,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None if code is None else code["id"],
        "source": {"coupon": coupon["id"], "type": "coupon"},
        "start": now,
        "subscription": None,
        "subscription_item": None,
    }


def line_item_object(
    store: Store, line: LinePlan, price: dict[str, Any], amounts: Amounts
) -> dict[str, Any]:
    adjustable = line.adjustable_quantity
    return {
        "id": new_id("li_"),
        "object": "item",
        "adjustable_quantity": None
        if adjustable is None
        else {
            "enabled": adjustable["enabled"],
            "maximum": adjustable.get("maximum", ADJUSTABLE_QUANTITY_DEFAULT_MAXIMUM),
            "minimum": adjustable.get("minimum", 0),
        },
        **line_amounts(amounts),
        "currency": price["currency"],
        "description": store.get(PRODUCT, price["product"])["name"],
        "metadata": line.metadata,
        "price": price,
        "quantity": line.quantity,
    }


def session_object(
    request: ApiRequest,
    plan: SessionPlan,
    session_id: str,
    now: int,
    totals: Totals,
    rates: list[dict[str, Any]],
) -> dict[str, Any]:
    params, mode, ui_mode = plan.params, plan.mode, plan.ui_mode
    paying = mode != "setup"
    hosted = ui_mode == "hosted_page"
    allowed = params.get("allowed_payment_method_types")
    excluded = params.get("excluded_payment_method_types", [])
    automatic_tax = params.get("automatic_tax", {"enabled": False})
    country = country_of(plan.customer)
    adaptive = params.get("adaptive_pricing", {}).get("enabled", False)
    tax_ids = params.get("tax_id_collection", {"enabled": False})
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": adaptive},
        "allow_promotion_codes": params.get("allow_promotion_codes"),
        "allowed_payment_method_types": allowed,
        **session_amounts(totals, paying),
        "automatic_tax": {
            "enabled": automatic_tax["enabled"],
            "liability": {"account": None} | automatic_tax.get("liability", {"type": "self"})
            if automatic_tax["enabled"]
            else None,
            "provider": "stripe" if automatic_tax["enabled"] else None,
            "status": automatic_tax_status(request.store, country)
            if automatic_tax["enabled"]
            else None,
        },
        "billing_address_collection": params.get("billing_address_collection"),
        "branding_settings": None,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None if hosted else f"{session_id}_secret_{new_id('', 24)}",
        "collected_information": None,
        "created": now,
        "currency": plan.currency,
        "currency_conversion": None,
        "customer": plan.customer["id"] if plan.customer else None,
        "customer_account": None,
        "customer_creation": params.get("customer_creation", "if_required")
        if mode != "subscription"
        else None,
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [
            # A promotion code's discount names the code, not the coupon behind it.
            {"coupon": None, "promotion_code": discount["promotion_code"]["id"]}
            if discount["promotion_code"]
            else {"coupon": discount["coupon"]["id"], "promotion_code": None}
            for discount in plan.discounts
        ],
        "excluded_payment_method_types": params.get("excluded_payment_method_types"),
        "expires_at": plan.expires_at,
        "integration_identifier": params.get("integration_identifier"),
        "invoice": None,
        "livemode": False,
        "locale": params.get("locale"),
        "managed_payments": None,
        "metadata": params.get("metadata", {}),
        "mode": mode,
        "optional_items": None,
        "origin_context": params.get("origin_context"),
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": params.get("payment_method_collection", "always")
        if mode == "subscription"
        else None,
        "payment_method_configuration_details": None,
        "payment_method_types": [kind for kind in (allowed or ["card"]) if kind not in excluded],
        "payment_status": "unpaid" if paying else "no_payment_required",
        "permissions": None,
        "phone_number_collection": {
            "enabled": params.get("phone_number_collection", {}).get("enabled", False)
        },
        # Chosen when the customer opens the page, so unknown until then (adaptive_pricing.py).
        "presentment_details": None,
        "recovered_from": None,
        "redirect_on_completion": None
        if hosted
        else params.get("redirect_on_completion", "always"),
        "return_url": params.get("return_url"),
        "setup_intent": None,
        "shipping_address_collection": params.get("shipping_address_collection"),
        "shipping_options": [
            {"shipping_amount": rate["fixed_amount"]["amount"], "shipping_rate": rate["id"]}
            for rate in rates
        ],
        "status": "open",
        "submit_type": params.get("submit_type"),
        "subscription": None,
        "success_url": params.get("success_url"),
        "tax_id_collection": {
            "enabled": tax_ids["enabled"],
            "required": tax_ids.get("required", "never"),
        },
        "ui_mode": ui_mode,
        "url": f"{request.origin}/c/pay/{session_id}" if hosted else None,
        "wallet_options": None,
        **option_fields(params, paying),
    }
