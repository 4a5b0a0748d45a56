"""The cart every workload buys, as a CreateSession request and as the Stripe parameters the
service sends for it (so that the direct stripe-python baseline creates the same sessions)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from checkout.v1 import checkout_service_pb2 as api

UNIT_AMOUNT = 1500
QUANTITY = 2
PRODUCT = "T-shirt"
SUCCESS_URL = "https://shop.example/done"


def new_order() -> str:
    return f"bench-{uuid.uuid4().hex[:16]}"


def cart(order_id: str) -> api.CreateSessionRequest:
    return api.CreateSessionRequest(
        order_id=order_id,
        currency="usd",
        line_items=[
            api.CreateSessionRequest.LineItem(
                price_data=api.CreateSessionRequest.PriceData(
                    unit_amount=UNIT_AMOUNT, product_name=PRODUCT
                ),
                quantity=QUANTITY,
            )
        ],
        success_url=SUCCESS_URL,
    )


def stripe_params(order_id: str) -> dict[str, Any]:
    """What service/domain/create_plan.py sends to Stripe for `cart(order_id)`."""
    return {
        "mode": "payment",
        "ui_mode": "hosted_page",
        "client_reference_id": order_id,
        "metadata": {"order_id": order_id},
        "expires_at": int(time.time()) + 23 * 3600,
        "expand": ["line_items"],
        "line_items": [
            {
                "quantity": QUANTITY,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": UNIT_AMOUNT,
                    "product_data": {"name": PRODUCT},
                },
            }
        ],
        "currency": "usd",
        "success_url": SUCCESS_URL,
        "payment_intent_data": {"metadata": {"order_id": order_id}},
    }
