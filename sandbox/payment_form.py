"""The hosted page's payment form: what the customer enters before they pay, as HTML.

It asks for what the session collects (`buyer_entries.py`): an email when the session knows
none, a name, the card (`cards.py`; a returning customer may pick a saved one and, where the
session offers it, save the new one), a phone number, business and individual names, a tax ID,
the address (marked required with `billing_address_collection=required`), the custom fields,
and consent; with the session's custom text beside them. Each input is named as
`POST /_sandbox/checkout/sessions/{id}/pay` names the value, so the page and the control route
take the same entries and refuse the same omissions. A refused payment shows the page again
with what was entered. Everything printed is HTML-escaped.
"""

from collections.abc import Callable
from html import escape
from typing import Any

from .buyer_entries import TAX_ID_TYPES
from .cards import DEFAULT_CARD
from .public_details import terms_of_service_url
from .saved_payment_methods import offered_to
from .store import Store

_ADDRESS = (
    ("line1", "Address line 1"),
    ("line2", "Address line 2"),
    ("city", "City"),
    ("state", "State"),
    ("postal_code", "Postal code"),
    ("country", "Country (two letters)"),
)
_REQUIRED_ADDRESS = ("line1", "city", "postal_code", "country")


def payment_fields(store: Store, session: dict[str, Any], entered: dict[str, Any]) -> str:
    """The inputs of the payment form, pre-filled with what was `entered` (a decoded form)."""
    value = _entered(entered)
    parts = [_text(session, "custom_text", "submit")]
    if session["customer_email"] is None and session["customer"] is None:
        parts.append(_input("email", "Email", value("email"), kind="email"))
    parts.append(_input("name", "Name on card", value("name")))
    parts.append(_card(store, session, value))
    if session["phone_number_collection"]["enabled"]:
        parts.append(_input("phone", "Phone number", value("phone"), kind="tel", required=True))
    parts += _names(session, value)
    if session["tax_id_collection"]["enabled"]:
        parts.append(_tax_id(session, value))
    parts.append(_address(session, value))
    parts += [_custom_field(custom, value) for custom in session["custom_fields"]]
    parts.append(_consent(store, session, value))
    return "".join(parts)


def _entered(entered: dict[str, Any]) -> Callable[..., str]:
    def value(*path: str) -> str:
        node: Any = entered
        for name in path:
            node = node.get(name) if isinstance(node, dict) else None
        return node if isinstance(node, str) else ""

    return value


def _card(store: Store, session: dict[str, Any], value: Callable[..., str]) -> str:
    saved = offered_to(store, session)
    parts = []
    if saved:
        options = "".join(
            _option(method["id"], f"{method['card']['brand']} •••• {method['card']['last4']}")
            for method in saved
        )
        parts.append(
            '<label>Saved card <select name="payment_method">'
            f'<option value="">Use a new card</option>{options}</select></label>'
        )
    number = value("card_number") or DEFAULT_CARD
    parts.append(_input("card_number", "Card number (a Stripe test card)", number))
    options_ = session["saved_payment_method_options"] or {}
    if options_.get("payment_method_save") == "enabled":
        parts.append(
            _checkbox("save_payment_method", "true", "Save my payment details for next time", value)
        )
    return "<fieldset><legend>Payment</legend>" + "".join(parts) + "</fieldset>"


def _names(session: dict[str, Any], value: Callable[..., str]) -> list[str]:
    collection = session["name_collection"] or {}
    parts = []
    for kind, label in (("business", "Business name"), ("individual", "Full name")):
        setting = collection.get(kind) or {"enabled": False, "optional": True}
        shown = setting["enabled"] or (
            kind == "business" and session["tax_id_collection"]["enabled"]
        )
        if shown:
            required = setting["enabled"] and not setting["optional"]
            parts.append(_input(f"{kind}_name", label, value(f"{kind}_name"), required=required))
    return parts


def _tax_id(session: dict[str, Any], value: Callable[..., str]) -> str:
    chosen = value("tax_id", "type") or "eu_vat"
    options = "".join(_option(kind, kind, kind == chosen) for kind in TAX_ID_TYPES)
    required = session["tax_id_collection"]["required"] == "if_supported"
    return (
        "<fieldset><legend>Tax ID</legend>"
        f'<label>Type <select name="tax_id[type]">{options}</select></label>'
        + _input("tax_id[value]", "Number", value("tax_id", "value"), required=required)
        + "</fieldset>"
    )


def _address(session: dict[str, Any], value: Callable[..., str]) -> str:
    required = session["billing_address_collection"] == "required"
    shipping = session["shipping_address_collection"] is not None
    legend = "Shipping and billing address" if shipping else "Billing address"
    inputs = "".join(
        _input(name, label, value(name), required=required and name in _REQUIRED_ADDRESS)
        for name, label in _ADDRESS
    )
    return (
        f"<fieldset><legend>{legend}</legend>{_text(session, 'custom_text', 'shipping_address')}"
        f"{inputs}</fieldset>"
    )


def _custom_field(custom: dict[str, Any], value: Callable[..., str]) -> str:
    key, kind = custom["key"], custom["type"]
    typed = custom[kind]
    name = f"custom_fields[{key}]"
    label = custom["label"]["custom"] + ("" if not custom["optional"] else " (optional)")
    current = value("custom_fields", key) or typed["default_value"] or ""
    if kind == "dropdown":
        options = "".join(
            _option(option["value"], option["label"], option["value"] == current)
            for option in typed["options"]
        )
        blank = "" if current else '<option value="" selected></option>'
        select = f'<select name="{escape(name)}">{blank}{options}</select>'
        return f"<label>{escape(label)} {select}</label>"
    mode = ' inputmode="numeric"' if kind == "numeric" else ""
    return _input(name, label, current, required=not custom["optional"], extra=mode)


def _consent(store: Store, session: dict[str, Any], value: Callable[..., str]) -> str:
    collection = session["consent_collection"]
    if collection is None:
        return ""
    parts = []
    if collection["promotions"] == "auto":
        parts.append(
            _checkbox("consent[promotions]", "opt_in", "Send me news and offers by email", value)
        )
    if collection["terms_of_service"] == "required":
        custom = (session["custom_text"]["terms_of_service_acceptance"] or {}).get("message")
        url = terms_of_service_url(store) or ""
        text = (
            escape(custom)
            if custom
            else (f'I agree to the <a href="{escape(url)}">terms of service</a>')
        )
        checked = " checked" if value("consent", "terms_of_service") else ""
        parts.append(
            '<label><input type="checkbox" name="consent[terms_of_service]" value="accepted"'
            f"{checked} required> {text}</label>"
        )
    return "".join(parts)


def _text(session: dict[str, Any], field: str, name: str) -> str:
    message = (session[field][name] or {}).get("message")
    return "" if not message else f'<p class="note">{escape(message)}</p>'


def after_submit(session: dict[str, Any]) -> str:
    return _text(session, "custom_text", "after_submit")


def _input(
    name: str,
    label: str,
    current: str,
    *,
    kind: str = "text",
    required: bool = False,
    extra: str = "",
) -> str:
    marker = " required" if required else ""
    return (
        f'<label>{escape(label)} <input type="{kind}" name="{escape(name)}" '
        f'value="{escape(current)}"{marker}{extra}></label>'
    )


def _checkbox(name: str, on: str, label: str, value: Callable[..., str]) -> str:
    checked = " checked" if value(*name.replace("]", "").split("[")) == on else ""
    return (
        f'<label><input type="checkbox" name="{escape(name)}" value="{escape(on)}"{checked}> '
        f"{escape(label)}</label>"
    )


def _option(value: str, label: str, selected: bool = False) -> str:
    marker = " selected" if selected else ""
    return f'<option value="{escape(value)}"{marker}>{escape(label)}</option>'
