"""A session carries up to 100 line items; as on Stripe, the expanded session shows the first
page of 10 (`has_more`), and `/line_items` pages through all of them."""

import httpx
import stripe

from sandbox.launcher import SandboxProcess

from .support import line_item, session_params


async def test_a_hundred_line_items_page_like_stripe(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    items = [line_item(100 + n, name=f"Item {n:03}") for n in range(100)]
    session = await client.v1.checkout.sessions.create_async(
        session_params(*items, expand=["line_items"])
    )
    assert session.amount_total == sum(100 + n for n in range(100))
    assert session.line_items is not None
    assert len(session.line_items.data) == 10 and session.line_items.has_more
    assert session.line_items.url == f"/v1/checkout/sessions/{session.id}/line_items"

    # stripe-python follows `has_more` with `starting_after` until the end.
    first = await client.v1.checkout.sessions.line_items.list_async(session.id, {"limit": 30})
    every = [item.description async for item in first.auto_paging_iter()]
    assert every == [f"Item {n:03}" for n in range(100)]

    whole = await client.v1.checkout.sessions.line_items.list_async(session.id, {"limit": 100})
    assert len(whole.data) == 100 and not whole.has_more
    before = await client.v1.checkout.sessions.line_items.list_async(
        session.id, {"ending_before": whole.data[50].id, "limit": 5}
    )
    assert [i.description for i in before.data] == [f"Item {n:03}" for n in range(45, 50)]
    too_many = await raw.get(
        f"/v1/checkout/sessions/{session.id}/line_items",
        params={"limit": 101},
        headers={"Authorization": "Bearer sk_test_123"},
    )
    assert (too_many.status_code, too_many.json()["error"]["param"]) == (400, "limit")

    # The session carries line items only when they are expanded.
    retrieved = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert "line_items" not in retrieved
