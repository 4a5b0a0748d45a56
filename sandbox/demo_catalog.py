"""A small catalog with fixed ids, loaded with `--demo-catalog`, so that documentation can name
real objects: `make run` and the README's examples use it.

Stripe gives the objects it creates random ids (coupons aside), and a real account's catalog is
its own: against real Stripe, the README's examples take your objects' ids instead. Seeding adds
what is missing and never changes what is there, so a state file keeps its own edits.

| id | what |
|---|---|
| `SUMMER10` | coupon, 10 % off, once |
| `FIVEOFF` | coupon, 5.00 USD off, once |
| `promo_demo_welcome5` | promotion code `WELCOME5` for `FIVEOFF` |
| `txr_demo_us_sales_tax` | tax rate "Sales tax", 8.25 % exclusive, US |
| `txr_demo_de_vat` | tax rate "VAT", 19 % inclusive, DE |
| `shr_demo_ground` | shipping rate "Ground", 5.00 USD, 3 to 5 business days |
| `price_demo_coffee_club` | price, 9.00 USD a month, of product `prod_demo_coffee_club` |
| `cus_demo_ada` | customer Ada Lovelace, with a US address |

The demo account is also registered for tax in every country of the automatic-tax table
(`taxes.py`), so that automatic tax collects there (`tax_settings.py`); it has no default tax
behaviour, like a new Stripe account, so automatic tax needs prices with a `tax_behavior`.
Its public details name a terms-of-service URL, so that sessions may ask for consent to it
(`public_details.py`).
"""

from decimal import Decimal
from typing import Any

from .catalog import PRICE, PRODUCT, create_price, create_product
from .customers import CUSTOMER, create_customer
from .discounts import COUPON, PROMOTION_CODE, coupon_object, promotion_code_object
from .public_details import terms_of_service_url
from .public_details import update as update_public_details
from .shipping import SHIPPING_RATE, create_shipping_rate
from .store import Store
from .tax_settings import register, settings
from .taxes import AUTOMATIC_RATES, TAX_RATE, tax_rate_object

DEMO_TERMS_OF_SERVICE_URL = "https://shop.example/terms"


def seed(store: Store, now: int) -> None:
    coupons = {
        "SUMMER10": {"percent_off": Decimal(10), "duration": "once", "name": "Summer 10 %"},
        "FIVEOFF": {"amount_off": 500, "currency": "usd", "duration": "once", "name": "5 off"},
    }
    for coupon_id, data in coupons.items():
        if store.get(COUPON, coupon_id) is None:
            store.insert(COUPON, coupon_id, coupon_object(coupon_id, now, data))
    if store.get(PROMOTION_CODE, "promo_demo_welcome5") is None:
        code = {"code": "WELCOME5", "promotion": {"coupon": "FIVEOFF"}}
        store.insert(
            PROMOTION_CODE,
            "promo_demo_welcome5",
            promotion_code_object("promo_demo_welcome5", now, code),
        )
    rates = {
        "txr_demo_us_sales_tax": ("Sales tax", "8.25", False, "US"),
        "txr_demo_de_vat": ("VAT", "19", True, "DE"),
    }
    for rate_id, (name, percentage, inclusive, country) in rates.items():
        if store.get(TAX_RATE, rate_id) is None:
            data = {"display_name": name, "inclusive": inclusive, "country": country}
            rate = tax_rate_object(rate_id, now, data, percentage=Decimal(percentage))
            store.insert(TAX_RATE, rate_id, rate)
    if store.get(SHIPPING_RATE, "shr_demo_ground") is None:
        ground = create_shipping_rate(
            store,
            now,
            {
                "display_name": "Ground",
                "fixed_amount": {"amount": 500, "currency": "usd"},
                "delivery_estimate": {
                    "minimum": {"unit": "business_day", "value": 3},
                    "maximum": {"unit": "business_day", "value": 5},
                },
            },
        )
        _rename(store, SHIPPING_RATE, ground, "shr_demo_ground")
    if store.get(PRODUCT, "prod_demo_coffee_club") is None:
        create_product(store, now, {"id": "prod_demo_coffee_club", "name": "Coffee club"})
    if store.get(PRICE, "price_demo_coffee_club") is None:
        monthly = {"currency": "usd", "unit_amount": 900, "recurring": {"interval": "month"}}
        price = create_price(store, now, monthly, "prod_demo_coffee_club")
        _rename(store, PRICE, price, "price_demo_coffee_club")
    if store.get(CUSTOMER, "cus_demo_ada") is None:
        address = {"line1": "1 Main St", "city": "San Francisco", "state": "CA"}
        address |= {"postal_code": "94103", "country": "US"}
        ada = create_customer(
            store, now, {"email": "ada@example.com", "name": "Ada Lovelace", "address": address}
        )
        _rename(store, CUSTOMER, ada, "cus_demo_ada")
    if not settings(store)["registrations"]:
        register(store, sorted(AUTOMATIC_RATES))
    if terms_of_service_url(store) is None:
        update_public_details(store, {"terms_of_service_url": DEMO_TERMS_OF_SERVICE_URL})


def _rename(store: Store, kind: str, created: dict[str, Any], fixed_id: str) -> None:
    """Give an object the builders stored under a random id its fixed one."""
    store.remove(kind, created["id"])
    created["id"] = fixed_id
    store.replace(kind, fixed_id, created)
