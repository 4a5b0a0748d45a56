"""The create parameters that say what Checkout collects and what it does around the payment:
custom fields and text, consent, name collection, a post-payment invoice, recovery after
expiry, saved payment methods, 3D Secure, and the PaymentIntent's descriptions. `check_options`
refuses what Stripe refuses of them (a validation failure, changing nothing); `option_fields`
are the session's fields that echo them.

Stripe's rules (https://docs.stripe.com/api/checkout/sessions/create and SessionCreateParams in
stripe-python 16.1.0):

- `custom_fields`: up to 3 (`checkout_params.py`), none in `setup` mode and none with
  `ui_mode=elements`; keys unique and alphanumeric; a `dropdown` field needs its options, whose
  values are unique and alphanumeric, and a `default_value` among them; a `text` or `numeric`
  field's `minimum_length` is at most its `maximum_length`
  (https://docs.stripe.com/payments/checkout/custom-fields).
- `custom_text`: not with `elements`; `terms_of_service_acceptance` replaces the text beside the
  terms-of-service checkbox, so it needs `consent_collection[terms_of_service]=required`, and
  `shipping_address` needs `shipping_address_collection` (strict: the sandbox's reading).
- `consent_collection[terms_of_service]=required` needs a terms-of-service URL in the account's
  public details (`public_details.py`).
- `invoice_creation`: `payment` mode only (https://docs.stripe.com/payments/checkout/receipts).
- `after_expiration`: not with `elements`; the recovered session is paid on a Stripe-hosted
  page (https://docs.stripe.com/payments/checkout/abandoned-carts), so the sandbox allows it
  with `hosted_page` only (strict).
- `saved_payment_method_options`: `payment` and `subscription` mode only; offering to save or
  remove payment methods needs a `customer` to keep them
  (https://docs.stripe.com/payments/checkout/save-during-payment), and saving with the
  customer's consent is not combined with `payment_intent_data[setup_future_usage]`, which saves
  without asking (strict: the sandbox's reading).
- `payment_intent_data[statement_descriptor]` is for non-card payments only, "setting this value
  for a card charge returns an error": the sandbox refuses it whenever a card may be offered
  (strict); a `statement_descriptor_suffix` needs a letter and none of `< > \\ ' " *`
  (https://docs.stripe.com/get-started/account/statement-descriptors).
"""

import re
from typing import Any

from .errors import invalid, parameter_missing
from .payment_methods import offered
from .public_details import terms_of_service_url
from .store import Store

_ALPHANUMERIC = re.compile(r"[A-Za-z0-9]+")
_DESCRIPTOR_FORBIDDEN = set("<>\\'\"*")
_LETTER = re.compile(r"[A-Za-z]")
_FIELD_TYPES = ("dropdown", "numeric", "text")
_CUSTOM_TEXTS = ("after_submit", "shipping_address", "submit", "terms_of_service_acceptance")


def check_options(store: Store, params: dict[str, Any], mode: str, ui_mode: str) -> None:
    for name in ("after_expiration", "custom_fields", "custom_text"):
        if name in params and ui_mode == "elements":
            raise invalid(f"You can not pass `{name}` when `ui_mode` is `elements`.", name)
    if "after_expiration" in params and ui_mode != "hosted_page":
        raise invalid(
            "`after_expiration` is only supported with `ui_mode` `hosted_page`.",
            "after_expiration",
        )
    if params.get("custom_fields") and mode == "setup":
        raise invalid("You can not pass `custom_fields` in `setup` mode.", "custom_fields")
    _check_custom_fields(params.get("custom_fields", []))
    _check_custom_text(params)
    consent = params.get("consent_collection", {})
    if consent.get("terms_of_service") == "required" and terms_of_service_url(store) is None:
        raise invalid(
            "You cannot collect consent to your terms of service unless a URL is set in the "
            "Stripe Dashboard. Update your public business details with a terms of service URL "
            "(https://dashboard.stripe.com/settings/public).",
            "consent_collection[terms_of_service]",
        )
    _check_saved_payment_methods(params)
    _check_descriptors(params)


def _check_custom_fields(fields: list[dict[str, Any]]) -> None:
    keys: set[str] = set()
    for index, field in enumerate(fields):
        path = f"custom_fields[{index}]"
        key = field["key"]
        if not _ALPHANUMERIC.fullmatch(key):
            raise invalid("A custom field's `key` must be alphanumeric.", f"{path}[key]")
        if key in keys:
            raise invalid(f"The custom field key `{key}` is used more than once.", f"{path}[key]")
        keys.add(key)
        kind = field["type"]
        for other in _FIELD_TYPES:
            if other != kind and other in field:
                raise invalid(
                    f"You can not pass `{other}` for a custom field of type `{kind}`.",
                    f"{path}[{other}]",
                )
        if kind == "dropdown":
            _check_dropdown(field.get("dropdown"), f"{path}[dropdown]")
        else:
            config = field.get(kind, {})
            low, high = config.get("minimum_length"), config.get("maximum_length")
            if low is not None and high is not None and low > high:
                raise invalid(
                    "`minimum_length` must be less than or equal to `maximum_length`.",
                    f"{path}[{kind}][minimum_length]",
                )
            default = config.get("default_value")
            if kind == "numeric" and default is not None and not default.isdigit():
                raise invalid(
                    "A numeric field's `default_value` may contain only digits.",
                    f"{path}[numeric][default_value]",
                )


def _check_dropdown(dropdown: dict[str, Any] | None, path: str) -> None:
    if dropdown is None:
        raise parameter_missing(path)
    options = dropdown["options"]
    if not options:
        raise invalid("A dropdown needs at least one option.", f"{path}[options]")
    values = [option["value"] for option in options]
    for index, value in enumerate(values):
        if not _ALPHANUMERIC.fullmatch(value) or value in values[:index]:
            raise invalid(
                "Each dropdown option's `value` must be alphanumeric and unique.",
                f"{path}[options][{index}][value]",
            )
    if "default_value" in dropdown and dropdown["default_value"] not in values:
        raise invalid(
            "`default_value` must match the `value` of one of the options.",
            f"{path}[default_value]",
        )


def _check_custom_text(params: dict[str, Any]) -> None:
    text = params.get("custom_text", {})
    consent = params.get("consent_collection", {})
    if "terms_of_service_acceptance" in text and consent.get("terms_of_service") != "required":
        raise invalid(
            "`custom_text[terms_of_service_acceptance]` requires "
            "`consent_collection[terms_of_service]` to be `required`.",
            "custom_text[terms_of_service_acceptance]",
        )
    if "shipping_address" in text and "shipping_address_collection" not in params:
        raise invalid(
            "`custom_text[shipping_address]` requires `shipping_address_collection`.",
            "custom_text[shipping_address]",
        )


def _check_saved_payment_methods(params: dict[str, Any]) -> None:
    options = params.get("saved_payment_method_options", {})
    if "saved_payment_method_options" in params and params["mode"] == "setup":
        raise invalid(
            "You can not pass `saved_payment_method_options` in `setup` mode.",
            "saved_payment_method_options",
        )
    for name in ("payment_method_save", "payment_method_remove"):
        if options.get(name) == "enabled" and "customer" not in params:
            raise invalid(
                f"`saved_payment_method_options[{name}]` can only be enabled with `customer`.",
                f"saved_payment_method_options[{name}]",
            )
    intent = params.get("payment_intent_data", {})
    if options.get("payment_method_save") == "enabled" and "setup_future_usage" in intent:
        raise invalid(
            "`saved_payment_method_options[payment_method_save]` cannot be enabled together "
            "with `payment_intent_data[setup_future_usage]`.",
            "saved_payment_method_options[payment_method_save]",
        )


def _check_descriptors(params: dict[str, Any]) -> None:
    intent = params.get("payment_intent_data", {})
    kinds = offered(params)
    if "statement_descriptor" in intent and (kinds is None or "card" in kinds):
        raise invalid(
            "The `statement_descriptor` parameter is not supported for the `card` payment "
            "method type. Use `statement_descriptor_suffix` instead.",
            "payment_intent_data[statement_descriptor]",
        )
    for name in ("statement_descriptor", "statement_descriptor_suffix"):
        value = intent.get(name)
        if value is not None and (
            not _LETTER.search(value) or _DESCRIPTOR_FORBIDDEN.intersection(value)
        ):
            raise invalid(
                "A statement descriptor must contain at least one letter and none of "
                "< > \\ ' \" *.",
                f"payment_intent_data[{name}]",
            )


def option_fields(params: dict[str, Any], paying: bool) -> dict[str, Any]:
    """The session's fields that echo these parameters, before the customer enters anything."""
    recovery = params.get("after_expiration", {}).get("recovery")
    consent = params.get("consent_collection")
    invoice = params.get("invoice_creation")
    names = params.get("name_collection")
    saved = params.get("saved_payment_method_options", {})
    card = params.get("payment_method_options", {}).get("card")
    return {
        "after_expiration": None
        if recovery is None
        else {
            "recovery": {
                "allow_promotion_codes": recovery.get("allow_promotion_codes", False),
                "enabled": recovery["enabled"],
                "expires_at": None,
                "url": None,
            }
        },
        "consent": None,
        "consent_collection": None
        if consent is None
        else {
            "payment_method_reuse_agreement": consent.get("payment_method_reuse_agreement"),
            "promotions": consent.get("promotions"),
            "terms_of_service": consent.get("terms_of_service"),
        },
        "custom_fields": [_custom_field(field) for field in params.get("custom_fields", [])],
        "custom_text": {name: params.get("custom_text", {}).get(name) for name in _CUSTOM_TEXTS},
        "invoice_creation": None if invoice is None else _invoice_creation(invoice),
        "name_collection": None
        if names is None
        else {
            kind: None
            if kind not in names
            else {"enabled": names[kind]["enabled"], "optional": names[kind].get("optional", False)}
            for kind in ("business", "individual")
        },
        "payment_method_options": {}
        if card is None
        else {"card": {"request_three_d_secure": card.get("request_three_d_secure", "automatic")}},
        "saved_payment_method_options": {
            "allow_redisplay_filters": saved.get("allow_redisplay_filters", ["always"]),
            "payment_method_remove": saved.get("payment_method_remove"),
            "payment_method_save": saved.get("payment_method_save"),
        }
        if paying
        else None,
    }


def _custom_field(field: dict[str, Any]) -> dict[str, Any]:
    kind = field["type"]
    config = field.get(kind, {})
    if kind == "dropdown":
        typed = {
            "default_value": config.get("default_value"),
            "options": config["options"],
            "value": None,
        }
    else:
        typed = {
            "default_value": config.get("default_value"),
            "maximum_length": config.get("maximum_length"),
            "minimum_length": config.get("minimum_length"),
            "value": None,
        }
    return {
        "dropdown": typed if kind == "dropdown" else None,
        "key": field["key"],
        "label": {"custom": field["label"]["custom"], "type": "custom"},
        "numeric": typed if kind == "numeric" else None,
        "optional": field.get("optional", False),
        "text": typed if kind == "text" else None,
        "type": kind,
    }


def _invoice_creation(invoice: dict[str, Any]) -> dict[str, Any]:
    data = invoice.get("invoice_data", {})
    rendering = data.get("rendering_options")
    return {
        "enabled": invoice["enabled"],
        "invoice_data": {
            "account_tax_ids": data.get("account_tax_ids"),
            "custom_fields": data.get("custom_fields"),
            "description": data.get("description"),
            "footer": data.get("footer"),
            "issuer": None if "issuer" not in data else {"account": None} | data["issuer"],
            "metadata": data.get("metadata", {}),
            "rendering_options": None
            if rendering is None
            else {
                "amount_tax_display": rendering.get("amount_tax_display"),
                "template": rendering.get("template"),
            },
        },
    }
