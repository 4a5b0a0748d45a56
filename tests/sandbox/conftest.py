"""Fixtures for the sandbox tests: a real `python -m service.sandbox` process and clients for it.

One sandbox process serves the whole session; a test that asks for `sandbox` gets it emptied
(`/_sandbox/reset`), so counts in `/_sandbox/stats` belong to the test that reads them.
"""

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk_test_123"
LISTENING = "sandbox listening on "


@dataclass
class Sandbox:
    url: str
    process: asyncio.subprocess.Process


async def start_sandbox(*args: str, env: dict[str, str] | None = None) -> Sandbox:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.sandbox",
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
    running = await start_sandbox("--port", "0")
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
