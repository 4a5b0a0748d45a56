"""What a restricted key (`rk_test_…`) may do, and Stripe's 403 when it may not.

A restricted key has, per resource, no access, read or write; write includes read, and a GET
needs read while a POST or DELETE needs write (https://docs.stripe.com/keys#limit-access). Stripe
names each permission `rak_<resource>_<read|write>` in its refusal, an HTTP 403 whose error is an
`invalid_request_error` without `code` or `param`, which stripe-python raises as
`stripe.PermissionError`:

    The provided key 'rk_test_…abcd' does not have the required permissions for this endpoint on
    account 'acct_…'. Having the 'rak_checkout_session_write' permission would allow this request
    to continue.

The sandbox's resources: `checkout_session`, `product`, `price`, `coupon`, `promotion_code`,
`shipping_rate`, `tax_rate`, `customer` (a customer's saved payment methods too),
`webhook_endpoint`, `event`, `invoice`, `payment_method`, `payment_intent`, `charge` (a
charge's refunds list too), `refund`, `dispute`.

Control route: `POST /_sandbox/restricted_keys` (`key`, `permissions`: a list of those names,
empty for none) sets a key's permissions; `GET /_sandbox/restricted_keys` lists them. Like any
well-formed test key, a restricted key the sandbox was told nothing about is accepted, with
every permission: the sandbox does not mint keys, a test names them.
"""

from typing import Any

from .auth import mask
from .errors import StripeError, invalid
from .params import Array, Text, hash_of
from .store import Store

# Attachment keyed by the restricted key: the permissions it was given.
PERMISSIONS = "restricted_key.permissions"
ACCOUNT_ID = "acct_1SandboxAccount00"

# Route prefix -> the resource its permissions name.
_RESOURCES = {
    "/v1/checkout/sessions": "checkout_session",
    "/v1/products": "product",
    "/v1/prices": "price",
    "/v1/coupons": "coupon",
    "/v1/promotion_codes": "promotion_code",
    "/v1/shipping_rates": "shipping_rate",
    "/v1/tax_rates": "tax_rate",
    "/v1/customers": "customer",
    "/v1/webhook_endpoints": "webhook_endpoint",
    "/v1/events": "event",
    "/v1/invoices": "invoice",
    "/v1/payment_methods": "payment_method",
    "/v1/payment_intents": "payment_intent",
    "/v1/charges": "charge",
    "/v1/refunds": "refund",
    "/v1/disputes": "dispute",
}
NAMES = tuple(
    f"rak_{resource}_{level}" for resource in _RESOURCES.values() for level in ("read", "write")
)
_SET = hash_of("key", "permissions", key=Text(), permissions=Array(Text()))


def set_permissions(store: Store, raw: dict[str, Any]) -> dict[str, Any]:
    params = _SET.parse({"permissions": "", **raw})
    key: str = params["key"]
    if not key.startswith("rk_test_"):
        raise invalid("Only restricted test keys (`rk_test_…`) have permissions to set.", "key")
    unknown = [name for name in params["permissions"] if name not in NAMES]
    if unknown:
        raise invalid(
            f"Unknown permission `{unknown[0]}`; the sandbox knows {', '.join(NAMES)}.",
            "permissions",
        )
    store.attach(PERMISSIONS, key, sorted(set(params["permissions"])))
    return {"key": mask(key), "permissions": store.attached(PERMISSIONS, key)}


def listed(store: Store) -> list[dict[str, Any]]:
    return [
        {"key": mask(key), "permissions": permissions}
        for key, permissions in store.attachments.get(PERMISSIONS, {}).items()
    ]


def authorize(store: Store, key: str, method: str, route_path: str) -> None:
    """Refuse, as Stripe does, a request its restricted key has no permission for."""
    granted = store.attached(PERMISSIONS, key)
    if granted is None:
        return
    resource = next(
        (name for prefix, name in _RESOURCES.items() if route_path.startswith(prefix)), None
    )
    if resource is None:
        return
    level = "read" if method == "GET" else "write"
    needed = f"rak_{resource}_{level}"
    if needed in granted or f"rak_{resource}_write" in granted:
        return
    raise StripeError(
        f"The provided key '{mask(key)}' does not have the required permissions for this "
        f"endpoint on account '{ACCOUNT_ID}'. Having the '{needed}' permission would allow this "
        "request to continue.",
        status=403,
    )
