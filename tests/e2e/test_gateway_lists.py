"""The gateway's list calls against the sandbox, through stripe-python over HTTP: pages read as
JSON one after another, and the window the orphan scan asks for."""

from __future__ import annotations

import asyncio
import uuid

from service.gateway.stripe_gateway import StripeGateway
from tests.e2e.helpers import Sandbox


def _params(order_id: str) -> dict[str, object]:
    return {
        "mode": "payment",
        "client_reference_id": order_id,
        "metadata": {"order_id": order_id},
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 500,
                    "product_data": {"name": "Sticker"},
                },
            }
        ],
        "success_url": "https://shop.example/done",
    }


async def test_open_sessions_reads_every_page_within_the_window(sandbox: Sandbox) -> None:
    gateway = StripeGateway.connect(
        api_key="sk_test_tests", api_base=sandbox.url, timeout_seconds=10, max_network_retries=0
    )
    try:
        # One more than a page holds.
        made = await asyncio.gather(
            *(
                gateway.create_session(
                    _params(f"order-{uuid.uuid4().hex}"), idempotency_key=str(uuid.uuid4())
                )
                for _ in range(101)
            )
        )
        since = min(s.created for s in made)
        until = max(s.created for s in made) + 1

        listed = {s.id for s in await gateway.open_sessions(created_since=since)}
        within = {
            s.id for s in await gateway.open_sessions(created_since=since, created_before=until)
        }
        before = await gateway.open_sessions(created_since=since, created_before=since)
    finally:
        await gateway.close()

    assert {s.id for s in made} <= listed
    assert {s.id for s in made} <= within
    assert before == []
