"""Stripe, behind the domain's PaymentGateway port: stripe-python 16.x's async StripeClient.

Stripe's exceptions are translated here, once (`translate_stripe_errors`), and Stripe's JSON is
turned into the domain's SessionSnapshot here (`snapshot_from_stripe`). The same code serves real
Stripe and the local sandbox: only the base URL and the key differ (docs/architecture.md,
"Invariants").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import stripe

from service.domain.errors import (
    StripeMisconfigured,
    Unavailable,
    UpstreamMissing,
    UpstreamRejected,
)
from service.domain.model import (
    Address,
    LineItemSnapshot,
    SessionSnapshot,
    ShippingCost,
    ShippingDetails,
)

# stripe-python backs off between its own retries: 0.5 s doubling, at most 5 s each
# (`_sleep_time_seconds` in
# https://github.com/stripe/stripe-python/blob/master/stripe/_http_client.py). Budget for it on
# top of the per-attempt timeout.
_RETRY_BACKOFF_BUDGET_SECONDS = 5.0


class StripeGateway:
    def __init__(
        self,
        client: stripe.StripeClient,
        http_client: stripe.HTTPXClient,
        *,
        attempt_timeout_seconds: float,
        max_network_retries: int,
    ) -> None:
        self._client = client
        self._http = http_client
        # One bound for the whole call, retries included: every wait is bounded
        # (docs/architecture.md, "Invariants").
        self._call_timeout = attempt_timeout_seconds * (max_network_retries + 1) + (
            _RETRY_BACKOFF_BUDGET_SECONDS * max_network_retries
        )

    @classmethod
    def connect(
        cls,
        *,
        api_key: str,
        api_base: str,
        timeout_seconds: float,
        max_network_retries: int,
    ) -> StripeGateway:
        """Build the client; call it inside the running event loop, since httpx's connection
        pool belongs to the loop it was made in
        (https://github.com/encode/httpx/issues/2058)."""
        http = stripe.HTTPXClient(
            timeout=httpx.Timeout(timeout_seconds, connect=min(3.0, timeout_seconds))
        )
        client = stripe.StripeClient(
            api_key,
            http_client=http,
            base_addresses={"api": api_base},
            # StripeClient does not retry unless told:
            # https://github.com/stripe/stripe-python#configuring-automatic-retries
            max_network_retries=max_network_retries,
        )
        return cls(
            client,
            http,
            attempt_timeout_seconds=timeout_seconds,
            max_network_retries=max_network_retries,
        )

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_session(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> SessionSnapshot:
        async with self._call():
            session = await self._client.v1.checkout.sessions.create_async(
                dict(params),  # type: ignore[arg-type]  # built and checked by the domain
                # The key goes in the options, never in the params, where stripe-python would
                # send it as a form field and make up a key of its own:
                # https://github.com/stripe/stripe-python#per-request-configuration
                {"idempotency_key": idempotency_key},
            )
        return snapshot_from_stripe(session.to_dict())

    async def retrieve_session(self, session_id: str) -> SessionSnapshot:
        async with self._call():
            session = await self._client.v1.checkout.sessions.retrieve_async(
                session_id, {"expand": ["line_items"]}
            )
        return snapshot_from_stripe(session.to_dict())

    async def expire_session(self, session_id: str, *, idempotency_key: str) -> SessionSnapshot:
        async with self._call():
            session = await self._client.v1.checkout.sessions.expire_async(
                session_id, {"expand": ["line_items"]}, {"idempotency_key": idempotency_key}
            )
        return snapshot_from_stripe(session.to_dict())

    @asynccontextmanager
    async def _call(self) -> AsyncIterator[None]:
        async with translate_stripe_errors(), asyncio.timeout(self._call_timeout):
            yield


@asynccontextmanager
async def translate_stripe_errors() -> AsyncIterator[None]:
    """Stripe's exceptions, as the domain knows them
    (https://docs.stripe.com/error-handling?lang=python#error-types).

    IdempotencyError passes through untranslated: it means we reused an idempotency key with
    other parameters, which is a bug, and the edge answers INTERNAL for bugs."""
    try:
        yield
    except TimeoutError as exc:
        raise Unavailable(
            "Stripe did not answer in time; the outcome is unknown, retry with the same request",
            reason="STRIPE_TIMEOUT",
        ) from exc
    except stripe.RateLimitError as exc:
        # stripe-python never retries a 429; the caller backs off.
        raise Unavailable(
            "Stripe is rate limiting this service",
            reason="STRIPE_RATE_LIMITED",
            retry_after_seconds=2.0,
            upstream_request_id=exc.request_id,
        ) from exc
    except stripe.APIConnectionError as exc:
        raise Unavailable(
            "Stripe could not be reached; the outcome is unknown, retry with the same request",
            reason="STRIPE_UNREACHABLE",
            upstream_request_id=exc.request_id,
        ) from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        # Stripe's message names what is wrong with the key, never the key itself.
        raise StripeMisconfigured(
            f"Stripe refused this service's API key: {_message(exc)}",
            upstream_request_id=exc.request_id,
        ) from exc
    except (stripe.InvalidRequestError, stripe.CardError) as exc:
        kind = UpstreamMissing if exc.code == "resource_missing" else UpstreamRejected
        raise kind(
            _message(exc), param=exc.param, code=exc.code, request_id=exc.request_id
        ) from exc
    except stripe.APIError as exc:
        # 5xx, 409 (a concurrent request with the same key) and the like: worth a retry.
        raise Unavailable(
            "Stripe failed to answer; retry with the same request",
            reason="STRIPE_ERROR",
            upstream_request_id=exc.request_id,
        ) from exc


def _message(exc: stripe.StripeError) -> str:
    error = exc.error
    message = error.message if error is not None and error.message else exc.user_message
    return str(message or "refused")


def snapshot_from_stripe(data: Mapping[str, Any]) -> SessionSnapshot:
    """A `checkout.session` object (API 2026-10-28.endive) as the domain's snapshot."""
    totals = data.get("total_details") or {}
    presentment = data.get("presentment_details") or {}
    collected = data.get("collected_information") or {}
    details = data.get("customer_details") or {}
    line_items = data.get("line_items") or {}
    return SessionSnapshot(
        id=data["id"],
        mode=data["mode"],
        ui_mode=data.get("ui_mode") or "",
        status=data.get("status"),
        payment_status=data["payment_status"],
        currency=data.get("currency"),
        amount_subtotal=data.get("amount_subtotal"),
        amount_total=data.get("amount_total"),
        amount_discount=totals.get("amount_discount") or 0,
        amount_shipping=totals.get("amount_shipping") or 0,
        amount_tax=totals.get("amount_tax") or 0,
        livemode=bool(data.get("livemode")),
        created=data["created"],
        expires_at=data["expires_at"],
        url=data.get("url"),
        client_secret=data.get("client_secret"),
        presentment_amount=presentment.get("presentment_amount"),
        presentment_currency=presentment.get("presentment_currency"),
        customer_id=_id(data.get("customer")),
        customer_email=data.get("customer_email") or details.get("email"),
        payment_intent_id=_id(data.get("payment_intent")),
        subscription_id=_id(data.get("subscription")),
        setup_intent_id=_id(data.get("setup_intent")),
        shipping=_shipping(collected.get("shipping_details")),
        metadata=dict(data.get("metadata") or {}),
        success_url=data.get("success_url"),
        cancel_url=data.get("cancel_url"),
        return_url=data.get("return_url"),
        line_items=tuple(_line_item(li) for li in line_items.get("data", ())),
        shipping_cost=_shipping_cost(data.get("shipping_cost")),
        discount_ids=tuple(
            _id(d.get("promotion_code")) or _id(d.get("coupon")) or ""
            for d in data.get("discounts") or ()
        ),
    )


def _shipping_cost(data: Mapping[str, Any] | None) -> ShippingCost | None:
    if not data:
        return None
    return ShippingCost(
        shipping_rate_id=_id(data.get("shipping_rate")) or "",
        amount_subtotal=data.get("amount_subtotal") or 0,
        amount_tax=data.get("amount_tax") or 0,
        amount_total=data.get("amount_total") or 0,
    )


def _id(value: Any) -> str | None:
    """An expandable field: an id, or the expanded object carrying it."""
    if isinstance(value, Mapping):
        return str(value["id"])
    return None if value is None else str(value)


def _shipping(data: Mapping[str, Any] | None) -> ShippingDetails | None:
    if not data:
        return None
    address = data.get("address") or {}
    return ShippingDetails(
        name=data.get("name") or "",
        address=Address(
            line1=address.get("line1") or "",
            line2=address.get("line2") or "",
            city=address.get("city") or "",
            state=address.get("state") or "",
            postal_code=address.get("postal_code") or "",
            country=address.get("country") or "",
        ),
    )


def _line_item(data: Mapping[str, Any]) -> LineItemSnapshot:
    price = data.get("price") or {}
    return LineItemSnapshot(
        id=data["id"],
        description=data.get("description") or "",
        quantity=data.get("quantity") or 0,
        price_id=_id(price) or "",
        currency=data.get("currency") or "",
        unit_amount=price.get("unit_amount") or 0,
        amount_subtotal=data.get("amount_subtotal") or 0,
        amount_discount=data.get("amount_discount") or 0,
        amount_tax=data.get("amount_tax") or 0,
        amount_total=data.get("amount_total") or 0,
    )
