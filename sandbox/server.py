"""The sandbox's HTTP server: routing, the path every Stripe API request takes, and the work the
sandbox does on its own.

A request to `/v1/…` is counted, matched against injected faults, authenticated, decoded from
Stripe's form encoding, checked against its `Idempotency-Key`, executed by the resource module's
handler, saved for replay, persisted, and answered with a `Request-Id`. `/_sandbox/…` is the
unauthenticated control API for tests (`control.py`); `/c/pay/…` the hosted payment page
(`hosted_page.py`). Any request may change state and emit events, so after every one the state is
written and the webhook outbox drained (`webhooks.py`).

In the background, for as long as the app runs: webhook delivery, and a sweeper that expires
sessions whose `expires_at` has passed every second, as Stripe does, so that
`checkout.session.expired` arrives without anyone asking about the session; the same sweep lets
authorisations lapse and bank refunds succeed when their time comes (`payment_deadlines.py`).
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from . import (
    catalog,
    charges,
    checkout,
    control,
    customers,
    discounts,
    disputes,
    events,
    failure_hints,
    hosted_page,
    invoices,
    payment_control,
    payment_deadlines,
    payment_intents,
    recovery,
    refunds,
    saved_payment_methods,
    shipping,
    taxes,
    webhook_endpoints,
)
from . import demo_catalog as demo
from .api import API_VERSION, ApiRequest, Expander, Route
from .auth import authenticate
from .clock import Clock
from .context import SANDBOX, Sandbox
from .errors import StripeError, api_error, not_found
from .failure_hints import error_body
from .faults import Fault
from .forms import decode
from .idempotency import Idempotency
from .launcher import LISTENING
from .restricted_keys import authorize
from .store import Store, new_id
from .webhook_schedule import RetryPolicy
from .webhooks import Webhooks

ROUTES: list[Route] = [
    *catalog.ROUTES,
    *checkout.ROUTES,
    *customers.ROUTES,
    *discounts.ROUTES,
    *events.ROUTES,
    *invoices.ROUTES,
    *saved_payment_methods.ROUTES,
    *shipping.ROUTES,
    *taxes.ROUTES,
    *webhook_endpoints.ROUTES,
    *charges.ROUTES,
    *disputes.ROUTES,
    *payment_intents.ROUTES,
    *refunds.ROUTES,
]
EXPANDERS: dict[tuple[str, str], Expander] = {
    **catalog.EXPANDERS,
    **checkout.EXPANDERS,
    **discounts.EXPANDERS,
    **charges.EXPANDERS,
    **disputes.EXPANDERS,
    **payment_intents.EXPANDERS,
    **refunds.EXPANDERS,
}

_SWEEP_SECONDS = 1.0

_log = logging.getLogger(__name__)


def build_app(
    state_file: Path | None, clock: Clock, policy: RetryPolicy, *, demo_catalog: bool = False
) -> web.Application:
    """The sandbox as an aiohttp application, with its state loaded from `state_file`."""
    store = Store(state_file)
    store.load()
    if demo_catalog:
        demo.seed(store, clock.now())
    app = web.Application(middlewares=[_request_id])
    webhooks = Webhooks(store, clock, policy)
    app[SANDBOX] = Sandbox(
        store, clock, Idempotency(store, clock), webhooks, demo_catalog=demo_catalog
    )
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _api_handler(route))
    app.router.add_route("*", "/v1/{tail:.*}", _unrecognized)
    control.add_routes(app.router)
    payment_control.add_routes(app.router)
    hosted_page.add_routes(app.router)
    recovery.add_routes(app.router)
    app.cleanup_ctx.append(_background)
    return app


async def serve(
    host: str,
    port: int,
    state_file: Path | None,
    policy: RetryPolicy,
    stop: asyncio.Event,
    *,
    demo_catalog: bool = False,
) -> None:
    """Run the sandbox until `stop` is set, announcing the bound address on stdout."""
    app = build_app(state_file, Clock(), policy, demo_catalog=demo_catalog)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        shown_host = f"[{host}]" if ":" in host else host
        # The launcher (launcher.py) finds the sandbox by reading exactly this line.
        print(f"{LISTENING}http://{shown_host}:{bound_port}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


async def _background(app: web.Application) -> AsyncIterator[None]:
    sandbox = app[SANDBOX]
    await sandbox.webhooks.start()
    sweeper = asyncio.create_task(_sweep(sandbox))
    yield
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    await sandbox.webhooks.stop()


async def _sweep(sandbox: Sandbox) -> None:
    while True:
        await asyncio.sleep(_SWEEP_SECONDS)
        try:
            checkout.expire_due(sandbox.store, sandbox.clock.now())
            payment_deadlines.run_due(sandbox.store, sandbox.clock.now())
            await sandbox.store.flush()
            sandbox.webhooks.kick()
        except Exception:
            # One bad sweep must not end expiry for the rest of the run.
            _log.exception("sandbox expiry sweep failed")


@web.middleware
async def _request_id(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    request_id = new_id("req_", 14)
    request["request_id"] = request_id
    sandbox = request.app[SANDBOX]
    api = request.path.startswith("/v1/")
    try:
        response = await handler(request)
    except StripeError as error:
        body = error_body(error, request_id, sandbox.clock.now()) if api else error.body()
        response = _json(error.status, body)
    await sandbox.store.flush()
    sandbox.webhooks.kick()
    response.headers["Request-Id"] = request_id
    if api:
        failure_hints.mark(response)
    response.headers.setdefault(
        "Stripe-Version", request.headers.get("Stripe-Version", API_VERSION)
    )
    return response


def _api_handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        sandbox = request.app[SANDBOX]
        sandbox.stats.routes[f"{request.method} {route.path}"] += 1
        return await _handle(sandbox, request, route)

    return handle


async def _unrecognized(request: web.Request) -> web.StreamResponse:
    request.app[SANDBOX].stats.requests[f"{request.method} {request.path}"] += 1
    raise not_found(request.method, request.path)


async def _handle(sandbox: Sandbox, request: web.Request, route: Route) -> web.StreamResponse:
    sandbox.stats.requests[f"{request.method} {request.path}"] += 1
    fault = sandbox.faults.take(request.method, request.path)
    if fault is not None:
        sandbox.stats.faults += 1
    api_key = authenticate(request.headers.get("Authorization"))
    authorize(sandbox.store, api_key, request.method, route.path)
    raw = await request.text() if request.method == "POST" else request.query_string
    params = decode(raw)
    key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
    fingerprint = {"method": request.method, "path": request.path, "params": params}
    if key is not None:
        record = sandbox.idempotency.claim(key, fingerprint)
        if record is not None:
            sandbox.stats.replays += 1
            response = web.Response(
                status=record["status"], text=record["body"], content_type="application/json"
            )
            response.headers["Idempotent-Replayed"] = "true"
            response.headers["Original-Request"] = record["request_id"]
            failure_hints.mark(response, replays_failure=True)
            return response
    try:
        if fault is not None and fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault is not None and fault.phase == "before" and _fails(fault):
            return _fail(request, fault)
        if fault is not None and fault.phase == "during" and fault.status is not None:
            # Execution began and failed: Stripe saves the failure under the key.
            error = fault.error()
            failed = error_body(error, request["request_id"], sandbox.clock.now())
            if key is not None:
                sandbox.idempotency.save(
                    key, fingerprint, error.status, json.dumps(failed), request["request_id"]
                )
                await sandbox.store.flush()
            response = _json(error.status, failed)
            failure_hints.mark(response, replays_failure=key is not None)
            return response
        status, body, saved = _execute(sandbox, request, route, params)
        text = json.dumps(body)
        if key is not None and saved:
            sandbox.idempotency.save(key, fingerprint, status, text, request["request_id"])
        await sandbox.store.flush()
        if fault is not None and _fails(fault):
            return _fail(request, fault)
        response = web.Response(status=status, text=text, content_type="application/json")
        failure_hints.mark(response, replays_failure=key is not None and saved)
        return response
    finally:
        if key is not None:
            sandbox.idempotency.release(key)


def _execute(
    sandbox: Sandbox, request: web.Request, route: Route, params: dict[str, Any]
) -> tuple[int, dict[str, Any], bool]:
    """Run the handler; returns status, body, and whether Stripe would save it for replay."""
    api_request = ApiRequest(
        params=params,
        path=request.match_info,
        store=sandbox.store,
        clock=sandbox.clock,
        origin=f"{request.scheme}://{request.host}",
        expanders=EXPANDERS,
        request_id=request["request_id"],
        idempotency_key=request.headers.get("Idempotency-Key")
        if request.method == "POST"
        else None,
    )
    now = sandbox.clock.now()
    try:
        return 200, route.handler(api_request), True
    except StripeError as error:
        return error.status, error_body(error, request["request_id"], now), error.saved
    except Exception:
        _log.exception("sandbox handler failed: %s %s", request.method, request.path)
        failure = api_error()
        return failure.status, error_body(failure, request["request_id"], now), failure.saved


def _fails(fault: Fault) -> bool:
    return fault.drop or fault.status is not None


def _fail(request: web.Request, fault: Fault) -> web.StreamResponse:
    if fault.drop:
        # Close the socket without a byte of answer: the client sees the connection reset.
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError
    error = fault.error()
    now = request.app[SANDBOX].clock.now()
    return _json(error.status, error_body(error, request["request_id"], now))


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")
