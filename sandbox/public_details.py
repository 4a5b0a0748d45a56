"""The account's public business details that Checkout depends on, and their control route.

On Stripe they are set in the Dashboard (https://dashboard.stripe.com/settings/public); the one
Checkout reads is the terms-of-service URL: `consent_collection[terms_of_service]=required` is
refused without it, and the page links to it beside the checkbox
(https://docs.stripe.com/payments/checkout/customization/policies).

- `GET /_sandbox/account/public_details` reads them;
- `POST /_sandbox/account/public_details` (`terms_of_service_url`, empty to clear it) sets them.

A new account (and a reset) has none; the demo catalog sets `https://shop.example/terms`.
"""

from typing import Any

from .params import Url, hash_of
from .store import Store

# Attachment keyed by `ACCOUNT`.
PUBLIC_DETAILS = "account.public_details"
ACCOUNT = "account"

_UPDATE = hash_of(terms_of_service_url=Url())


def public_details(store: Store) -> dict[str, Any]:
    saved = store.attached(PUBLIC_DETAILS, ACCOUNT) or {}
    return {"terms_of_service_url": saved.get("terms_of_service_url")}


def update(store: Store, raw: dict[str, Any]) -> dict[str, Any]:
    """Apply `POST /_sandbox/account/public_details` parameters; returns the details."""
    if raw.get("terms_of_service_url") == "":
        store.detach(PUBLIC_DETAILS, ACCOUNT)
        return public_details(store)
    store.attach(PUBLIC_DETAILS, ACCOUNT, {**public_details(store), **_UPDATE.parse(raw)})
    return public_details(store)


def terms_of_service_url(store: Store) -> str | None:
    url: str | None = public_details(store)["terms_of_service_url"]
    return url
