"""Fixtures for the sandbox tests: the session's sandbox process (`sandbox_process`, in
tests/conftest.py) and clients for it.

A test that asks for `sandbox` gets it emptied (`/_sandbox/reset`), so counts in
`/_sandbox/stats` belong to the test that reads them. Its webhook retries are fast
(`FAST_RETRIES`), and `receiver` is a real HTTP server on loopback that records the webhooks it
gets. Helpers live in `support.py`.
"""

from collections.abc import AsyncIterator

import httpx
import pytest
import stripe
from aiohttp import web

from sandbox.launcher import SandboxProcess

from .support import Receiver, stripe_client


@pytest.fixture
async def sandbox(sandbox_process: SandboxProcess, raw: httpx.AsyncClient) -> SandboxProcess:
    """The shared sandbox, emptied for this test."""
    (await raw.post("/_sandbox/reset")).raise_for_status()
    return sandbox_process


@pytest.fixture(scope="session")
async def http_client() -> AsyncIterator[stripe.HTTPXClient]:
    http = stripe.HTTPXClient()
    yield http
    await http.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def client(sandbox_process: SandboxProcess, http_client: stripe.HTTPXClient) -> stripe.StripeClient:
    return stripe_client(sandbox_process.url, http_client)


@pytest.fixture(scope="session")
async def raw(sandbox_process: SandboxProcess) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the sandbox, for what stripe-python cannot send or hides."""
    async with httpx.AsyncClient(base_url=sandbox_process.url, timeout=10) as http:
        yield http


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recorder = Receiver()
    app = web.Application()
    app.router.add_post("/stripe/webhook", recorder.handle)
    app.router.add_post("/stripe/stalled", recorder.stall)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    recorder.url, recorder.stalled_url = f"{base}/stripe/webhook", f"{base}/stripe/stalled"
    yield recorder
    recorder.released.set()
    await runner.cleanup()
