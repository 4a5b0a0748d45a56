"""Stripe, behind the domain's PaymentGateway port: stripe-python 16.x's async StripeClient.

Stripe's exceptions are translated here, once (`translate_stripe_errors`), and Stripe's JSON is
turned into the domain's SessionSnapshot here (`snapshot_from_stripe`). The same code serves real
Stripe and the local sandbox: only the base URL and the key differ (docs/architecture.md,
"Invariants").
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager, nullcontext
from typing import Any, TypeVar

import aiohttp
import stripe
import structlog

from service.domain import deadlines, rate_limits
from service.domain.create_plan import SESSION_EXPANSIONS
from service.domain.errors import (
    CheckoutError,
    DeadlineExceeded,
    IdempotencyKeySpent,
    QuotaExceeded,
    StripeMisconfigured,
    Unavailable,
    UpstreamMissing,
    UpstreamRejected,
)
from service.domain.model import (
    LineItemSnapshot,
    SessionSnapshot,
    ShippingCost,
    ShippingDetails,
    StripeEvent,
)
from service.domain.payment_model import PaymentEvent, PaymentSnapshot, RefundSnapshot
from service.gateway.collected import (
    address,
    collected_fields,
    discount_amounts,
    tax_amounts,
)
from service.gateway.collected import (
    stripe_id as _id,
)
from service.gateway.stripe_payments import charge_of, payment_from_stripe, refund_from_stripe
from service.gateway.webhooks import event_from_stripe
from service.observability import tracing
from service.observability.metrics import Metrics

# stripe-python backs off between its own retries: 0.5 s doubling, at most 5 s each
# (`_sleep_time_seconds` in
# https://github.com/stripe/stripe-python/blob/master/stripe/_http_client.py). Budget for it on
# top of the per-attempt timeout.
_RETRY_BACKOFF_BUDGET_SECONDS = 5.0
# Left of the caller's deadline for us to answer in, after a Stripe call.
_ANSWER_MARGIN_SECONDS = 0.2
# Below this, a Stripe call is not started: it could reach Stripe and then be cut off.
_MIN_CALL_SECONDS = 0.5
# stripe-python never retries a 429; we do, with full jitter
# (https://docs.stripe.com/rate-limits#handling-limiting-gracefully), while the budget lasts.
_RATE_LIMIT_FIRST_BACKOFF_SECONDS = 0.25
_RATE_LIMIT_MAX_BACKOFF_SECONDS = 4.0
# Stripe's largest page; a session's 100 line items fit in one.
_PAGE = 100
_SESSIONS = "/v1/checkout/sessions"
_EXPAND = list(SESSION_EXPANSIONS)
# The same expansions of a line item, on the line items' own list (`data.taxes`).
_LINE_EXPAND = [
    path.removeprefix("line_items.")
    for path in SESSION_EXPANSIONS
    if path.startswith("line_items.")
]
_INTENTS = "/v1/payment_intents"
# A PaymentIntent's latest charge and the first page of its refunds, in one read.
_CHARGE_REFUNDS = "latest_charge.refunds"

T = TypeVar("T")
log = structlog.get_logger("stripe")
# A restricted key's permission as Stripe names it in a 403: `rak_checkout_session_write`
# (https://docs.stripe.com/keys#limit-access).
_PERMISSION = re.compile(r"\brak_[a-z_]+?_(?:read|write)\b")
# A key as Stripe may quote it in a refusal, masked or not: it goes in no message of ours.
_QUOTED_KEY = re.compile(r"'?\b(?:sk|rk|pk)_(?:test|live)_\S*")


class StripeGateway:
    def __init__(
        self,
        client: stripe.StripeClient,
        http_client: stripe.AIOHTTPClient,
        *,
        attempt_timeout_seconds: float,
        max_network_retries: int,
    ) -> None:
        self._client = client
        self._http = http_client
        self._metrics: Metrics | None = None
        self._traced = False
        # One bound for the whole call, retries included: every wait is bounded
        # (docs/architecture.md, "Invariants").
        self._call_timeout = attempt_timeout_seconds * (max_network_retries + 1) + (
            _RETRY_BACKOFF_BUDGET_SECONDS * max_network_retries
        )

    def observe(self, metrics: Metrics, *, traced: bool) -> None:
        """Count and time every Stripe call, and trace it when tracing is on."""
        self._metrics = metrics
        self._traced = traced

    @property
    def call_timeout(self) -> float:
        """The longest one Stripe operation may take, retries included."""
        return self._call_timeout

    @classmethod
    def connect(
        cls,
        *,
        api_key: str,
        api_base: str,
        timeout_seconds: float,
        max_network_retries: int,
    ) -> StripeGateway:
        """Build the client; call it inside the running event loop, since the HTTP client's
        connection pool belongs to the loop it was made in. stripe-python's aiohttp client,
        not its default httpx one: under hundreds of calls in flight httpx's pool spends more
        CPU per call the more calls wait (make bench measured it), aiohttp's does not."""
        http = stripe.AIOHTTPClient(
            timeout=aiohttp.ClientTimeout(total=timeout_seconds, connect=min(3.0, timeout_seconds))
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
        # The key goes in the options, never in the params, where stripe-python would send it
        # as a form field and make up a key of its own:
        # https://github.com/stripe/stripe-python#per-request-configuration
        return await self._session(
            "create", "post", _SESSIONS, params, {"idempotency_key": idempotency_key}
        )

    async def retrieve_session(self, session_id: str) -> SessionSnapshot:
        return await self._session(
            "retrieve", "get", f"{_SESSIONS}/{_path_id(session_id)}", {"expand": _EXPAND}
        )

    async def expire_session(self, session_id: str, *, idempotency_key: str) -> SessionSnapshot:
        return await self._session(
            "expire",
            "post",
            f"{_SESSIONS}/{_path_id(session_id)}/expire",
            {"expand": _EXPAND},
            {"idempotency_key": idempotency_key},
        )

    async def _session(
        self,
        operation: str,
        method: str,
        path: str,
        params: Mapping[str, Any],
        options: Mapping[str, str] | None = None,
    ) -> SessionSnapshot:
        """One call that answers a Checkout Session, read as the JSON Stripe sent. stripe-python's
        raw_request_async sends it exactly as the typed methods do (same encoding, retries,
        headers and error classes) but skips building a StripeObject tree from the answer,
        which `make bench` measured at a quarter of the service's CPU per new session
        (https://github.com/stripe/stripe-python#custom-requests)."""
        response = await self._call(
            operation,
            lambda: self._client.raw_request_async(method, path, **params, **(options or {})),
        )
        return await self._snapshot(response.data)

    async def open_sessions(
        self, *, created_since: int, created_before: int | None = None
    ) -> list[SessionSnapshot]:
        """Every open session created since `created_since` and before `created_before` (Unix
        seconds)."""
        return await self._sessions(created_since, created_before, status="open")

    async def sessions(
        self, *, created_since: int, created_before: int | None = None
    ) -> list[SessionSnapshot]:
        """Every session created since `created_since` and before `created_before` (Unix
        seconds), whatever its status."""
        return await self._sessions(created_since, created_before)

    async def _sessions(
        self, created_since: int, created_before: int | None, **filters: str
    ) -> list[SessionSnapshot]:
        """https://docs.stripe.com/api/checkout/sessions/list"""
        created = {"gte": created_since}
        if created_before is not None:
            created["lt"] = created_before
        listed = await self._listed("list", _SESSIONS, {"created": created, **filters})
        return [snapshot_from_stripe(session) for session in listed]

    async def session_events(
        self, types: Collection[str], *, created_since: int
    ) -> list[StripeEvent | PaymentEvent]:
        """Events of `types` made since `created_since`, oldest first, about Checkout Sessions
        and payments after checkout: what webhooks should have brought
        (https://docs.stripe.com/api/events/list; Stripe keeps them 30 days)."""
        listed = await self._listed(
            "list_events", "/v1/events", {"types": sorted(types), "created": {"gte": created_since}}
        )
        found = [e for e in (event_from_stripe(event) for event in listed) if e is not None]
        return sorted(found, key=lambda event: event.created)

    # -- the money after checkout (MoneyGateway) --

    async def retrieve_payment(self, payment_intent_id: str) -> PaymentSnapshot:
        return await self._payment(
            "retrieve_payment", "get", f"{_INTENTS}/{_path_id(payment_intent_id)}", {}
        )

    async def capture_payment(
        self, payment_intent_id: str, *, amount: int, idempotency_key: str
    ) -> PaymentSnapshot:
        # https://docs.stripe.com/api/payment_intents/capture: once; the rest is released.
        return await self._payment(
            "capture",
            "post",
            f"{_INTENTS}/{_path_id(payment_intent_id)}/capture",
            {"amount_to_capture": amount},
            {"idempotency_key": idempotency_key},
        )

    async def cancel_payment(
        self, payment_intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> PaymentSnapshot:
        params = {} if reason is None else {"cancellation_reason": reason}
        return await self._payment(
            "cancel",
            "post",
            f"{_INTENTS}/{_path_id(payment_intent_id)}/cancel",
            params,
            {"idempotency_key": idempotency_key},
        )

    async def refund_payment(
        self,
        payment_intent_id: str,
        *,
        amount: int,
        reason: str | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> tuple[RefundSnapshot, PaymentSnapshot]:
        """https://docs.stripe.com/api/refunds/create, answered with the payment as it is
        after it (the refund's PaymentIntent expanded, with its charge and refunds)."""
        params: dict[str, Any] = {
            "payment_intent": payment_intent_id,
            "amount": amount,
            "metadata": dict(metadata),
            "expand": [f"payment_intent.{_CHARGE_REFUNDS}"],
        }
        if reason is not None:
            params["reason"] = reason
        response = await self._call(
            "refund",
            lambda: self._client.raw_request_async(
                "post", "/v1/refunds", **params, idempotency_key=idempotency_key
            ),
        )
        refund = response.data
        if _replayed(response):
            return refund_from_stripe(refund), await self.retrieve_payment(payment_intent_id)
        return refund_from_stripe(refund), await self._payment_of(refund["payment_intent"])

    async def session_of_payment_intent(self, payment_intent_id: str) -> SessionSnapshot | None:
        """https://docs.stripe.com/api/checkout/sessions/list (`payment_intent`), then the
        session with its line items."""
        response = await self._call(
            "list",
            lambda: self._client.raw_request_async(
                "get", _SESSIONS, payment_intent=payment_intent_id, limit=1
            ),
        )
        found = response.data["data"]
        return await self.retrieve_session(found[0]["id"]) if found else None

    async def _payment(
        self,
        operation: str,
        method: str,
        path: str,
        params: Mapping[str, Any],
        options: Mapping[str, str] | None = None,
    ) -> PaymentSnapshot:
        """One call that answers a PaymentIntent: its charge and refunds expanded."""
        response = await self._call(
            operation,
            lambda: self._client.raw_request_async(
                method, path, **params, expand=[_CHARGE_REFUNDS], **(options or {})
            ),
        )
        if _replayed(response):
            return await self.retrieve_payment(response.data["id"])
        return await self._payment_of(response.data)

    async def _payment_of(self, intent: Mapping[str, Any]) -> PaymentSnapshot:
        """The payment with every refund (an expanded charge shows the first page) and the
        dispute, which only a disputed charge has."""
        charge = charge_of(intent)
        refunds = None
        if (charge.get("refunds") or {}).get("has_more"):
            path = f"/v1/charges/{_path_id(charge['id'])}/refunds"
            refunds = await self._listed("list_refunds", path, {})
        dispute = None
        if charge.get("disputed"):
            response = await self._call(
                "list_disputes",
                lambda: self._client.raw_request_async(
                    "get", "/v1/disputes", payment_intent=intent["id"], limit=1
                ),
            )
            dispute = next(iter(response.data["data"]), None)
        return payment_from_stripe(intent, refunds, dispute)

    async def _listed(
        self, operation: str, path: str, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Every object of a list, page after page, each page a call of its own (and counted
        as one): https://docs.stripe.com/api/pagination. Read as JSON, like `_session`: a page
        of 100 sessions built as StripeObjects held the event loop for some 100 ms."""
        query = {**params, "limit": _PAGE}
        found: list[dict[str, Any]] = []
        while True:
            response = await self._call(
                operation, lambda: self._client.raw_request_async("get", path, **query)
            )
            page = response.data
            found += page["data"]
            if not page.get("has_more") or not page["data"]:
                return found
            query["starting_after"] = page["data"][-1]["id"]

    async def _snapshot(self, data: dict[str, Any]) -> SessionSnapshot:
        """The session with every line item: an expanded session shows the first page only
        (https://docs.stripe.com/api/expanding_objects), and a session may carry 100."""
        items = data.get("line_items") or {}
        if items.get("has_more"):
            path = f"{_SESSIONS}/{_path_id(data['id'])}/line_items"
            data["line_items"] = {
                "data": await self._listed("list_line_items", path, {"expand": _LINE_EXPAND})
            }
        return snapshot_from_stripe(data)

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """One Stripe operation within its budget (our bound, or less of the caller's
        deadline), backing off and retrying on 429 while the budget lasts; measured."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            with tracing.client_span(f"stripe {operation}") if self._traced else nullcontext():
                return await self._attempts(operation, call)
        except CheckoutError as exc:
            outcome = _outcome(exc)
            raise
        except BaseException:
            outcome = "error"
            raise
        finally:
            if self._metrics is not None:
                self._metrics.stripe_requests.labels(operation, outcome).inc()
                self._metrics.stripe_seconds.labels(operation).observe(
                    time.perf_counter() - started
                )

    async def _attempts(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        async with self._bounded(operation):
            backoff = _RATE_LIMIT_FIRST_BACKOFF_SECONDS
            while True:
                try:
                    return await call()
                except stripe.RateLimitError:
                    left = deadlines.remaining()
                    pause = random.uniform(0, backoff)
                    if left is not None and left - pause < _MIN_CALL_SECONDS * 2:
                        raise
                    await asyncio.sleep(pause)
                    backoff = min(backoff * 2, _RATE_LIMIT_MAX_BACKOFF_SECONDS)

    @asynccontextmanager
    async def _bounded(self, operation: str) -> AsyncIterator[None]:
        within = deadlines.budget(
            self._call_timeout,
            margin=_ANSWER_MARGIN_SECONDS,
            at_least=_MIN_CALL_SECONDS,
            what=f"call Stripe ({operation})",
        )
        # A token of the caller's share, if a caller asked for this (rate_limits.py).
        rate_limits.spend()
        caller = rate_limits.bound_caller()
        if caller is not None and self._metrics is not None:
            self._metrics.caller_stripe_requests.labels(caller).inc()
        async with translate_stripe_errors(), asyncio.timeout(within):
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
        # Our own retries ran out of budget: the caller backs off, each by its own amount.
        raise Unavailable(
            "Stripe is rate limiting this service",
            reason="STRIPE_RATE_LIMITED",
            retry_after_seconds=round(random.uniform(1.0, 3.0), 2),
            upstream_request_id=exc.request_id,
        ) from exc
    except stripe.APIConnectionError as exc:
        raise Unavailable(
            "Stripe could not be reached; the outcome is unknown, retry with the same request",
            reason="STRIPE_UNREACHABLE",
            upstream_request_id=exc.request_id,
        ) from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        _log_failure("stripe refused the api key", exc)
        raise StripeMisconfigured(_misconfigured(exc), upstream_request_id=exc.request_id) from exc
    except (stripe.InvalidRequestError, stripe.CardError) as exc:
        kind = UpstreamMissing if exc.code == "resource_missing" else UpstreamRejected
        raise kind(
            _message(exc), param=exc.param, code=exc.code, request_id=exc.request_id
        ) from exc
    except stripe.APIError as exc:
        if (exc.http_status or 0) >= 500 and (exc.headers or {}).get(
            "idempotent-replayed"
        ) == "true":
            # Stripe saved a failure under this key and replays it for 24 hours
            # (https://docs.stripe.com/api/idempotent_requests): retrying cannot help.
            raise IdempotencyKeySpent(
                "Stripe replays a saved failure for this attempt",
                upstream_request_id=exc.request_id,
            ) from exc
        # 5xx, 409 (a concurrent request with the same key) and the like: worth a retry.
        _log_failure("stripe failed", exc)
        raise Unavailable(
            "Stripe failed to answer; retry with the same request",
            reason="STRIPE_ERROR",
            upstream_request_id=exc.request_id,
        ) from exc


def _replayed(response: stripe.StripeResponse) -> bool:
    """Whether Stripe answered with the response it saved for the idempotency key
    (https://docs.stripe.com/api/idempotent_requests): the objects in it are as they were then,
    and a capture's, release's or refund's PaymentIntent may have changed since (another
    refund, a dispute). Stored under the version read now, that older view would overwrite a
    newer one, so the payment is read again instead."""
    return response.headers.get("idempotent-replayed") == "true"


def _outcome(exc: CheckoutError) -> str:
    """A Stripe call's failure as a metric label: a few fixed values."""
    if isinstance(exc, UpstreamMissing):
        return "missing"
    if isinstance(exc, UpstreamRejected):
        return "refused"
    if isinstance(exc, StripeMisconfigured):
        return "misconfigured"
    if isinstance(exc, IdempotencyKeySpent):
        return "spent_key"
    if isinstance(exc, DeadlineExceeded):
        return "deadline"
    if isinstance(exc, QuotaExceeded):
        return "throttled"
    if isinstance(exc, Unavailable):
        return {"STRIPE_RATE_LIMITED": "rate_limited", "STRIPE_TIMEOUT": "timeout"}.get(
            exc.reason, "unavailable"
        )
    return "error"


def _misconfigured(exc: stripe.StripeError) -> str:
    """What is wrong with the key, for the operator: the missing permission when Stripe names
    it, never the key, which Stripe quotes (masked) in its messages."""
    if isinstance(exc, stripe.PermissionError):
        permission = _PERMISSION.search(_message(exc))
        if permission is not None:
            return (
                "Stripe refused this service's restricted API key: it lacks the "
                f"{permission.group(0)} permission"
            )
        return "Stripe refused this service's API key the permission for this request"
    return "Stripe refused this service's API key: " + _QUOTED_KEY.sub("(the key)", _message(exc))


def _log_failure(event: str, exc: stripe.StripeError) -> None:
    """A failure an operator looks into: with Stripe's request id and the link to the request
    in Stripe's Dashboard (https://docs.stripe.com/api/errors#errors-request_log_url)."""
    error = exc.error
    log.warning(
        event,
        http_status=exc.http_status,
        stripe_request_id=exc.request_id,
        request_log_url=error.request_log_url if error is not None else None,
        error_type=type(exc).__name__,
    )


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
        **collected_fields(data),
    )


def _shipping_cost(data: Mapping[str, Any] | None) -> ShippingCost | None:
    if not data:
        return None
    return ShippingCost(
        shipping_rate_id=_id(data.get("shipping_rate")) or "",
        amount_subtotal=data.get("amount_subtotal") or 0,
        amount_tax=data.get("amount_tax") or 0,
        amount_total=data.get("amount_total") or 0,
        taxes=tax_amounts(data.get("taxes")),
    )


def _path_id(session_id: str) -> str:
    """An id as one path segment, whatever a caller put in it."""
    return urllib.parse.quote(session_id, safe="")


def _shipping(data: Mapping[str, Any] | None) -> ShippingDetails | None:
    if not data:
        return None
    return ShippingDetails(name=data.get("name") or "", address=address(data.get("address") or {}))


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
        metadata=dict(data.get("metadata") or {}),
        product_id=_id(price.get("product")) or "",
        taxes=tax_amounts(data.get("taxes")),
        discounts=discount_amounts(data.get("discounts")),
    )
