"""The Stripe parameters of what Checkout collects and does around the payment: custom fields
and text, consent, a paid invoice, recovery after expiry, the PaymentIntent's settings, saved
payment methods, excluded payment method types, the pay button, names and 3D Secure
(https://docs.stripe.com/api/checkout/sessions/create). The request is valid already
(validation.py); what it leaves out is left out here too, to Stripe's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.domain.commands import (
    ConsentCollection,
    CreateSessionCommand,
    CustomField,
    InvoiceCreation,
    NameCollection,
    SavedPaymentMethodOptions,
    TextSettings,
)


def option_params(cmd: CreateSessionCommand, service: Mapping[str, str]) -> dict[str, Any]:
    """`service`: the metadata the service adds to what it has Stripe make
    (model.service_metadata)."""
    params: dict[str, Any] = {}
    if cmd.custom_fields:
        params["custom_fields"] = [_custom_field(custom) for custom in cmd.custom_fields]
    if cmd.custom_text is not None:
        texts = {
            name: {"message": getattr(cmd.custom_text, name)}
            for name in (
                "submit",
                "after_submit",
                "shipping_address",
                "terms_of_service_acceptance",
            )
            if getattr(cmd.custom_text, name)
        }
        if texts:
            params["custom_text"] = texts
    if cmd.consent_collection is not None and (consent := _consent(cmd.consent_collection)):
        params["consent_collection"] = consent
    if cmd.invoice_creation is not None:
        params["invoice_creation"] = _invoice_creation(cmd.invoice_creation, service)
    if cmd.recovery is not None:
        recovery: dict[str, Any] = {"enabled": cmd.recovery.enabled}
        if cmd.recovery.allow_promotion_codes:
            recovery["allow_promotion_codes"] = True
        params["after_expiration"] = {"recovery": recovery}
    if cmd.saved_payment_method_options is not None and (
        saved := _saved_payment_methods(cmd.saved_payment_method_options)
    ):
        params["saved_payment_method_options"] = saved
    if cmd.excluded_payment_method_types:
        params["excluded_payment_method_types"] = list(cmd.excluded_payment_method_types)
    if cmd.submit_type:
        params["submit_type"] = cmd.submit_type
    if cmd.name_collection is not None and (names := _names(cmd.name_collection)):
        params["name_collection"] = names
    if cmd.request_three_d_secure:
        params["payment_method_options"] = {
            "card": {"request_three_d_secure": cmd.request_three_d_secure}
        }
    return params


def payment_intent_data(cmd: CreateSessionCommand, service: Mapping[str, str]) -> dict[str, Any]:
    """`payment_intent_data`: what the caller set of it, and the caller and the order in its
    metadata (`service`)."""
    data: dict[str, Any] = {"metadata": dict(service)}
    given = cmd.payment_intent_data
    if given is not None:
        optional = {
            "setup_future_usage": given.setup_future_usage,
            "description": given.description,
            "statement_descriptor_suffix": given.statement_descriptor_suffix,
            "receipt_email": given.receipt_email,
        }
        data.update({name: value for name, value in optional.items() if value})
    if cmd.capture_method == "manual":
        # Authorised now, captured by CapturePayment later:
        # https://docs.stripe.com/payments/place-a-hold-on-a-payment-method
        data["capture_method"] = "manual"
    return data


def _custom_field(custom: CustomField) -> dict[str, Any]:
    field: dict[str, Any] = {
        "key": custom.key,
        "label": {"type": "custom", "custom": custom.label},
        "type": custom.type,
    }
    if custom.optional:
        field["optional"] = True
    settings = custom.text if custom.type == "text" else custom.numeric
    typed = _text_settings(settings) if custom.type in ("text", "numeric") and settings else {}
    if typed:
        field[custom.type] = typed
    if custom.type == "dropdown" and custom.dropdown is not None:
        dropdown: dict[str, Any] = {
            "options": [{"label": o.label, "value": o.value} for o in custom.dropdown.options]
        }
        if custom.dropdown.default_value:
            dropdown["default_value"] = custom.dropdown.default_value
        field["dropdown"] = dropdown
    return field


def _text_settings(settings: TextSettings) -> dict[str, Any]:
    given = {
        "minimum_length": settings.minimum_length,
        "maximum_length": settings.maximum_length,
        "default_value": settings.default_value,
    }
    return {name: value for name, value in given.items() if value}


def _consent(consent: ConsentCollection) -> dict[str, Any]:
    given: dict[str, Any] = {
        "terms_of_service": consent.terms_of_service,
        "promotions": consent.promotions,
    }
    if consent.payment_method_reuse_agreement:
        given["payment_method_reuse_agreement"] = {
            "position": consent.payment_method_reuse_agreement
        }
    return {name: value for name, value in given.items() if value}


def _invoice_creation(invoice: InvoiceCreation, service: Mapping[str, str]) -> dict[str, Any]:
    """The invoice carries the caller and the order in its metadata too, as everything the
    service has Stripe make does (docs/architecture.md, "Invariants")."""
    if not invoice.enabled:
        return {"enabled": False}
    given = invoice.data
    data: dict[str, Any] = {"metadata": {**(given.metadata if given else {}), **service}}
    if given is not None:
        optional: dict[str, Any] = {
            "description": given.description,
            "footer": given.footer,
            "custom_fields": [{"name": n, "value": v} for n, v in given.custom_fields],
            "account_tax_ids": list(given.account_tax_ids),
        }
        data.update({name: value for name, value in optional.items() if value})
        if given.amount_tax_display:
            data["rendering_options"] = {"amount_tax_display": given.amount_tax_display}
    return {"enabled": True, "invoice_data": data}


def _saved_payment_methods(options: SavedPaymentMethodOptions) -> dict[str, Any]:
    saved: dict[str, Any] = {
        name: "enabled"
        for name in ("payment_method_save", "payment_method_remove")
        if getattr(options, name)
    }
    if options.allow_redisplay_filters:
        saved["allow_redisplay_filters"] = list(options.allow_redisplay_filters)
    return saved


def _names(names: NameCollection) -> dict[str, Any]:
    return {
        kind: {"enabled": field.enabled, "optional": field.optional}
        for kind, field in (("business", names.business), ("individual", names.individual))
        if field is not None
    }
