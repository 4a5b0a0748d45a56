"""The HTTP listener on HTTP_ADDR: Stripe's webhooks, and the probes: `/readyz` (send traffic
here?), `/livez` (is the process alive?) and `/healthz` (the same as `/readyz`, kept for
existing checks).

Every webhook answer is explained: 400 for what Stripe must not send again (a bad signature or
payload), 503 with Retry-After for what may work later (Stripe retries), and 500 only for a bug,
logged with its trace. https://docs.stripe.com/webhooks#retries"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import structlog
from aiohttp import web

from service.domain.errors import BadSignature, CheckoutError, Unavailable
from service.domain.model import StripeEvent
from service.domain.payment_model import PaymentEvent
from service.domain.ports import Clock, WebhookVerifier
from service.domain.sync import HANDLED_EVENTS, EventOutcome, StripeSync
from service.domain.validation import CALLER_MAX, ORDER_ID_MAX, STRIPE_ID_MAX, is_identifier
from service.observability.metrics import Metrics

WEBHOOK_PATH = "/stripe/webhook"
# Stripe sends events of a few kilobytes; refuse anything that is clearly not one.
_MAX_WEBHOOK_BYTES = 1 << 20
# aiohttp puts no time limit on reading a request's body: without one, a client that sends
# headers and then trickles (or withholds) the body holds a handler forever (slow loris).
# Stripe sends the whole event at once; this is ample for a megabyte on a slow link.
WEBHOOK_READ_TIMEOUT_SECONDS = 10.0

log = structlog.get_logger("webhook")

Event = StripeEvent | PaymentEvent


def build_http_app(
    is_ready: Callable[[], bool],
    sync: StripeSync,
    verifier: WebhookVerifier | None,
    metrics: Metrics,
    clock: Clock,
) -> web.Application:
    async def readyz(_: web.Request) -> web.Response:
        if is_ready():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not ready: shutting down or no database\n")

    async def livez(_: web.Request) -> web.Response:
        # Alive as long as the event loop answers: a lost database is no reason to restart.
        return web.Response(text="ok\n")

    async def webhook(request: web.Request) -> web.Response:
        answer, event_type, result = await _webhook(request, sync, verifier, metrics, clock)
        metrics.webhook_events.labels(event_type, result).inc()
        return answer

    async def metrics_page(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), content_type="text/plain", charset="utf-8")

    app = web.Application(client_max_size=_MAX_WEBHOOK_BYTES)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", readyz)
    app.router.add_get("/livez", livez)
    app.router.add_post(WEBHOOK_PATH, webhook)
    app.router.add_get("/metrics", metrics_page)
    return app


async def _webhook(
    request: web.Request,
    sync: StripeSync,
    verifier: WebhookVerifier | None,
    metrics: Metrics,
    clock: Clock,
) -> tuple[web.Response, str, str]:
    """The answer to one delivery, and the event type and result it is counted under."""
    unread = "none"
    if verifier is None:
        # 5xx: Stripe keeps the event and retries once the secret is configured.
        return (
            web.json_response({"error": "STRIPE_WEBHOOK_SECRET is not set"}, status=503),
            unread,
            "deferred",
        )
    event = await _verified_event(request, verifier)
    if isinstance(event, web.Response):
        return event, unread, "refused"
    if event is None:
        return web.json_response({"received": True, "outcome": "ignored"}), "other", "ignored"
    event_type = event.type if event.type in HANDLED_EVENTS else "other"
    try:
        outcome = await sync.handle_event(event)
    except CheckoutError as exc:
        # Unavailable (Stripe, Postgres, a session not stored yet) or a race lost: Stripe
        # delivers the event again later, and then it applies.
        log.warning("webhook deferred", event_id=event.id, type=event.type, reason=exc.reason)
        retry_after = exc.retry_after_seconds if isinstance(exc, Unavailable) else 1.0
        return (
            web.json_response(
                {"error": exc.message},
                status=503,
                headers={"Retry-After": str(max(1, int(retry_after)))},
            ),
            event_type,
            "deferred",
        )
    except Exception:
        log.exception("webhook failed: a bug", event_id=event.id, type=event.type)
        return web.json_response({"error": "internal error"}, status=500), event_type, "failed"
    log.info("webhook", event_id=event.id, type=event.type, outcome=outcome.value)
    if outcome == EventOutcome.APPLIED and event.created:
        metrics.webhook_lag.observe(max(0.0, clock.now().timestamp() - event.created))
    return (
        web.json_response({"received": True, "outcome": outcome.value}),
        event_type,
        outcome.value,
    )


async def _verified_event(
    request: web.Request, verifier: WebhookVerifier
) -> Event | web.Response | None:
    """The delivery's event (None: one that is about neither a Checkout Session nor a payment
    after checkout), or the answer
    that refuses it: 408 for a body that does not arrive in time, 400 for the rest."""
    # The signature covers the exact bytes Stripe sent: read them before any parsing.
    try:
        async with asyncio.timeout(WEBHOOK_READ_TIMEOUT_SECONDS):
            payload = await request.read()
    except TimeoutError:
        log.warning("webhook refused", reason="body not received in time")
        return web.json_response({"error": "request body not received in time"}, status=408)
    except web.RequestPayloadError:
        # A body its Content-Encoding does not decode (not gzip, say): aiohttp decompresses
        # as it reads. Stripe sends its events unencoded.
        log.warning("webhook refused", reason="body not decodable by its Content-Encoding")
        return web.json_response({"error": "request body cannot be decoded"}, status=400)
    signature = request.headers.get("Stripe-Signature", "")
    try:
        if not (signature.isascii() and signature.isprintable()):
            # Stripe's header is ASCII; stripe-python cannot even compare anything else.
            raise BadSignature("the Stripe-Signature header is not printable ASCII")
        event = verifier.verify(payload, signature)
    except BadSignature as exc:
        log.warning("webhook refused", reason=str(exc))
        return web.json_response({"error": f"bad signature: {exc}"}, status=400)
    except (AttributeError, KeyError, TypeError, ValueError):
        # Signed, but not shaped like an event (a JSON list, an object without an id...): only
        # a holder of the secret can send one, and it is still not a server error.
        log.warning("webhook refused", reason="signed payload is not a Stripe event")
        return _not_an_event()
    if event is None:
        return None
    well_formed = _well_formed(event)
    if well_formed is None:
        log.warning("webhook refused", reason="event ids are not Stripe ids")
        return _not_an_event()
    return well_formed


def _not_an_event() -> web.Response:
    return web.json_response({"error": "bad payload: not a Stripe event"}, status=400)


def _well_formed(event: Event) -> Event | None:
    """The event if its ids are what Stripe sends (bounded printable strings), else None. An
    `order_id` in the metadata that no order of ours could have is another integration's:
    the event is then treated as not ours, rather than refused (Stripe would retry it)."""
    subject = event.payment_intent_id if isinstance(event, PaymentEvent) else event.session_id
    if not all(is_identifier(v, STRIPE_ID_MAX) for v in (event.id, event.type, subject)):
        return None
    if event.order_id is not None and not is_identifier(event.order_id, ORDER_ID_MAX):
        return dataclasses.replace(event, order_id=None)
    if isinstance(event, StripeEvent) and not (
        event.caller is None or is_identifier(event.caller, CALLER_MAX)
    ):
        # Likewise a caller no callers file could name: not a session of ours.
        return dataclasses.replace(event, caller=None)
    return event
