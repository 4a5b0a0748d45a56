"""The HTTP listener on HTTP_ADDR: `/healthz` now; Stripe's webhooks and `/metrics` join it."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


def build_http_app(is_serving: Callable[[], bool]) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        if is_serving():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="shutting down\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    return app
