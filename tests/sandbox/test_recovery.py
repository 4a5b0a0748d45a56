"""Abandoned-cart recovery (`after_expiration[recovery]`): the URL an expired session gets, the
copy it creates with `recovered_from`, and its 30 days; and the line items' includable fields."""

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import line_item, pay, session_params

DAY = 24 * 60 * 60


async def advance(raw: httpx.AsyncClient, seconds: int) -> None:
    (await raw.post("/_sandbox/clock/advance", json={"seconds": seconds})).raise_for_status()


async def test_an_expired_session_is_recovered_by_a_copy(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            line_item(1500, 2),
            metadata={"order_id": "42"},
            after_expiration={"recovery": {"enabled": True, "allow_promotion_codes": True}},
        )
    )
    await advance(raw, DAY + 1)
    expired = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert expired.after_expiration is not None
    recovery = expired.after_expiration.recovery
    assert expired.status == "expired" and recovery is not None and recovery.url is not None
    assert recovery.expires_at is not None
    assert recovery.expires_at >= expired.expires_at + 30 * DAY
    assert recovery.url.startswith(sandbox.url)
    event = (await client.v1.events.list_async()).data[0]
    assert event.type == "checkout.session.expired"
    assert event.data.object["after_expiration"]["recovery"]["url"] == recovery.url

    opened = await raw.get(recovery.url)
    assert opened.status_code == 303
    listed = (await client.v1.checkout.sessions.list_async({"status": "open"})).data
    assert len(listed) == 1
    copy = listed[0]
    assert opened.headers["Location"] == copy.url
    assert (copy.recovered_from, copy.amount_total, copy.allow_promotion_codes) == (
        session.id,
        3000,
        True,
    )
    assert copy.metadata is not None and copy.metadata["order_id"] == "42"
    assert copy.expires_at > expired.expires_at
    # Opened again, the link leads to the same open copy.
    again = await raw.get(recovery.url)
    assert again.headers["Location"] == copy.url
    await pay(raw, copy.id)
    third = await raw.get(recovery.url)
    assert third.status_code == 303 and third.headers["Location"] != copy.url


async def test_the_recovery_url_lasts_30_days(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(after_expiration={"recovery": {"enabled": True}})
    )
    expired = await client.v1.checkout.sessions.expire_async(session.id)
    assert expired.after_expiration is not None
    recovery = expired.after_expiration.recovery
    assert recovery is not None and recovery.url is not None and recovery.expires_at is not None
    clock = (await raw.get("/_sandbox/clock")).json()["now"]
    # Expired a moment before the clock was read.
    assert clock - 5 <= recovery.expires_at - 30 * DAY <= clock
    await advance(raw, 30 * DAY)
    assert (await raw.get(recovery.url)).status_code == 410


async def test_no_recovery_unless_asked(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(after_expiration={"recovery": {"enabled": False}})
    )
    expired = await client.v1.checkout.sessions.expire_async(session.id)
    assert expired.after_expiration is not None and expired.after_expiration.recovery is not None
    assert expired.after_expiration.recovery.url is None
    assert (await raw.get(f"/c/recover/{session.id}")).status_code == 404
    plain = await client.v1.checkout.sessions.create_async(session_params())
    assert (await client.v1.checkout.sessions.expire_async(plain.id)).after_expiration is None


async def test_line_item_taxes_and_discounts_are_included_when_expanded(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    rate = await client.v1.tax_rates.create_async(
        {"display_name": "VAT", "percentage": 19, "inclusive": False}
    )
    coupon = await client.v1.coupons.create_async({"percent_off": 10})
    params = session_params(
        {**line_item(1000, 1), "tax_rates": [rate.id]}, discounts=[{"coupon": coupon.id}]
    )
    session = await client.v1.checkout.sessions.create_async(params)
    plain = await client.v1.checkout.sessions.line_items.list_async(session.id)
    assert "taxes" not in plain.data[0] and "discounts" not in plain.data[0]
    listed = await client.v1.checkout.sessions.line_items.list_async(
        session.id, {"expand": ["data.taxes", "data.discounts"]}
    )
    (item,) = listed.data
    assert item.taxes is not None and item.discounts is not None
    assert [(t.amount, t.rate.id, t.taxable_amount) for t in item.taxes] == [(171, rate.id, 900)]
    assert [(d.amount, d.discount.source.coupon) for d in item.discounts] == [(100, coupon.id)]
    expanded = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["line_items.data.discounts", "total_details.breakdown"]}
    )
    assert expanded.line_items is not None
    assert "taxes" not in expanded.line_items.data[0]
    assert expanded.line_items.data[0].discounts is not None
    assert expanded.total_details is not None
    breakdown = expanded.total_details.breakdown
    assert breakdown is not None and [t.amount for t in breakdown.taxes] == [171]


async def test_expanding_through_a_null_object_answers_the_null(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    """A setup session has no `total_details`: Stripe answers it null when asked to expand its
    breakdown, and still refuses a path that cannot be expanded."""
    params = session_params(mode="setup", line_items=None, currency="usd")
    session = await client.v1.checkout.sessions.create_async(params)
    expanded = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["total_details.breakdown", "line_items.data.taxes"]}
    )
    assert expanded.total_details is None
    assert expanded.line_items is not None and expanded.line_items.data == []
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["total_details"]})
    assert caught.value.param == "expand"
