"""Fixtures for the sandbox tests: a real `python -m sandbox` process and clients for it.

One sandbox process serves the whole session; a test that asks for `sandbox` gets it emptied
(`/_sandbox/reset`), so counts in `/_sandbox/stats` belong to the test that reads them. Its
webhook retries are fast (`FAST_RETRIES`), and `receiver` is a real HTTP server on loopback that
records the webhooks it gets.
"""

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk_test_123"
LISTENING = "sandbox listening on "
# Retries 50 ms apart at first, so a test that makes a receiver fail twice waits 150 ms.
FAST_RETRIES = ("--webhook-retry-delay", "0.05", "--webhook-timeout", "2")


@dataclass
class Sandbox:
    url: str
    process: asyncio.subprocess.Process


async def start_sandbox(*args: str, env: dict[str, str] | None = None) -> Sandbox:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 15)).decode()
    assert line.startswith(LISTENING), f"unexpected first line: {line!r}"
    return Sandbox(url=line.removeprefix(LISTENING).strip(), process=process)


async def stop_sandbox(sandbox: Sandbox) -> int:
    if sandbox.process.returncode is None:
        sandbox.process.terminate()
    await asyncio.wait_for(sandbox.process.communicate(), 15)
    assert sandbox.process.returncode is not None
    return sandbox.process.returncode


def stripe_client(
    url: str, http: stripe.HTTPXClient, api_key: str = API_KEY
) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key, base_addresses={"api": url}, http_client=http, max_network_retries=0
    )


@pytest.fixture(scope="session")
async def sandbox_process() -> AsyncIterator[Sandbox]:
    running = await start_sandbox("--port", "0", *FAST_RETRIES)
    yield running
    assert await stop_sandbox(running) == 0


@pytest.fixture
async def sandbox(sandbox_process: Sandbox, raw: httpx.AsyncClient) -> Sandbox:
    """The shared sandbox, emptied for this test."""
    (await raw.post("/_sandbox/reset")).raise_for_status()
    return sandbox_process


@pytest.fixture(scope="session")
async def http_client() -> AsyncIterator[stripe.HTTPXClient]:
    http = stripe.HTTPXClient()
    yield http
    await http.close_async()


@pytest.fixture(scope="session")
def client(sandbox_process: Sandbox, http_client: stripe.HTTPXClient) -> stripe.StripeClient:
    return stripe_client(sandbox_process.url, http_client)


@pytest.fixture(scope="session")
async def raw(sandbox_process: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the sandbox, for what stripe-python cannot send or hides."""
    async with httpx.AsyncClient(base_url=sandbox_process.url, timeout=10) as http:
        yield http


async def stats(raw_http: httpx.AsyncClient) -> dict[str, Any]:
    response = await raw_http.get("/_sandbox/stats")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def add_fault(raw_http: httpx.AsyncClient, **fault: Any) -> None:
    (await raw_http.post("/_sandbox/faults", json=fault)).raise_for_status()


def line_item(
    unit_amount: int = 1500, quantity: int = 1, currency: str = "usd", name: str = "T-shirt"
) -> dict[str, Any]:
    return {
        "price_data": {
            "currency": currency,
            "unit_amount": unit_amount,
            "product_data": {"name": name},
        },
        "quantity": quantity,
    }


def session_params(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": list(items) or [line_item()],
        "success_url": "https://shop.example/done?cs={CHECKOUT_SESSION_ID}",
    }
    params.update(extra)
    return {name: value for name, value in params.items() if value is not None}


def ids(objects: Sequence[Any]) -> list[str]:
    return [item.id for item in objects]


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until `check()` holds: background delivery has no moment to wait for."""
    deadline = time.monotonic() + 10
    while not await check():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.02)


async def deliveries(raw_http: httpx.AsyncClient) -> dict[str, Any]:
    response = await raw_http.get("/_sandbox/webhook_deliveries")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def settled(raw_http: httpx.AsyncClient) -> None:
    """Wait until no delivery is owed: each was delivered or given up."""

    async def nothing_owed() -> bool:
        return (await deliveries(raw_http))["pending"] == 0

    await eventually(nothing_owed)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A webhook endpoint at `url`: records every request, answers `answers` in turn, then 200.
    `stalled_url` records requests and answers none until the test ends."""

    url: str = ""
    stalled_url: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(await request.read(), dict(request.headers)))
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    async def stall(self, request: web.Request) -> web.Response:
        self.requests.append(Received(await request.read(), dict(request.headers)))
        await self.released.wait()
        return web.Response()

    async def count(self, expected: int) -> list[Received]:
        """The requests, once exactly `expected` have arrived."""

        async def arrived() -> bool:
            return len(self.requests) >= expected

        await eventually(arrived)
        assert len(self.requests) == expected
        return self.requests


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


async def endpoint(
    client: stripe.StripeClient, url: str, events: Sequence[str] = ("*",)
) -> stripe.WebhookEndpoint:
    return await client.v1.webhook_endpoints.create_async(
        {"url": url, "enabled_events": list(events)}  # type: ignore[typeddict-item]
    )


async def pay(raw_http: httpx.AsyncClient, session_id: str, **details: Any) -> dict[str, Any]:
    response = await raw_http.post(f"/_sandbox/checkout/sessions/{session_id}/pay", json=details)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body
