"""The service on real ports, for the end-to-end tests: started in-process once for this package
against the session's Postgres and Stripe sandbox, with real gRPC channels to it, and the
sandbox delivering its signed webhooks to it as Stripe would.

Package-scoped: the service stops when these tests are done, so it never calls the sandbox
while the sandbox's own tests reset it and count its requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
import stripe

from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from sandbox.launcher import SandboxProcess
from service.app import Application, start
from service.config import Settings
from service.domain.sync import HANDLED_EVENTS
from service.edge.http import WEBHOOK_PATH
from tests.e2e.helpers import Sandbox, Stub

# Where the service's webhook endpoint points until the service has bound its HTTP port: no
# event is emitted before then, and nothing listens on the discard port.
NOT_YET_BOUND = f"http://127.0.0.1:9{WEBHOOK_PATH}"


@pytest_asyncio.fixture(scope="package")
async def sandbox(sandbox_process: SandboxProcess) -> AsyncIterator[Sandbox]:
    view = Sandbox(sandbox_process.url)
    yield view
    await view.http.close_async()  # type: ignore[no-untyped-call]


@pytest_asyncio.fixture(scope="package")
async def webhook_endpoint(sandbox: Sandbox) -> AsyncIterator[stripe.WebhookEndpoint]:
    """The service's webhook endpoint at the sandbox, created before the service starts: Stripe
    shows the signing secret only when it creates an endpoint, and the service needs it at
    start. `app` points it at the port the service bound."""
    sandbox.control("POST", "/_sandbox/reset")  # whatever other packages' tests left behind
    # stripe-python types event names as literals; ours are plain strings of the same values.
    events: list[Any] = sorted(HANDLED_EVENTS)
    endpoint = await sandbox.client.v1.webhook_endpoints.create_async(
        {"url": NOT_YET_BOUND, "enabled_events": events}
    )
    yield endpoint
    await sandbox.client.v1.webhook_endpoints.delete_async(endpoint.id)


@pytest.fixture(scope="package")
def webhook_secret(webhook_endpoint: stripe.WebhookEndpoint) -> str:
    assert webhook_endpoint.secret is not None
    return webhook_endpoint.secret


@pytest.fixture(scope="package")
def environ(sandbox: Sandbox, webhook_secret: str, pg_dsn: str) -> dict[str, str]:
    """The environment a test server runs with: every port chosen by the OS."""
    return {
        "DATABASE_URL": pg_dsn,
        "GRPC_ADDR": "127.0.0.1:0",
        "HTTP_ADDR": "127.0.0.1:0",
        "STRIPE_API_BASE": sandbox.url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        # A test that needs the sweep sets its own interval. Every 30 s, a pass at any moment of
        # some test would take that test's one-shot sandbox fault, or apply an event from
        # Stripe's list before the test's own delivery.
        "SWEEP_INTERVAL_SECONDS": "3600",
        "LOG_LEVEL": "warning",
        # As an operator who uses automatic tax with inline prices sets it: the sandbox's
        # account, like a new Stripe account, has no default tax behaviour, and Stripe refuses
        # automatic tax on a price without one. tests/e2e/test_stripe_fidelity.py runs without.
        "DEFAULT_TAX_BEHAVIOR": "exclusive",
        # Every test here calls as the one local caller, so its share of Stripe is the whole
        # suite's: a test of the shares sets its callers' own in CALLERS_FILE.
        "CALLER_STRIPE_CALLS_PER_SECOND": "10000",
        "CALLER_STRIPE_BURST": "100000",
    }


@pytest_asyncio.fixture(scope="package")
async def app(
    environ: dict[str, str], sandbox: Sandbox, webhook_endpoint: stripe.WebhookEndpoint
) -> AsyncIterator[Application]:
    """The service, with the sandbox's webhook endpoint pointing at the port it bound."""
    application = await start(Settings.from_environ(environ))
    try:
        await sandbox.client.v1.webhook_endpoints.update_async(
            webhook_endpoint.id, {"url": f"http://127.0.0.1:{application.http_port}{WEBHOOK_PATH}"}
        )
        yield application
    finally:
        await application.stop()


@pytest_asyncio.fixture(scope="package")
async def channel(app: Application) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as ch:
        yield ch


@pytest.fixture(scope="package")
def stub(channel: grpc.aio.Channel) -> Stub:
    return api_grpc.CheckoutServiceStub(channel)


@pytest_asyncio.fixture(scope="package")
async def db(pg_dsn: str, app: Application) -> AsyncIterator[asyncpg.Pool]:
    """A pool of our own, for looking at the ledger the way an operator would."""
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()
