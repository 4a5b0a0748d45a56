"""Real parts for every test above the unit level: a real Postgres (embedded, or DATABASE_URL),
the Stripe sandbox as a real process reached over HTTP by stripe-python, and the service on a
real gRPC port with real channels. All share one event loop per session (pyproject)."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
import stripe

from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from localdev.devrun import register_webhook, start_sandbox
from service.app import Application, start
from service.config import Settings


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    from pgserver.postgres_server import get_server

    server = get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    yield str(server.get_uri())
    server.cleanup()


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    sandbox = start_sandbox(0)
    yield sandbox.url
    sandbox.stop()


@pytest.fixture(scope="session")
def webhook_port() -> int:
    """The in-process server's HTTP port, chosen before it starts: the sandbox must know where
    to deliver webhooks, and the server must know the endpoint's secret, as with `make run`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def webhook_secret(
    sandbox_url: str, webhook_port: int, tmp_path_factory: pytest.TempPathFactory
) -> str:
    state = tmp_path_factory.mktemp("webhook") / "endpoint.json"
    return register_webhook(sandbox_url, f"127.0.0.1:{webhook_port}", state)


@pytest.fixture(scope="session")
def environ(sandbox_url: str, webhook_secret: str, pg_dsn: str) -> dict[str, str]:
    """The environment a test server runs with: everything on free loopback ports."""
    return {
        "DATABASE_URL": pg_dsn,
        "GRPC_ADDR": "127.0.0.1:0",
        "HTTP_ADDR": "127.0.0.1:0",
        "STRIPE_API_BASE": sandbox_url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "LOG_LEVEL": "warning",
    }


@pytest_asyncio.fixture(scope="session")
async def app(environ: dict[str, str], webhook_port: int) -> AsyncIterator[Application]:
    settings = Settings.from_environ({**environ, "HTTP_ADDR": f"127.0.0.1:{webhook_port}"})
    application = await start(settings)
    yield application
    await application.stop()


@pytest_asyncio.fixture(scope="session")
async def channel(app: Application) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(channel: grpc.aio.Channel) -> api_grpc.CheckoutServiceStub:
    return api_grpc.CheckoutServiceStub(channel)


@pytest_asyncio.fixture(scope="session")
async def db(pg_dsn: str, app: Application) -> AsyncIterator[asyncpg.Pool]:
    """A pool of our own, for looking at the ledger the way an operator would."""
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()


class Sandbox:
    """The test's view of the Stripe sandbox: the real stripe-python client and its stats."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = stripe.HTTPXClient()
        self.client = stripe.StripeClient(
            "sk_test_tests", base_addresses={"api": url}, http_client=self.http
        )

    async def sessions_for(self, order_id: str) -> list[stripe.checkout.Session]:
        page = await self.client.v1.checkout.sessions.list_async({"limit": 100})
        return [s async for s in page.auto_paging_iter() if s.client_reference_id == order_id]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_sandbox/stats", timeout=5) as response:
            return dict(json.load(response))

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5):
            pass


@pytest_asyncio.fixture(scope="session")
async def sandbox(sandbox_url: str) -> AsyncIterator[Sandbox]:
    view = Sandbox(sandbox_url)
    yield view
    await view.http.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
