"""The HTTP listener on HTTP_ADDR: Stripe's webhooks and `/healthz` (`/metrics` joins later)."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from aiohttp import web

from service.domain.errors import BadSignature, Unavailable
from service.domain.ports import WebhookVerifier
from service.domain.sync import StripeSync

WEBHOOK_PATH = "/stripe/webhook"
# Stripe sends events of a few kilobytes; refuse anything that is clearly not one.
_MAX_WEBHOOK_BYTES = 1 << 20

log = structlog.get_logger("webhook")


def build_http_app(
    is_serving: Callable[[], bool], sync: StripeSync, verifier: WebhookVerifier | None
) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        if is_serving():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="shutting down\n")

    async def webhook(request: web.Request) -> web.Response:
        if verifier is None:
            # 5xx: Stripe keeps the event and retries once the secret is configured.
            return web.json_response({"error": "STRIPE_WEBHOOK_SECRET is not set"}, status=503)
        # The signature covers the exact bytes Stripe sent: read them before any parsing.
        payload = await request.read()
        try:
            event = verifier.verify(payload, request.headers.get("Stripe-Signature", ""))
        except BadSignature as exc:
            log.warning("webhook refused", reason=str(exc))
            return web.json_response({"error": f"bad signature: {exc}"}, status=400)
        if event is None:
            return web.json_response({"received": True, "outcome": "ignored"})
        try:
            outcome = await sync.handle_event(event)
        except Unavailable as exc:
            log.warning("webhook deferred", event_id=event.id, type=event.type, reason=exc.reason)
            return web.json_response(
                {"error": exc.message},
                status=503,
                headers={"Retry-After": str(int(exc.retry_after_seconds))},
            )
        log.info("webhook", event_id=event.id, type=event.type, outcome=outcome.value)
        return web.json_response({"received": True, "outcome": outcome.value})

    app = web.Application(client_max_size=_MAX_WEBHOOK_BYTES)
    app.router.add_get("/healthz", healthz)
    app.router.add_post(WEBHOOK_PATH, webhook)
    return app
