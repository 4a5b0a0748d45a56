"""The account's Tax settings, which decide what automatic tax does, and their control route.

On Stripe they are the account's Tax settings (https://docs.stripe.com/tax/settings-api, the
`tax.settings` object) and its tax registrations (https://docs.stripe.com/tax/registering); the
sandbox models the two parts Checkout depends on, behind the control API:

- `GET /_sandbox/tax/settings` reads them;
- `POST /_sandbox/tax/settings` (`defaults[tax_behavior]`: `exclusive`, `inclusive` or
  `inferred_by_currency`; `registrations`: country codes, replacing the list, empty to clear it;
  `failing`, below) changes them. As on Stripe, a default tax behaviour once set cannot be
  unset (a reset does).

A new account (and a reset) has neither: no default tax behaviour and no registrations.

- **Default tax behaviour.** With `automatic_tax[enabled]`, every price needs a tax behaviour of
  its own (`tax_behavior` `exclusive` or `inclusive`) or the account's default; otherwise Stripe
  refuses the session (https://docs.stripe.com/tax/products-prices-tax-codes-tax-behavior).
  `inferred_by_currency` makes prices in USD and CAD exclusive and all others inclusive, the
  sandbox's reading of that setting.
- **Failing calculations** (`failing`: country codes, replacing the list, empty to clear it; a
  sandbox-only fault): automatic tax for an address in one of them fails, as Stripe Tax's
  calculation can: the session's `automatic_tax.status` is `failed` and no tax is added, and the
  customer cannot pay until the address changes (the page, and `/pay`, refuse it on `country`).
- **Registrations.** Stripe Tax collects only where the account is registered
  (https://docs.stripe.com/tax/zero-tax): elsewhere the session's automatic tax is `complete`
  with nothing to pay. The sandbox registers whole countries (no US states), with the rates of
  `taxes.py`.
"""

from typing import Any

from .checkout_params import COUNTRIES
from .errors import invalid
from .params import Array, Choice, hash_of
from .store import Store

# Attachment keyed by `ACCOUNT`: the settings as the control route last set them.
TAX_SETTINGS = "account.tax_settings"
ACCOUNT = "account"

BEHAVIORS = ("exclusive", "inclusive", "inferred_by_currency")
_EXCLUSIVE_CURRENCIES = ("usd", "cad")
UPDATE = hash_of(
    defaults=hash_of(tax_behavior=Choice(BEHAVIORS)),
    registrations=Array(Choice(tuple(COUNTRIES))),
    failing=Array(Choice(tuple(COUNTRIES))),
)


def settings(store: Store) -> dict[str, Any]:
    """The `tax.settings` object, with the registrations beside it."""
    saved = store.attached(TAX_SETTINGS, ACCOUNT) or {}
    return {
        "object": "tax.settings",
        "defaults": {"tax_behavior": saved.get("tax_behavior"), "tax_code": None},
        "head_office": None,
        "livemode": False,
        "registrations": [
            {"object": "tax.registration", "country": country, "status": "active"}
            for country in saved.get("registrations", [])
        ],
        "failing": saved.get("failing", []),
    }


def update(store: Store, raw: dict[str, Any]) -> dict[str, Any]:
    """Apply `POST /_sandbox/tax/settings` parameters; returns the settings."""
    if (raw.get("defaults") or {}).get("tax_behavior") == "":
        raise invalid(
            "The default tax behavior cannot be unset once it is set.", "defaults[tax_behavior]"
        )
    params = UPDATE.parse(raw)
    saved = dict(store.attached(TAX_SETTINGS, ACCOUNT) or {})
    if "tax_behavior" in params.get("defaults", {}):
        saved["tax_behavior"] = params["defaults"]["tax_behavior"]
    if "registrations" in params:
        saved["registrations"] = sorted(set(params["registrations"]))
    if "failing" in params:
        saved["failing"] = sorted(set(params["failing"]))
    store.attach(TAX_SETTINGS, ACCOUNT, saved)
    return settings(store)


def register(store: Store, countries: list[str]) -> None:
    """Add registrations (the demo catalog's), keeping what is there."""
    saved = dict(store.attached(TAX_SETTINGS, ACCOUNT) or {})
    saved["registrations"] = sorted({*saved.get("registrations", []), *countries})
    store.attach(TAX_SETTINGS, ACCOUNT, saved)


def effective_behavior(store: Store, behavior: str, currency: str) -> str:
    """A price's tax behaviour, `unspecified` resolved through the account's default (and still
    `unspecified` when there is none)."""
    if behavior != "unspecified":
        return behavior
    default = (store.attached(TAX_SETTINGS, ACCOUNT) or {}).get("tax_behavior")
    if default == "inferred_by_currency":
        return "exclusive" if currency in _EXCLUSIVE_CURRENCIES else "inclusive"
    return str(default) if default else "unspecified"


def calculation_fails(store: Store, country: str | None) -> bool:
    """Whether Stripe Tax's calculation fails for an address in `country` (a sandbox fault)."""
    failing = (store.attached(TAX_SETTINGS, ACCOUNT) or {}).get("failing", [])
    return country in failing


def collects_in(store: Store, country: str) -> bool:
    registrations = (store.attached(TAX_SETTINGS, ACCOUNT) or {}).get("registrations", [])
    return country in registrations


def check_tax_behaviors(
    store: Store, behaviors: list[tuple[str, str]], currency: str | None
) -> None:
    """Refuse automatic tax for a session whose prices have no tax behaviour to follow.

    `behaviors` are each line's `(param, tax_behavior)`, the param naming where the behaviour
    belongs: `line_items[0][price_data][tax_behavior]`, or `line_items[0][price]` for an
    existing price."""
    for param, behavior in behaviors:
        if effective_behavior(store, behavior, currency or "") == "unspecified":
            raise invalid(
                "Automatic tax needs a tax behavior for every price: set `tax_behavior` to "
                "`exclusive` or `inclusive` on the price, or a default tax behavior in your "
                "Tax settings (https://dashboard.stripe.com/settings/tax).",
                param,
            )
